//go:build unix

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mpgo/mp/internal/admit"
	"github.com/mpgo/mp/internal/secure"
	"github.com/mpgo/mp/internal/wire"
)

// Limits of the setup phase, before a connection is handed to a worker
// process.
const (
	// bootMaxFrame bounds a frame before the handover: a Setup, or one
	// KindBinary piece of the executable (the driver sends 1 MiB pieces).
	bootMaxFrame = 1<<20 + 64<<10
	// setupTimeout bounds the wait for Setup after the handshake.
	setupTimeout = 30 * time.Second
	// pieceTimeout bounds the wait for each piece of an upload.
	pieceTimeout = time.Minute
)

// server is a poolworker: it accepts drivers' connections, authenticates
// them, makes sure it has the executable each asks for, and hands each
// connection to a new worker process running that executable.
type server struct {
	cfg      config
	log      *slog.Logger
	childOut io.Writer // worker processes' stdout and stderr
	metrics  *metrics

	uploads atomic.Int64 // executables received and stored
	hashes  atomic.Int64 // cached files hashed (openVerified)

	mu         sync.Mutex // guards the fields below, and starting children
	closing    bool
	done       chan struct{}             // closed when shutting down
	listeners  map[net.Listener]struct{} // being served
	pending    map[net.Conn]struct{}     // not yet handed over
	gate       *admit.Gate               // those of pending whose handshake has not ended
	shedWarned time.Time                 // when shedding was last logged: once a minute at most
	children   map[int]*child            // worker processes running
	hashLocks  map[string]*hashLock      // one upload per executable at a time
	inUse      map[string]int            // by SHA-256: sessions using each cached executable
	verified   map[string]fileKey        // by SHA-256: cached files whose hash was checked (openVerified)
	handlers   sync.WaitGroup            // connection handlers
	reapers    sync.WaitGroup            // goroutines waiting for children
}

// newServer returns a server for cfg that logs to log. cfg.cacheDir must
// exist.
func newServer(cfg config, log *slog.Logger) *server {
	s := &server{
		cfg:       cfg,
		log:       log,
		childOut:  os.Stderr,
		done:      make(chan struct{}),
		listeners: map[net.Listener]struct{}{},
		pending:   map[net.Conn]struct{}{},
		gate:      admit.NewGate(admit.Limits()),
		children:  map[int]*child{},
		hashLocks: map[string]*hashLock{},
		inUse:     map[string]int{},
		verified:  map[string]fileKey{},
	}
	s.metrics = newMetrics(s.workerProcesses, s.cacheBytes)
	return s
}

// workerProcesses returns the number of worker processes running.
func (s *server) workerProcesses() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.children)
}

// Serve accepts connections on ln and serves each in its own goroutine,
// until Shutdown; it then returns nil. It returns another error only if ln
// fails for good. ln is closed when Serve returns.
func (s *server) Serve(ln net.Listener) error {
	defer ln.Close()
	if !s.track(ln) {
		return nil
	}
	defer s.untrack(ln)
	backoff := 5 * time.Millisecond
	for {
		conn, err := ln.Accept()
		if err != nil {
			if s.isClosing() {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Out of file descriptors, or similar: wait and go on.
			s.log.Warn("accept failed", "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		s.accepted(conn)
	}
}

// track records ln so that Shutdown closes it. It returns false if the
// server is already shutting down.
func (s *server) track(ln net.Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.listeners[ln] = struct{}{}
	return true
}

// untrack forgets ln.
func (s *server) untrack(ln net.Listener) {
	s.mu.Lock()
	delete(s.listeners, ln)
	s.mu.Unlock()
}

// isClosing reports whether Shutdown has begun.
func (s *server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// accepted starts serving conn, unless the server is shutting down or
// conn's source has too many connections awaiting their handshake (see
// admit).
func (s *server) accepted(conn net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		conn.Close()
		return
	}
	if !s.admit(conn) {
		s.metrics.handshakeShed()
		s.log.Debug("too many connections from one address awaiting their handshake: closed one",
			"remote", conn.RemoteAddr().String(), "limit", s.gate.PerSourceLimit())
		conn.Close()
		return
	}
	s.handlers.Add(1)
	go s.handle(conn)
}

// release forgets conn and closes this process's copy of it: a worker
// process that took the connection over keeps its own.
func (s *server) release(conn net.Conn) {
	s.gate.Done(conn)
	s.mu.Lock()
	delete(s.pending, conn)
	s.mu.Unlock()
	conn.Close()
}

// handle serves one connection: handshake, setup, executable, handover.
func (s *server) handle(conn net.Conn) {
	defer s.handlers.Done()
	defer s.release(conn)
	log := s.log.With("remote", conn.RemoteAddr().String())
	auth, err := s.cfg.auth()
	if err != nil {
		log.Warn("certificates", "err", err)
	}
	sc, err := wire.WorkerHandshake(conn, auth, wire.DefaultHandshakeTimeout)
	if err != nil {
		s.metrics.handshakeFailed(err)
		log.Log(context.Background(), handshakeLevel(err), "handshake failed", "err", err)
		return
	}
	s.gate.Done(conn) // it passed: it no longer counts (after a failure, release does it)
	// The session lasts until setUp fails here, or until the worker
	// process that takes it over exits (reap). Everything from here
	// crosses the encrypted channel sc.
	s.metrics.sessions.Inc()
	boot := wire.NewUnbufferedCodec(sc, bootMaxFrame)
	err = s.setUp(sc, boot, log)
	if err != nil {
		s.metrics.sessions.Dec()
	}
	var r *refusal
	switch {
	case err == nil:
	case errors.As(err, &r):
		s.metrics.refusals.Inc()
		log.Warn("refused the driver", "reason", r.msg)
		sc.SetWriteDeadline(time.Now().Add(5 * time.Second))
		boot.Send(wire.KindSetupReply, wire.SetupReply{Error: r.msg})
	default:
		log.Info("connection failed before its worker started", "err", err)
	}
}

// handshakeLevel is how loud a failed handshake is: a wrong token or
// protocol version is a misconfiguration worth a warning; a peer that hangs
// up or does not speak mp (a port scanner) is not.
func handshakeLevel(err error) slog.Level {
	if errors.Is(err, wire.ErrAuth) || errors.Is(err, wire.ErrVersion) {
		return slog.LevelWarn
	}
	return slog.LevelInfo
}

// setUp reads the driver's Setup, gets the executable and starts a worker
// process on conn. An error is a *refusal to tell the driver, or a failure
// of the connection.
func (s *server) setUp(conn *secure.Conn, boot *wire.Codec, log *slog.Logger) error {
	conn.SetDeadline(time.Now().Add(setupTimeout))
	setup, err := recvSetup(boot)
	if err != nil {
		return err
	}
	if err := s.checkSetup(setup); err != nil {
		return err
	}
	log = log.With("exe", setup.SHA256[:12])
	// The executable is in use from here, so that eviction leaves it, until
	// its worker process exits (reap) or setUp fails.
	s.acquire(setup.SHA256)
	exe, err := s.ensureExecutable(conn, boot, setup, log)
	if err == nil {
		conn.SetDeadline(time.Time{})
		err = s.spawn(conn, boot, exe, setup.Args, setup.SHA256, log)
		exe.Close() // the worker process has its own copy
	}
	if err != nil {
		s.releaseExe(setup.SHA256)
	}
	return err
}

// recvSetup reads the Setup message.
func recvSetup(boot *wire.Codec) (wire.Setup, error) {
	var setup wire.Setup
	k, body, err := boot.Recv()
	if err != nil {
		return setup, recvErr("reading Setup", err)
	}
	if k != wire.KindSetup {
		return setup, refuse("protocol error: expected Setup, got %s", k)
	}
	if err := boot.Decode(body, &setup); err != nil {
		return setup, refuse("protocol error: bad Setup: %v", err)
	}
	setup.SHA256 = strings.ToLower(setup.SHA256)
	return setup, nil
}

// checkSetup checks that this node can run the executable Setup describes.
func (s *server) checkSetup(setup wire.Setup) error {
	if setup.GOOS != runtime.GOOS || setup.GOARCH != runtime.GOARCH {
		here := runtime.GOOS + "/" + runtime.GOARCH
		return refuse("this node is %s; the driver's executable is for %s/%s: build the program for %s (GOOS=%s GOARCH=%s go build)",
			here, setup.GOOS, setup.GOARCH, here, runtime.GOOS, runtime.GOARCH)
	}
	if !isSHA256Hex(setup.SHA256) {
		return refuse("protocol error: SHA256 %q is not 64 hex digits", setup.SHA256)
	}
	if setup.Size <= 0 {
		return refuse("protocol error: executable size %d", setup.Size)
	}
	if setup.Size > s.cfg.maxBinary {
		return refuse("the executable is %d bytes; this node accepts up to %d (its -max-binary)", setup.Size, s.cfg.maxBinary)
	}
	return nil
}

// isSHA256Hex reports whether h is 64 lowercase hex digits, so that it is
// safe as a file name.
func isSHA256Hex(h string) bool {
	if len(h) != 64 {
		return false
	}
	for _, c := range h {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// recvErr describes a failure to receive a frame while doing what. A frame
// that is too large or malformed is a *refusal: the driver is told.
func recvErr(what string, err error) error {
	if errors.Is(err, wire.ErrMalformed) || errors.Is(err, wire.ErrFrameTooLarge) {
		return refuse("protocol error %s: %v", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// A refusal is an error the driver is told about, in a SetupReply, before
// the connection is closed.
type refusal struct{ msg string }

// Error returns the message for the driver.
func (r *refusal) Error() string { return r.msg }

// refuse returns a *refusal.
func refuse(format string, args ...any) error {
	return &refusal{fmt.Sprintf(format, args...)}
}

// Shutdown stops the server: it stops accepting connections, closes those
// not yet handed over, and sends SIGTERM to every worker process, which
// then finishes its running chunks and exits when its driver closes the
// session. It waits for them until ctx is done, then kills those left (and
// their process groups). It returns nil if every worker process exited by
// itself.
func (s *server) Shutdown(ctx context.Context) error {
	s.log.Info("shutting down: no longer accepting connections")
	s.beginClosing()
	s.handlers.Wait()
	n := s.signalChildren()
	if n > 0 {
		s.log.Info("asked worker processes to finish their chunks and exit (SIGTERM)", "workers", n)
	}
	err := s.waitChildren(ctx)
	if err != nil {
		killed := s.killChildren()
		s.log.Warn("drain time is up: killed the worker processes left", "killed", killed, "reason", err)
		err = fmt.Errorf("killed %d worker processes: %w", killed, err)
	} else if n > 0 {
		s.log.Info("all worker processes exited")
	}
	s.reapers.Wait()
	s.log.Info("stopped")
	return err
}

// beginClosing marks the server closing and closes its listeners and every
// connection not yet handed over.
func (s *server) beginClosing() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closing {
		s.closing = true
		close(s.done)
	}
	for ln := range s.listeners {
		ln.Close()
	}
	for c := range s.pending {
		c.Close()
	}
}
