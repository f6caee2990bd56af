//go:build unix

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/mpgo/mp/internal/secure"
	"github.com/mpgo/mp/internal/tail"
	"github.com/mpgo/mp/internal/wire"
)

// child is a worker process this poolworker started.
type child struct {
	cmd     *exec.Cmd
	start   time.Time
	log     *slog.Logger
	out     *tail.Buffer  // its last output
	sha     string        // the executable's SHA-256, in use until the process exits
	started *os.File      // read end of its status pipe: a byte when it reaches WorkerMain, then its counts
	said    chan bool     // whether it wrote that byte before the pipe ended; buffered
	read    chan struct{} // closed when the status pipe is read to the end
	exited  chan struct{} // closed when it has been waited for
	waitErr error         // how it ended, once exited is closed
}

// startTimeout is how long a worker process may take to reach
// cluster.WorkerMain; the driver waits longer for its Ready, so that it
// gets the reason from here rather than a timeout.
const startTimeout = 10 * time.Second

// childEnvKeys are the variables of poolworker's environment a worker
// process inherits; nothing else (MP_TOKEN in particular) reaches it. The Go
// runtime's own settings pass through so that a node can tune or debug its
// workers.
var childEnvKeys = []string{"PATH", "HOME", "TMPDIR", "LANG", "GOMAXPROCS", "GOGC", "GOMEMLIMIT", "GOTRACEBACK", "GORACE"}

// spawn starts the executable exe (open, its SHA-256 checked) with args as
// a worker process that takes over conn, the driver's channel: the process
// gets its connection as file descriptor 3 and its transport state (keys
// and nonces, never the token) on a pipe as descriptor 6, and says Ready
// itself. The file executed is exe itself, through /proc/self/fd, not its
// path: a file put in its place after the check is never run. A goroutine
// waits for the process and logs its exit. spawn returns once the process
// has reached cluster.WorkerMain (it says so on descriptor 4); if it exits
// before, or does not reach it within startTimeout (it is then killed),
// spawn tells the driver why, with the process's last lines of output, in
// an Error on boot: the process wrote nothing on the channel then, so no
// nonce is used twice. After spawn returns, nothing may be written to conn
// here; the caller closes its copy.
func (s *server) spawn(conn *secure.Conn, boot *wire.Codec, exe *os.File, args []string, sha string, log *slog.Logger) error {
	fc, ok := conn.NetConn().(interface{ File() (*os.File, error) })
	if !ok {
		return refuse("this node cannot pass a %T to a worker process", conn.NetConn())
	}
	send, recv, err := conn.State()
	if err != nil {
		return refuse("protocol error: %v", err)
	}
	state := secure.AppendState(nil, send, recv)
	defer clear(state)
	f, err := fc.File()
	if err != nil {
		return fmt.Errorf("duplicating the connection for the worker process: %w", err)
	}
	defer f.Close()
	for attempt := 1; ; attempt++ {
		c, err := s.startChild(exe, args, sha, f, state, log)
		if err == nil {
			log.Info("worker process started", "pid", c.cmd.Process.Pid, "capacity", s.cfg.capacity)
			if why := c.waitStarted(); why != "" {
				log.Warn("worker process did not start", "pid", c.cmd.Process.Pid, "reason", why)
				conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
				boot.Send(wire.KindError, wire.ErrorMsg{Message: why})
			}
			return nil
		}
		// ETXTBSY: a process forked meanwhile (for another worker) still
		// held the upload's write descriptor. It is brief; try again.
		if !errors.Is(err, syscall.ETXTBSY) || attempt == 20 {
			return err
		}
		time.Sleep(time.Duration(attempt) * 5 * time.Millisecond)
	}
}

// exeFD is the descriptor through which a worker process's executable is
// run (/proc/self/fd/5): the file poolworker opened and hashed, passed like
// the connection (3) and the status pipe (4). The process keeps it open, a
// read-only descriptor of its own executable.
const exeFD = 5

// startChild starts one worker process on f, with the transport state
// state on a pipe (descriptor 6), and records it, unless the server is
// shutting down. A goroutine reads its status pipe.
func (s *server) startChild(exe *os.File, args []string, sha string, f *os.File, state []byte, log *slog.Logger) (*child, error) {
	keys, err := keysPipe(state)
	if err != nil {
		return nil, err
	}
	defer keys.Close()
	started, startedW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("a pipe for the worker process: %w", err)
	}
	defer startedW.Close()
	out := &tail.Buffer{}
	cmd := exec.Command(fdDir+strconv.Itoa(exeFD), args...)
	cmd.Args[0] = exe.Name() // its path in the cache, as os.Args[0]
	cmd.Env = childEnv(s.cfg.capacity, s.cfg.user)
	cmd.ExtraFiles = []*os.File{f, startedW, exe, keys} // descriptors 3, 4, exeFD and 6
	cmd.Stdout = io.MultiWriter(s.childOut, out)
	cmd.Stderr = cmd.Stdout
	cmd.SysProcAttr = procAttr(s.cfg.user)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		started.Close()
		return nil, refuse("the node is shutting down")
	}
	if err := cmd.Start(); err != nil {
		started.Close()
		if errors.Is(err, syscall.ETXTBSY) {
			return nil, err
		}
		return nil, refuse("this node cannot start the executable: %v", err)
	}
	c := &child{cmd: cmd, start: time.Now(), out: out, sha: sha, started: started,
		said: make(chan bool, 1), read: make(chan struct{}), exited: make(chan struct{})}
	c.log = log.With("pid", cmd.Process.Pid)
	s.children[cmd.Process.Pid] = c
	s.reapers.Add(1)
	go s.readStatus(c)
	go s.reap(c)
	return c, nil
}

// childEnv returns a worker process's environment: a few variables of
// poolworker's own, and those that make the program serve as a worker on
// descriptor 3 (see cluster.WorkerMain). With -user, HOME is that user's.
func childEnv(capacity int, u *runAs) []string {
	var env []string
	for _, k := range childEnvKeys {
		if k == "HOME" && u != nil {
			env = append(env, "HOME="+u.home)
			continue
		}
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return append(env, "MP_WORKER=fd", "MP_WORKER_FD=3", "MP_WORKER_STARTED_FD=4", "MP_WORKER_KEYS_FD=6", "MP_WORKER_CAPACITY="+strconv.Itoa(capacity))
}

// keysPipe returns the read end of a pipe that holds state and then ends:
// the worker process reads its transport state there (spec.md, "Handover
// to the worker process"). The state, 80 bytes, fits in the pipe's buffer.
func keysPipe(state []byte) (*os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("a pipe for the worker process's keys: %w", err)
	}
	_, err = w.Write(state)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("writing the worker process's keys: %w", err)
	}
	return r, nil
}

// readStatus reads c's status pipe: the byte that says c reached
// cluster.WorkerMain, then the counts it reports (spec.md, "Counts"), until
// the pipe ends.
func (s *server) readStatus(c *child) {
	defer close(c.read)
	var b [1]byte
	n, _ := c.started.Read(b[:]) // EOF when it exits without a word
	c.said <- n == 1
	if n == 1 {
		s.metrics.readCounts(c.started)
	}
}

// waitStarted waits until c says it reached cluster.WorkerMain, and returns
// "", or returns why it did not: it exited, or took over startTimeout (it is
// killed then: it serves nobody).
func (c *child) waitStarted() string {
	pid := c.cmd.Process.Pid
	select {
	case ok := <-c.said:
		if ok {
			return ""
		}
		<-c.exited
		status := "with status 0"
		if c.waitErr != nil {
			status = "(" + c.waitErr.Error() + ")"
		}
		return fmt.Sprintf("worker process %d exited %s before it reached cluster.New: a worker process is the program started again with the same arguments, and every path through main must reach cluster.New before doing its own work (see \"What runs twice\" in mp's README)%s", pid, status, c.out.Report())
	case <-time.After(startTimeout):
		syscall.Kill(-pid, syscall.SIGKILL)
		c.cmd.Process.Kill()
		return fmt.Sprintf("worker process %d did not reach cluster.New within %v and was killed: is main blocked before it? (see \"What runs twice\" in mp's README)%s", pid, startTimeout, c.out.Report())
	}
}

// countsDrain bounds the wait for the rest of an exited worker process's
// status pipe: what it wrote is in the pipe already, but a process it
// started may hold the pipe open.
const countsDrain = time.Second

// reap waits for c to exit, reads the rest of its counts, forgets it and
// logs how it ended.
func (s *server) reap(c *child) {
	defer s.reapers.Done()
	err := c.cmd.Wait()
	c.waitErr = err
	close(c.exited)
	c.started.SetReadDeadline(time.Now().Add(countsDrain))
	<-c.read
	c.started.Close()
	s.mu.Lock()
	delete(s.children, c.cmd.Process.Pid)
	s.mu.Unlock()
	s.releaseExe(c.sha)
	s.metrics.sessions.Dec()
	attrs := []any{"duration", time.Since(c.start).Round(time.Millisecond)}
	st := c.cmd.ProcessState
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		attrs = append(attrs, "signal", ws.Signal().String())
	} else {
		attrs = append(attrs, "exit_code", st.ExitCode())
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		attrs = append(attrs, "err", err)
	}
	c.log.Info("worker process exited", attrs...)
}

// signalChildren sends SIGTERM to every worker process and returns how many
// there are.
func (s *server) signalChildren() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.children {
		if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			c.log.Debug("SIGTERM failed", "err", err)
		}
	}
	return len(s.children)
}

// waitChildren waits until every worker process has been reaped, or ctx is
// done. No new process may start meanwhile.
func (s *server) waitChildren(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		s.reapers.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// killChildren kills every worker process left, with the processes it
// started (its process group), and returns how many there were.
func (s *server) killChildren() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for pid, c := range s.children {
		c.log.Warn("killing the worker process")
		syscall.Kill(-pid, syscall.SIGKILL)
		c.cmd.Process.Kill()
	}
	return len(s.children)
}
