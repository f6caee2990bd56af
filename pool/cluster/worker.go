package cluster

import (
	"context"
	"errors"
	"fmt"
	"github.com/mpgo/mp/internal/backend"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/yamux"
	"github.com/mpgo/mp/internal/codec"
	"github.com/mpgo/mp/internal/objects"
	"github.com/mpgo/mp/internal/secure"
	"github.com/mpgo/mp/internal/wire"
	"github.com/mpgo/mp/pool"
	"github.com/vmihailenco/msgpack/v5"
)

// Environment variables that put a process in worker mode. They are set by
// the driver (embedded workers) or by poolworker, never by hand.
const (
	envMode     = "MP_WORKER"            // "tcp": dial the driver; "fd": use an inherited connection
	envAddr     = "MP_WORKER_ADDR"       // tcp: the driver's address
	envToken    = "MP_WORKER_TOKEN"      // tcp: the pool's one-off token
	envFD       = "MP_WORKER_FD"         // fd: the connection's file descriptor
	envCapacity = "MP_WORKER_CAPACITY"   // chunks run at once
	envStarted  = "MP_WORKER_STARTED_FD" // fd: a pipe on which to say WorkerMain was reached
	envKeys     = "MP_WORKER_KEYS_FD"    // fd: a pipe holding the channel's transport state
)

// stuckGrace is how long a worker whose driver is gone waits for running
// functions before it exits anyway.
const stuckGrace = 2 * time.Second

// IsWorker reports whether this process was started as a worker process of a
// cluster pool.
func IsWorker() bool { return os.Getenv(envMode) != "" }

// WorkerMain serves as a worker and exits if this process was started as a
// worker process; otherwise it returns at once. [New] calls it first, so a
// program needs it only where cluster.New is not reached in the same way in
// every process: a test binary calls it at the start of TestMain,
//
//	func TestMain(m *testing.M) {
//		cluster.WorkerMain()
//		os.Exit(m.Run())
//	}
//
// because a worker process re-executes the test binary, and must not run the
// tests.
func WorkerMain() {
	mode := os.Getenv(envMode)
	if mode == "" {
		return
	}
	for _, k := range []string{envMode, envAddr, envToken, envFD, envCapacity, envStarted, envKeys} {
		defer os.Unsetenv(k)
	}
	var rep *reporter
	if fd, err := strconv.Atoi(os.Getenv(envStarted)); err == nil {
		// Tell poolworker this process reached WorkerMain: it then lets
		// the process be, instead of reporting it exited or stuck. The
		// pipe then carries the chunks this process runs (spec.md,
		// "Counts"); processes the user's functions start do not get it.
		closeOnExec(fd)
		f := os.NewFile(uintptr(fd), "mp-started")
		f.Write([]byte{1})
		rep = newReporter(f)
	}
	capacity := 1
	if c, err := strconv.Atoi(os.Getenv(envCapacity)); err == nil && c > 0 && c <= wire.MaxCapacity {
		capacity = c
	}
	var conn net.Conn
	var err error
	switch mode {
	case "tcp":
		conn, err = net.DialTimeout("tcp", os.Getenv(envAddr), wire.DefaultHandshakeTimeout)
		if err == nil {
			// The driver's own child keeps the plain connection (spec.md,
			// "Which connections are encrypted").
			if _, err = wire.WorkerHandshake(conn, wire.Auth{Token: []byte(os.Getenv(envToken))}, wire.DefaultHandshakeTimeout); err != nil {
				conn.Close()
			}
		}
	case "fd":
		fd, perr := strconv.Atoi(os.Getenv(envFD))
		if perr != nil {
			err = fmt.Errorf("bad %s: %v", envFD, perr)
			break
		}
		f := os.NewFile(uintptr(fd), "mp-conn")
		conn, err = net.FileConn(f)
		f.Close()
		if err == nil {
			// Go on with the channel the poolworker set up (spec.md,
			// "Handover to the worker process").
			var sc *secure.Conn
			if sc, err = resumeChannel(conn); err != nil {
				conn.Close()
			} else {
				conn = sc
			}
		}
	default:
		err = fmt.Errorf("unknown %s=%q", envMode, mode)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "mp worker %d: %v\n", os.Getpid(), err)
		os.Exit(3)
	}
	os.Unsetenv(envToken)
	// A poolworker's child sends its output to the driver; an embedded
	// worker's output reaches the driver through a pipe already.
	err = serveWorker(conn, capacity, rep, mode == "fd")
	rep.close()
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !errors.Is(err, yamux.ErrSessionShutdown) {
		fmt.Fprintf(os.Stderr, "mp worker %d: %v\n", os.Getpid(), err)
		os.Exit(1)
	}
	os.Exit(0)
}

// resumeChannel reads the transport state the poolworker left on the pipe
// named by MP_WORKER_KEYS_FD and returns the channel on conn with it.
func resumeChannel(conn net.Conn) (*secure.Conn, error) {
	fd, err := strconv.Atoi(os.Getenv(envKeys))
	if err != nil {
		return nil, fmt.Errorf("no session keys from the poolworker (%s=%q): is it older than this program?", envKeys, os.Getenv(envKeys))
	}
	closeOnExec(fd)
	f := os.NewFile(uintptr(fd), "mp-keys")
	defer f.Close()
	b := make([]byte, secure.StateLen+1)
	n, err := io.ReadFull(f, b)
	if err != io.ErrUnexpectedEOF || n != secure.StateLen {
		return nil, fmt.Errorf("reading the session keys from the poolworker: %d bytes (%v), want %d", n, err, secure.StateLen)
	}
	send, recv, err := secure.ParseState(b[:n])
	if err != nil {
		return nil, err
	}
	clear(b)
	return secure.NewConn(conn, send, recv), nil
}

// serveWorker runs chunks for the driver at the other end of conn until the
// driver closes the session. With forward, the process's stdout and stderr
// go to the driver too (spec.md, "Output").
func serveWorker(conn net.Conn, capacity int, rep *reporter, forward bool) error {
	defer conn.Close()
	boot := wire.NewUnbufferedCodec(conn, 0)
	host, _ := os.Hostname()
	if err := boot.Send(wire.KindReady, wire.Ready{PID: os.Getpid(), Capacity: capacity, GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, Host: host}); err != nil {
		return err
	}
	conn.SetReadDeadline(time.Now().Add(wire.DefaultHandshakeTimeout))
	k, body, err := boot.Recv()
	if err != nil {
		return fmt.Errorf("waiting for Config: %w", err)
	}
	conn.SetReadDeadline(time.Time{})
	var cfg wire.Config
	if k != wire.KindConfig {
		return fmt.Errorf("%w: want Config, got %s", wire.ErrMalformed, k)
	}
	if err := boot.Decode(body, &cfg); err != nil {
		return err
	}
	if err := cfg.Check(); err != nil {
		return err
	}
	ycfg := yamuxConfig(time.Duration(cfg.HeartbeatMillis)*time.Millisecond, time.Duration(cfg.WriteTimeoutMilli)*time.Millisecond)
	if sc, ok := conn.(*secure.Conn); ok {
		sc.ReadAhead() // the driver sends nothing but yamux from here
	}
	sess, err := yamux.Server(&frameConn{Conn: conn}, ycfg)
	if err != nil {
		return err
	}
	defer sess.Close()
	w := &worker{sess: sess, cfg: cfg, counts: rep, jobs: make(chan job, 32*capacity+16), running: map[uint64]context.CancelFunc{}}
	w.fetches = map[[2]uint64]*fetching{}
	w.base = objects.WithStore(context.Background(), cfg.Store)
	objects.SetFetcher(w.fetch)
	w.initErr = runInitializer(cfg.Initializer)

	// SIGTERM (sent by poolworker when it drains): take no new chunks,
	// finish the running ones, and let the driver close the session.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	defer signal.Stop(sig)

	stream, err := sess.Accept()
	if err != nil {
		return err
	}
	if forward {
		defer forwardOutput(sess)()
	}
	// A runner with more chunks waiting does not wait for its result to
	// be written: results leave together (see writeQueue).
	w.out = newWriteQueue(stream, func() bool { return len(w.jobs) > 0 }, func(error) { sess.Close() })
	w.codec = wire.NewCodec(struct {
		io.Reader
		io.Writer
	}{stream, w.out}, cfg.MaxFrame)
	go func() {
		select {
		case <-sig:
			w.retire("the node is shutting down")
		case <-sess.CloseChan():
		}
	}()
	for range capacity {
		w.wg.Add(1)
		go w.runner()
	}
	err = w.loop()
	defer w.out.close()
	close(w.jobs)
	// The driver is gone: nobody wants the running chunks' results.
	w.mu.Lock()
	for _, cancel := range w.running {
		cancel()
	}
	w.mu.Unlock()
	// A function that ignores its context may never return: give the
	// runners a moment, then exit without them.
	done := make(chan struct{})
	go func() { w.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(stuckGrace):
		fmt.Fprintf(os.Stderr, "mp worker %d: exiting with chunks still running (their functions ignore cancellation)\n", os.Getpid())
	}
	return err
}

func runInitializer(name string) error {
	if name == "" {
		return nil
	}
	fn, ok := backend.LookupInitializer(name)
	if !ok {
		return fmt.Errorf("initializer %s is not known in the worker process: build the pool.Initializer option where every process runs it (in main before cluster.New, or in a package-level variable)", name)
	}
	return backend.RunInitializer(name, fn)
}

type worker struct {
	fetches map[[2]uint64]*fetching // values of Refs asked for; guarded by mu
	sess    *yamux.Session
	codec   *wire.Codec
	out     *writeQueue // under codec
	cfg     wire.Config
	base    context.Context // of every chunk's context: the driver's store
	counts  *reporter       // nil unless a poolworker asked for counts
	jobs    chan job
	initErr error
	wg      sync.WaitGroup

	mu      sync.Mutex
	running map[uint64]context.CancelFunc
	tasks   int
	retired bool
}

func (w *worker) retire(reason string) {
	w.mu.Lock()
	already := w.retired
	w.retired = true
	w.mu.Unlock()
	if !already {
		w.send(wire.KindRetire, func(enc *msgpack.Encoder) error { return enc.Encode(wire.Retire{Reason: reason}) })
	}
}

func (w *worker) send(k wire.Kind, f func(*msgpack.Encoder) error) error {
	err := w.codec.SendFunc(k, f)
	if errors.Is(err, yamux.ErrConnectionWriteTimeout) || errors.Is(err, yamux.ErrTimeout) {
		// yamux#142: a write timeout leaves the session unusable.
		w.sess.Close()
	}
	return err
}

func (w *worker) loop() error {
	for {
		k, body, err := w.codec.Recv()
		if err != nil {
			return err
		}
		switch k {
		case wire.KindRun:
			if err := w.start(body); err != nil {
				return err
			}
		case wire.KindObject:
			var o wire.Object
			if err := w.codec.Decode(body, &o); err != nil {
				return err
			}
			w.objectPiece(o)
		case wire.KindForget:
			var f wire.Forget
			if err := w.codec.Decode(body, &f); err != nil {
				return err
			}
			objects.Forget(f.Store, f.ID)
		case wire.KindCancel:
			var c wire.Cancel
			if err := w.codec.Decode(body, &c); err != nil {
				return err
			}
			w.mu.Lock()
			cancel := w.running[c.ID]
			w.mu.Unlock()
			if cancel != nil {
				cancel()
			}
		default:
			return fmt.Errorf("%w: unexpected %s from the driver", wire.ErrMalformed, k)
		}
	}
}

// start decodes a Run and runs it in its own goroutine.
func (w *worker) start(body []byte) error {
	dec := w.codec.Decoder(body)
	id, name, err := wire.DecodeRunHeader(dec)
	if err != nil {
		return err
	}
	// Every Run counts towards MaxTasks, run or refused, as the driver
	// counts it.
	w.mu.Lock()
	w.tasks++
	retire := w.cfg.MaxTasks > 0 && w.tasks >= w.cfg.MaxTasks
	w.mu.Unlock()
	if retire {
		w.retire(fmt.Sprintf("ran %d tasks", w.cfg.MaxTasks))
	}
	var rerr *wire.RemoteError
	f, ok := backend.Lookup(name)
	var args any
	switch {
	case !ok:
		rerr = &wire.RemoteError{Kind: wire.ErrKindUnknown, Message: fmt.Sprintf("function %s is not registered in the worker process (register it in an init function)", name)}
	case w.initErr != nil:
		rerr = &wire.RemoteError{Kind: wire.ErrKindInit, Message: w.initErr.Error()}
	default:
		args = f.NewArgs()
		if err := w.codec.DecodeItems(dec, args); err != nil {
			rerr = &wire.RemoteError{Kind: wire.ErrKindDecode, Message: fmt.Sprintf("the argument of %s cannot cross: %v", name, err)}
			var ie *codec.ItemError
			if errors.As(err, &ie) {
				rerr.Index, rerr.Message = ie.Index, fmt.Sprintf("the argument of %s cannot cross: %v", name, ie.Err)
			}
		}
	}
	if rerr != nil {
		w.counts.chunk(rerr.Kind, 0, 0)
		return w.send(wire.KindResult, func(enc *msgpack.Encoder) error { return wire.EncodeResult(enc, id, rerr, nil) })
	}
	ctx, cancel := context.WithCancel(w.base)
	w.mu.Lock()
	w.running[id] = cancel
	w.mu.Unlock()
	// The driver sends at most 32×capacity chunks at a time (spec.md): the
	// queue never fills, and the read loop never blocks here.
	w.jobs <- job{id: id, name: name, f: f, args: args, ctx: ctx, cancel: cancel}
	return nil
}

// fetching is a value of a Ref asked of the driver and not yet whole.
type fetching struct {
	buf  []byte
	done chan error
}

// fetch asks the driver for value id of store, and waits for it (see
// objects.Fetch, which asks once per value).
func (w *worker) fetch(ctx context.Context, store, id uint64) ([]byte, error) {
	key := [2]uint64{store, id}
	f := &fetching{done: make(chan error, 1)}
	w.mu.Lock()
	w.fetches[key] = f
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		delete(w.fetches, key)
		w.mu.Unlock()
	}()
	if err := w.send(wire.KindGet, func(enc *msgpack.Encoder) error { return enc.Encode(wire.Get{Store: store, ID: id}) }); err != nil {
		return nil, err
	}
	select {
	case err := <-f.done:
		return f.buf, err
	case <-w.sess.CloseChan():
		return nil, errors.New("pool: the driver is gone")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// objectPiece adds a piece of a value to its fetch.
func (w *worker) objectPiece(o wire.Object) {
	w.mu.Lock()
	f := w.fetches[[2]uint64{o.Store, o.ID}]
	w.mu.Unlock()
	if f == nil {
		return
	}
	var done error
	switch {
	case o.Error == objects.ErrReleased.Error():
		done = objects.ErrReleased
	case o.Error != "":
		done = fmt.Errorf("%w: %s", objects.ErrReleased, strings.TrimPrefix(o.Error, objects.ErrReleased.Error()+": "))
	default:
		f.buf = append(f.buf, o.Piece...)
		if int64(len(f.buf)) < o.Total {
			return
		}
	}
	select {
	case f.done <- done:
	default: // answered already
	}
}

// job is a chunk waiting for, or held by, a runner.
type job struct {
	id     uint64
	name   string
	f      *backend.Func
	args   any
	ctx    context.Context
	cancel context.CancelFunc
}

// runner runs queued chunks one at a time, in arrival order.
func (w *worker) runner() {
	defer w.wg.Done()
	for j := range w.jobs {
		w.run(j)
		if len(w.jobs) == 0 {
			w.out.flush() // nothing else to do
		}
	}
}

func (w *worker) run(j job) {
	defer j.cancel()
	var results any
	var err error
	if err = j.ctx.Err(); err == nil { // not cancelled while queued
		results, err = j.f.Run(j.ctx, j.args)
	}
	w.mu.Lock()
	delete(w.running, j.id)
	w.mu.Unlock()
	rerr := toRemote(err)
	serr := w.sendResult(j.id, rerr, results)
	if errors.Is(serr, wire.ErrEncode) || errors.Is(serr, wire.ErrFrameTooLarge) {
		// The results could not be sent: say why instead.
		w.counts.chunk(wire.ErrKindEncode, 0, 0)
		bad := &wire.RemoteError{Kind: wire.ErrKindEncode, Message: fmt.Sprintf("a result of %s cannot cross: %v", j.name, serr)}
		var ie *codec.ItemError
		var tl *wire.TooLargeError
		switch {
		case errors.As(serr, &tl):
			bad.Index, bad.Message = tl.Index, fmt.Sprintf("the result of %s encodes to %d bytes or more, over the message limit of %d bytes; raise it with cluster.MaxMessage", j.name, tl.Size, tl.Limit)
		case errors.As(serr, &ie):
			bad.Index, bad.Message = ie.Index, fmt.Sprintf("the result of %s cannot cross: %v", j.name, ie.Err)
		}
		w.send(wire.KindResult, func(enc *msgpack.Encoder) error { return wire.EncodeResult(enc, j.id, bad, nil) })
		return
	}
	if rerr == nil {
		w.counts.chunk(outcomeOK, lenOf(results), 0)
	} else {
		w.counts.chunk(rerr.Kind, lenOf(results), 1)
	}
}

// sendResult sends a chunk's results, in several messages if they do not
// fit in one.
func (w *worker) sendResult(id uint64, rerr *wire.RemoteError, results any) error {
	err := w.codec.SendResult(id, rerr, results)
	if errors.Is(err, yamux.ErrConnectionWriteTimeout) || errors.Is(err, yamux.ErrTimeout) {
		// yamux#142: a write timeout leaves the session unusable.
		w.sess.Close()
	}
	return err
}

// toRemote turns a chunk's error into its wire form.
func toRemote(err error) *wire.RemoteError {
	if err == nil {
		return nil
	}
	if err == context.Canceled || err == context.DeadlineExceeded {
		// A chunk cancelled before it ran: its first item is where it
		// stopped, and the driver must see the context's error as itself,
		// as it sees one that a function returned.
		err = &pool.TaskError{Index: 0, Err: err}
	}
	r := &wire.RemoteError{Kind: wire.ErrKindError, Message: err.Error()}
	var te *pool.TaskError
	if errors.As(err, &te) {
		r.Index = te.Index
		r.Message = te.Err.Error()
		pe, isPanic := te.Err.(*pool.PanicError)
		switch {
		case isPanic:
			r.Kind, r.Message, r.Stack = wire.ErrKindPanic, fmt.Sprint(pe.Value), string(pe.Stack)
		case te.Err == context.Canceled:
			r.Kind = wire.ErrKindCanceled
		case te.Err == context.DeadlineExceeded:
			r.Kind = wire.ErrKindDeadline
		default:
			r.Is, r.Typed = codec.EncodeError(te.Err)
		}
	}
	return r
}

// fromRemote turns a wire error back into the error a local pool would give.
func fromRemote(r *wire.RemoteError, worker string) error {
	switch r.Kind {
	case wire.ErrKindPanic:
		return &pool.TaskError{Index: r.Index, Err: &pool.PanicError{Value: r.Message, Stack: []byte(r.Stack)}}
	case wire.ErrKindCanceled:
		return &pool.TaskError{Index: r.Index, Err: context.Canceled}
	case wire.ErrKindDeadline:
		return &pool.TaskError{Index: r.Index, Err: context.DeadlineExceeded}
	case wire.ErrKindError:
		return &pool.TaskError{Index: r.Index, Err: codec.DecodeError(r.Message, r.Is, r.Typed)}
	case wire.ErrKindDecode, wire.ErrKindEncode:
		return &pool.TaskError{Index: r.Index, Err: fmt.Errorf("%w: worker %s: %s", pool.ErrEncoding, worker, r.Message)}
	case wire.ErrKindUnknown:
		return fmt.Errorf("%w: %s (worker %s)", pool.ErrNotRegistered, r.Message, worker)
	default:
		return fmt.Errorf("cluster: worker %s: %s", worker, r.Message)
	}
}

func yamuxConfig(heartbeat, timeout time.Duration) *yamux.Config {
	c := yamux.DefaultConfig()
	c.EnableKeepAlive = true
	if heartbeat > 0 {
		c.KeepAliveInterval = heartbeat
	}
	if timeout > 0 {
		c.ConnectionWriteTimeout = timeout
	}
	c.LogOutput = io.Discard
	c.MaxStreamWindowSize = 1 << 20
	return c
}
