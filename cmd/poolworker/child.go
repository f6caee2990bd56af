//go:build unix

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// child is a worker process this poolworker started.
type child struct {
	cmd   *exec.Cmd
	start time.Time
	log   *slog.Logger
}

// childEnvKeys are the variables of poolworker's environment a worker
// process inherits; nothing else (MP_TOKEN in particular) reaches it. The Go
// runtime's own settings pass through so that a node can tune or debug its
// workers.
var childEnvKeys = []string{"PATH", "HOME", "TMPDIR", "LANG", "GOMAXPROCS", "GOGC", "GOMEMLIMIT", "GOTRACEBACK", "GORACE"}

// spawn starts the executable at path with args as a worker process that
// takes over conn, the driver's connection: the process gets it as file
// descriptor 3 and says Ready itself. After spawn returns nil, nothing may
// be written to conn here; the caller closes its copy. A goroutine waits for
// the process and logs its exit.
func (s *server) spawn(conn net.Conn, path string, args []string, log *slog.Logger) error {
	fc, ok := conn.(interface{ File() (*os.File, error) })
	if !ok {
		return refuse("this node cannot pass a %T to a worker process", conn)
	}
	f, err := fc.File()
	if err != nil {
		return fmt.Errorf("duplicating the connection for the worker process: %w", err)
	}
	defer f.Close()
	for attempt := 1; ; attempt++ {
		c, err := s.startChild(path, args, f, log)
		if err == nil {
			log.Info("worker process started", "pid", c.cmd.Process.Pid, "capacity", s.cfg.capacity)
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

// startChild starts one worker process on f and records it, unless the
// server is shutting down.
func (s *server) startChild(path string, args []string, f *os.File, log *slog.Logger) (*child, error) {
	cmd := exec.Command(path, args...)
	cmd.Env = childEnv(s.cfg.capacity)
	cmd.ExtraFiles = []*os.File{f} // descriptor 3
	cmd.Stdout, cmd.Stderr = s.childOut, s.childOut
	cmd.SysProcAttr = procAttr()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return nil, refuse("the node is shutting down")
	}
	if err := cmd.Start(); err != nil {
		if errors.Is(err, syscall.ETXTBSY) {
			return nil, err
		}
		return nil, refuse("this node cannot start the executable: %v", err)
	}
	c := &child{cmd: cmd, start: time.Now()}
	c.log = log.With("pid", cmd.Process.Pid)
	s.children[cmd.Process.Pid] = c
	s.reapers.Add(1)
	go s.reap(c)
	return c, nil
}

// childEnv returns a worker process's environment: a few variables of
// poolworker's own, and those that make the program serve as a worker on
// descriptor 3 (see cluster.WorkerMain).
func childEnv(capacity int) []string {
	var env []string
	for _, k := range childEnvKeys {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return append(env, "MP_WORKER=fd", "MP_WORKER_FD=3", "MP_WORKER_CAPACITY="+strconv.Itoa(capacity))
}

// reap waits for c to exit, forgets it and logs how it ended.
func (s *server) reap(c *child) {
	defer s.reapers.Done()
	err := c.cmd.Wait()
	s.mu.Lock()
	delete(s.children, c.cmd.Process.Pid)
	s.mu.Unlock()
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
