package cluster

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mpgo/mp/internal/tail"
	"github.com/mpgo/mp/internal/wire"
)

// member is one place workers come from: a worker process this pool starts,
// a poolworker address, or a poolworker that dialled in. The first two are
// restarted or redialled when lost; a dialled-in one leaves with its
// connection.
type member struct {
	name   string
	addr   string // poolworker address dialled; "" for the others
	origin string // the Addresses entry (a name) addr came from; "" if literal
	dialIn bool   // the worker dialled the driver: nothing to redial

	mu       sync.Mutex
	conn     *wconn
	cmd      *exec.Cmd
	exited   chan struct{} // closed when cmd has been waited for
	shutC    bool
	draining bool
}

func (m *member) setConn(w *wconn) {
	m.mu.Lock()
	m.conn = w
	shut, draining := m.shutC, m.draining
	m.mu.Unlock()
	switch {
	case shut && w != nil:
		w.kill()
	case draining && w != nil:
		w.drain()
	}
}

// drain makes the member leave gracefully: its connection takes no new
// chunks and closes once its running chunks are answered, and it is not
// redialled.
func (m *member) drain() {
	m.mu.Lock()
	m.draining = true
	w := m.conn
	m.mu.Unlock()
	if w != nil {
		w.drain()
	}
}

// gone reports whether the member leaves when its connection ends.
func (m *member) gone() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.draining || m.dialIn
}

// shut closes the member's connection gracefully: the worker process exits
// when its session ends.
func (m *member) shut() {
	m.mu.Lock()
	m.shutC = true
	w := m.conn
	m.mu.Unlock()
	if w != nil {
		w.kill()
	}
}

// kill closes the connection and kills the process, if this pool started
// one.
func (m *member) kill() {
	m.shut()
	m.mu.Lock()
	cmd := m.cmd
	m.mu.Unlock()
	if cmd != nil && cmd.Process != nil {
		cmd.Process.Kill()
	}
}

// reap waits for the member's process, if any, to exit after its connection
// closed, killing it if it lingers.
func (m *member) reap() {
	m.mu.Lock()
	cmd, exited := m.cmd, m.exited
	m.cmd, m.exited = nil, nil
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-exited:
	case <-time.After(reapGrace):
		cmd.Process.Kill()
		<-exited
	}
}

// reapLater detaches the member's process, if any, so that its
// replacement can start at once, and waits for it in the background: a
// process whose connection was lost is killed at once (it is stopped,
// hung, or about to run chunks already re-run elsewhere); one that retired
// or was told to stop has reap's grace to exit by itself, unless the pool
// is terminated. The pool's Join waits for it.
func (p *driver) reapLater(m *member, lost bool) {
	m.mu.Lock()
	cmd, exited := m.cmd, m.exited
	m.cmd, m.exited = nil, nil
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	if lost {
		cmd.Process.Kill()
	}
	p.wg.Add(1) // the caller, a member's goroutine, holds the count above 0
	go func() {
		defer p.wg.Done()
		grace := time.NewTimer(reapGrace)
		defer grace.Stop()
		select {
		case <-exited:
			return
		case <-grace.C:
		case <-p.term:
		}
		cmd.Process.Kill()
		<-exited
	}()
}

// reapGrace is how long a worker process whose connection closed may take
// to exit by itself before it is killed.
const reapGrace = 3 * time.Second

// spawn starts a worker process by re-executing this program, and accepts
// its connection on a loopback listener of its own.
func (p *driver) spawn(m *member) (*wconn, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening for a worker process: %w", err)
	}
	defer ln.Close()
	cmd := exec.Command(p.exe, workerArgs()...)
	cmd.Env = append(os.Environ(),
		envMode+"=tcp",
		envAddr+"="+ln.Addr().String(),
		envToken+"="+p.token,
		envCapacity+"=1",
	)
	if os.Getenv("GOMAXPROCS") == "" {
		// One chunk at a time: one P avoids waking idle threads per message.
		cmd.Env = append(cmd.Env, "GOMAXPROCS=1")
	}
	// A worker's output must not mix with the program's: it goes to
	// stderr, each line prefixed with the worker's name and process. Its
	// last lines explain a worker that ends before it connects.
	out := &tail.Buffer{}
	lines := &lineWriter{w: os.Stderr, prefix: "[" + m.name + "] "}
	cmd.Stdout = io.MultiWriter(lines, out)
	cmd.Stderr = cmd.Stdout
	cmd.WaitDelay = time.Second // do not wait for a grandchild holding the pipe
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting a worker process: %w", err)
	}
	exited := make(chan struct{})
	var waitErr error
	lines.setPrefix(fmt.Sprintf("[%s (pid %d)] ", m.name, cmd.Process.Pid))
	go func() {
		waitErr = cmd.Wait()
		lines.Close()
		close(exited)
	}()
	m.mu.Lock()
	m.cmd, m.exited = cmd, exited
	shut := m.shutC
	m.mu.Unlock()
	if shut {
		cmd.Process.Kill()
	}
	fail := func(err error) (*wconn, error) {
		cmd.Process.Kill()
		m.reap()
		return nil, err
	}
	type accepted struct {
		c   net.Conn
		err error
	}
	ch := make(chan accepted, 1)
	go func() {
		ln.(*net.TCPListener).SetDeadline(time.Now().Add(wire.DefaultHandshakeTimeout))
		c, err := ln.Accept()
		ch <- accepted{c, err}
	}()
	var conn net.Conn
	select {
	case a := <-ch:
		if a.err != nil {
			return fail(fmt.Errorf("worker process %d did not reach cluster.New within %v: is main blocked before it? (see \"What runs twice\" in the README)%s",
				cmd.Process.Pid, wire.DefaultHandshakeTimeout, out.Report()))
		}
		conn = a.c
	case <-exited:
		ln.Close()
		<-ch
		return fail(fmt.Errorf("worker process %d %s", cmd.Process.Pid, exitedEarly(waitErr, out)))
	}
	// An embedded worker keeps the plain connection after the handshake
	// (spec.md, "Which connections are encrypted").
	if _, err := wire.DriverHandshake(conn, wire.Auth{Token: []byte(p.token)}, wire.DefaultHandshakeTimeout); err != nil {
		conn.Close()
		return fail(err)
	}
	w, err := p.startConn(conn, wire.NewUnbufferedCodec(conn, 0), "local worker", wire.DefaultHandshakeTimeout)
	if err != nil {
		conn.Close()
		return fail(err)
	}
	return w, nil
}

// dial connects to the poolworker at m.addr, authenticates, and has it run
// this program's executable, sending it if the node lacks it.
func (p *driver) dial(m *member) (*wconn, error) {
	conn, err := net.DialTimeout("tcp", m.addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	if err := checkToken(p.s.token, conn.RemoteAddr(), "poolworker "+m.addr+" at"); err != nil {
		conn.Close() // before the handshake: no proof leaves for an attacker to guess the token from
		return nil, err
	}
	w, err := p.setupRemote(conn, m.addr)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return w, nil
}

// setupRemote authenticates raw from the driver's side, has the poolworker
// (or dialled-in worker) at addr run this program, and starts the session.
// Everything after the handshake crosses the encrypted channel it sets up.
func (p *driver) setupRemote(raw net.Conn, addr string) (*wconn, error) {
	conn, err := p.handshake(raw, addr)
	if err != nil {
		return nil, err
	}
	return p.setupSession(conn, addr)
}

// handshake authenticates the poolworker at the other end of raw and
// returns the channel to it.
func (p *driver) handshake(raw net.Conn, addr string) (net.Conn, error) {
	auth := p.s.auth
	if p.s.certs != nil {
		// Read again if the files were renewed since (cluster.TLS).
		var err error
		if auth.Cert, auth.CA, err = p.s.certs.Current(); err != nil {
			p.logf(slog.LevelWarn, "certificates", "cause", err)
		}
	}
	conn, err := wire.DriverHandshake(raw, auth, wire.DefaultHandshakeTimeout)
	if err != nil {
		return nil, fmt.Errorf("poolworker %s: %w", addr, err)
	}
	return conn, nil
}

// setupSession starts a worker process on the poolworker at the other end
// of conn, authenticated, sending it the executable if its node lacks it.
func (p *driver) setupSession(conn net.Conn, addr string) (*wconn, error) {
	sum, size, err := exeDigest(p.exe)
	if err != nil {
		return nil, err
	}
	boot := wire.NewUnbufferedCodec(conn, 0)
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	if err := boot.Send(wire.KindSetup, wire.Setup{GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, SHA256: sum, Size: size, Args: workerArgs()}); err != nil {
		return nil, fmt.Errorf("poolworker %s: %w", addr, err)
	}
	var reply wire.SetupReply
	if err := recvInto(boot, wire.KindSetupReply, &reply); err != nil {
		return nil, fmt.Errorf("poolworker %s: %w", addr, err)
	}
	if reply.Error != "" {
		return nil, fmt.Errorf("poolworker %s refused: %s", addr, reply.Error)
	}
	if reply.NeedBinary {
		conn.SetDeadline(time.Now().Add(5 * time.Minute))
		if err := sendFile(boot, p.exe); err != nil {
			return nil, fmt.Errorf("poolworker %s: sending the executable: %w", addr, err)
		}
		if err := recvInto(boot, wire.KindSetupReply, &reply); err != nil {
			return nil, fmt.Errorf("poolworker %s: %w", addr, err)
		}
		if reply.Error != "" {
			return nil, fmt.Errorf("poolworker %s refused the executable: %s", addr, reply.Error)
		}
	}
	conn.SetDeadline(time.Time{})
	return p.startConn(conn, boot, "poolworker "+addr, wire.DefaultHandshakeTimeout+5*time.Second)
}

// workerArgs are the arguments of a worker process: the program's own, so
// that its main reaches cluster.New as the driver's did. A test binary's
// worker must run no test: if the test binary's TestMain does not call
// WorkerMain first, the worker then exits at once, and the driver says what
// to add, instead of every test running again in every worker.
func workerArgs() []string {
	args := os.Args[1:]
	if testing.Testing() {
		args = append(slices.Clip(args), "-test.run=^$", "-test.bench=^$", "-test.fuzz=", "-test.list=")
	}
	return args
}

// exitedEarly explains a worker process that exited before it connected.
func exitedEarly(waitErr error, out *tail.Buffer) string {
	status := "with status 0"
	if waitErr != nil {
		status = "(" + waitErr.Error() + ")"
	}
	if testing.Testing() && waitErr == nil {
		return fmt.Sprintf("exited %s before it reached cluster.New: this test binary needs a TestMain that calls cluster.WorkerMain first:\n\n\tfunc TestMain(m *testing.M) {\n\t\tcluster.WorkerMain()\n\t\tos.Exit(m.Run())\n\t}\n\n(see \"What runs twice\" in the README)%s", status, out.Report())
	}
	return fmt.Sprintf("exited %s before it reached cluster.New: a worker process is this program started again with the same arguments, and every path through main must reach cluster.New before doing its own work (see \"What runs twice\" in the README)%s", status, out.Report())
}

func recvInto(c *wire.Codec, want wire.Kind, v any) error {
	k, body, err := c.Recv()
	if err != nil {
		return err
	}
	if k == wire.KindError {
		var e wire.ErrorMsg
		c.Decode(body, &e)
		return fmt.Errorf("%s", e.Message)
	}
	if k != want {
		return fmt.Errorf("%w: want %s, got %s", wire.ErrMalformed, want, k)
	}
	return c.Decode(body, v)
}

func sendFile(c *wire.Codec, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for {
		n, err := f.Read(buf)
		if n > 0 {
			if err := c.SendRaw(wire.KindBinary, buf[:n]); err != nil {
				return err
			}
		}
		if err == io.EOF {
			return c.SendRaw(wire.KindBinary, nil)
		}
		if err != nil {
			return err
		}
	}
}

var digest struct {
	once sync.Once
	sum  string
	size int64
	err  error
}

// exeDigest returns the SHA-256 of the executable, computed once.
func exeDigest(path string) (string, int64, error) {
	digest.once.Do(func() {
		f, err := os.Open(path)
		if err != nil {
			digest.err = err
			return
		}
		defer f.Close()
		h := sha256.New()
		n, err := io.Copy(h, f)
		digest.sum, digest.size, digest.err = hex.EncodeToString(h.Sum(nil)), n, err
	})
	return digest.sum, digest.size, digest.err
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}
