//go:build unix

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mpgo/mp/internal/testenv"
	"github.com/mpgo/mp/internal/wire"
	"github.com/mpgo/mp/pool"
	"github.com/mpgo/mp/pool/cluster"
)

// A driver with the wrong token fails at once with ErrAuth, told to check
// MP_TOKEN, and the node logs a warning.
func TestWrongToken(t *testing.T) {
	s := startServer(t, nil)
	start := time.Now()
	p, err := cluster.New(pool.Workers(1), cluster.Addresses(s.addr), cluster.Token("wrong"))
	if err == nil {
		p.Terminate()
		t.Fatal("cluster.New succeeded with the wrong token")
	}
	if !errors.Is(err, wire.ErrAuth) || !strings.Contains(err.Error(), "MP_TOKEN") {
		t.Fatalf("error %q: want wire.ErrAuth, mentioning MP_TOKEN", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("cluster.New took %v to fail", d)
	}
	waitFor(t, func() bool { return strings.Contains(s.logs.String(), `level=WARN msg="handshake failed"`) },
		"a warning about the failed handshake in the log")
}

// A driver built for another architecture is told which to build for.
func TestWrongArchitecture(t *testing.T) {
	s := startServer(t, nil)
	other := "arm64"
	if runtime.GOARCH == other {
		other = "amd64"
	}
	c := mustDial(t, s.addr)
	setup := setupFor([]byte("x"))
	setup.GOARCH = other
	r, err := c.setup(setup)
	if err != nil {
		t.Fatal(err)
	}
	here, there := runtime.GOOS+"/"+runtime.GOARCH, runtime.GOOS+"/"+other
	if !strings.Contains(r.Error, here) || !strings.Contains(r.Error, there) || !strings.Contains(r.Error, "GOARCH="+runtime.GOARCH) {
		t.Fatalf("SetupReply.Error %q: want both %s and %s, and how to build", r.Error, here, there)
	}
	if _, err := c.readAll(); err != nil {
		t.Fatalf("the node did not close the connection: %v", err)
	}
}

// Setups the node cannot honour are refused with a reason.
func TestBadSetup(t *testing.T) {
	s := startServer(t, func(c *config) { c.maxBinary = 1 << 20 })
	good := setupFor([]byte("x"))
	tests := []struct {
		name string
		edit func(*wire.Setup)
		want string
	}{
		{"short hash", func(s *wire.Setup) { s.SHA256 = "abc" }, "64 hex digits"},
		{"path in hash", func(s *wire.Setup) { s.SHA256 = "../" + s.SHA256[3:] }, "64 hex digits"},
		{"empty", func(s *wire.Setup) { s.Size = 0 }, "size 0"},
		{"too big", func(s *wire.Setup) { s.Size = 2 << 20 }, "-max-binary"},
		{"other OS", func(s *wire.Setup) { s.GOOS = "plan9" }, "plan9/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setup := good
			tt.edit(&setup)
			r, err := mustDial(t, s.addr).setup(setup)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(r.Error, tt.want) {
				t.Fatalf("SetupReply.Error %q: want it to mention %q", r.Error, tt.want)
			}
		})
	}
}

// Uploads that do not match their Setup are refused, and leave nothing in
// the cache.
func TestBadUpload(t *testing.T) {
	s := startServer(t, nil)
	exe := []byte("#!/bin/sh\nexit 0\n")
	tests := []struct {
		name string
		send []byte
		want string
	}{
		{"other bytes", bytes.ToUpper(exe), "SHA-256"},
		{"too short", exe[:5], "has 5 bytes"},
		{"too long", append(append([]byte{}, exe...), "more"...), "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustDial(t, s.addr)
			r, err := c.setup(setupFor(exe))
			if err != nil || !r.NeedBinary {
				t.Fatalf("setup: %+v, %v", r, err)
			}
			c.sendBinary(tt.send, 4)
			r, err = c.reply()
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(r.Error, tt.want) {
				t.Fatalf("SetupReply.Error %q: want it to mention %q", r.Error, tt.want)
			}
		})
	}
	// A driver that hangs up in the middle of an upload.
	c := mustDial(t, s.addr)
	if _, err := c.setup(setupFor(exe)); err != nil {
		t.Fatal(err)
	}
	c.boot.SendRaw(wire.KindBinary, exe[:3])
	c.conn.Close()
	waitFor(t, func() bool {
		entries, _ := os.ReadDir(s.cfg.cacheDir)
		return len(entries) == 0
	}, "an empty cache")
	if n := s.uploads.Load(); n != 0 {
		t.Fatalf("%d uploads counted", n)
	}
}

// Peers that misbehave do not stop the node serving the next driver.
func TestBadClients(t *testing.T) {
	s := startServer(t, nil)
	// One that connects and says nothing holds no one up.
	idle, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	clients := []struct {
		name string
		run  func(t *testing.T, conn net.Conn)
	}{
		{"garbage", func(t *testing.T, conn net.Conn) {
			conn.Write(bytes.Repeat([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 10))
		}},
		{"hangs up at once", func(t *testing.T, conn net.Conn) { conn.Close() }},
		{"hangs up mid-handshake", func(t *testing.T, conn net.Conn) {
			conn.Read(make([]byte, 10))
			conn.Close()
		}},
		{"oversized frame", func(t *testing.T, conn net.Conn) {
			conn = handshake(t, conn)
			conn.Write([]byte{0xff, 0xff, 0xff, 0xff, byte(wire.KindSetup), 1, 2, 3})
		}},
		{"huge binary piece", func(t *testing.T, conn net.Conn) {
			conn = handshake(t, conn)
			c := &client{conn, wire.NewUnbufferedCodec(conn, 0), nil}
			exe := bytes.Repeat([]byte{1}, 3<<20)
			if r, err := c.setup(setupFor(exe)); err != nil || !r.NeedBinary {
				t.Fatalf("setup: %+v, %v", r, err)
			}
			c.sendBinary(exe, 2<<20)
		}},
		{"empty frame", func(t *testing.T, conn net.Conn) {
			conn = handshake(t, conn)
			conn.Write([]byte{0, 0, 0, 0})
		}},
		{"unknown kind", func(t *testing.T, conn net.Conn) {
			conn = handshake(t, conn)
			conn.Write([]byte{0, 0, 0, 1, 200})
		}},
		{"Binary before Setup", func(t *testing.T, conn net.Conn) {
			conn = handshake(t, conn)
			c := &client{conn, wire.NewUnbufferedCodec(conn, 0), nil}
			c.boot.SendRaw(wire.KindBinary, []byte("x"))
			if r, err := c.reply(); err != nil || !strings.Contains(r.Error, "expected Setup") {
				t.Errorf("reply %+v, %v: want a protocol error", r, err)
			}
		}},
		{"Setup not msgpack", func(t *testing.T, conn net.Conn) {
			conn = handshake(t, conn)
			c := &client{conn, wire.NewUnbufferedCodec(conn, 0), nil}
			c.boot.SendRaw(wire.KindSetup, []byte{0xc1, 0xc1})
			if r, err := c.reply(); err != nil || !strings.Contains(r.Error, "protocol error") {
				t.Errorf("reply %+v, %v: want a protocol error", r, err)
			}
		}},
	}
	for _, tt := range clients {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", s.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			tt.run(t, conn)
			// The node closes the connection (or the client did).
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			for {
				if _, err := conn.Read(make([]byte, 512)); err != nil {
					if errors.Is(err, os.ErrDeadlineExceeded) {
						t.Fatal("the node kept the connection open")
					}
					break
				}
			}
			// And serves a real driver.
			checkTriples(t, newPool(t, []string{s.addr}), 100)
		})
	}
}

// handshake authenticates conn as a driver with testToken and returns the
// channel on it.
func handshake(t *testing.T, conn net.Conn) net.Conn {
	t.Helper()
	sc, err := wire.DriverHandshake(conn, wire.Auth{Token: []byte(testToken)}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// The connection reaches the worker process as descriptor 3, with the
// environment cluster.WorkerMain expects and nothing of poolworker's
// secrets; the executable is uploaded once and then found in the cache,
// even when several drivers send it at once.
func TestHandover(t *testing.T) {
	t.Setenv("MP_TOKEN", "secret")
	s := startServer(t, nil)
	// A worker process says on descriptor 4 that it started, as
	// cluster.WorkerMain does.
	// It finds the channel's transport state, 80 bytes, on descriptor 6
	// (spec.md, "Handover to the worker process").
	exe := []byte("#!/bin/sh\nprintf . >&4; exec 4>&-\nprintf '%s %s %s %s %s %s %s' \"$MP_WORKER\" \"$MP_WORKER_FD\" \"$MP_WORKER_CAPACITY\" \"${MP_TOKEN-unset}\" \"$MP_WORKER_KEYS_FD\" $(wc -c <&6 | tr -d ' ') \"$*\" >&3\n")
	const want = "fd 3 2 unset 6 80 "
	c := mustDial(t, s.addr)
	if uploaded, err := c.install(exe); err != nil || !uploaded {
		t.Fatalf("install: uploaded %v, %v", uploaded, err)
	}
	if got, err := c.readAll(); err != nil || got != want {
		t.Fatalf("the worker process wrote %q (%v), want %q", got, err, want)
	}

	// Again, from several drivers at once: no upload.
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			if err := installAndRead(s.addr, exe, want); err != nil {
				t.Errorf("driver %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if n := s.uploads.Load(); n != 1 {
		t.Fatalf("%d uploads, want 1", n)
	}

	// A new executable sent by several drivers at once is received once.
	exe2 := append(exe, "# 2\n"...)
	for i := range 4 {
		wg.Go(func() {
			if err := installAndRead(s.addr, exe2, want); err != nil {
				t.Errorf("driver %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if n := s.uploads.Load(); n != 2 {
		t.Fatalf("%d uploads, want 2", n)
	}
	if files := cachedFiles(t, s.cfg.cacheDir); len(files) != 2 {
		t.Fatalf("cache holds %q, want 2 executables", files)
	}
	info, err := os.Stat(s.cfg.cacheDir + "/" + setupFor(exe).SHA256)
	if err != nil || info.Mode().Perm() != 0o755 {
		t.Fatalf("cached executable: %v, %v", info.Mode(), err)
	}
}

// installAndRead installs exe on the node at addr as a driver would, and
// checks what the worker process writes on the connection.
func installAndRead(addr string, exe []byte, want string) error {
	c, err := dial(addr, testToken)
	if err != nil {
		return err
	}
	defer c.conn.Close()
	if _, err := c.install(exe); err != nil {
		return err
	}
	got, err := c.readAll()
	if err != nil || got != want {
		return fmt.Errorf("the worker process wrote %q (%v), want %q", got, err, want)
	}
	return nil
}

// A driver ships this test binary, and its Map runs on poolworker's worker
// processes; a second pool finds the binary in the cache.
func TestEndToEnd(t *testing.T) {
	s := startServer(t, nil)
	p := newPool(t, []string{s.addr})
	if p.Workers() != s.cfg.capacity {
		t.Errorf("Workers() = %d, want the node's capacity %d", p.Workers(), s.cfg.capacity)
	}
	checkTriples(t, p, 10000)
	p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Join(ctx); err != nil {
		t.Fatal(err)
	}
	if n := s.uploads.Load(); n != 1 {
		t.Fatalf("%d uploads, want 1", n)
	}

	checkTriples(t, newPool(t, []string{s.addr}), 10000)
	if n := s.uploads.Load(); n != 1 {
		t.Fatalf("the second pool uploaded the binary again: %d uploads", n)
	}
	if files := cachedFiles(t, s.cfg.cacheDir); len(files) != 1 {
		t.Fatalf("cache holds %q, want one executable", files)
	}
	// The first pool's worker process has exited.
	waitFor(t, func() bool { return strings.Contains(s.logs.String(), `msg="worker process exited"`) },
		"a worker process exit in the log")
}

// A worker process whose driver dies while a chunk waits on its context
// exits: the chunk's context is cancelled when the connection ends.
func TestDriverVanishes(t *testing.T) {
	if os.Getenv("MP_TEST_KNOWN_BUGS") == "" {
		t.Skip("pool/cluster bug: after its session ends, a worker process waits for its running chunks " +
			"without cancelling their contexts, so it never exits (serveWorker: w.wg.Wait after w.loop). " +
			"Run with MP_TEST_KNOWN_BUGS=1 to check a fix.")
	}
	s := startServer(t, nil)
	flag := filepath.Join(t.TempDir(), "running")
	var out testenv.Buffer
	driver := exec.Command(os.Args[0], "-test.run=^$")
	driver.Env = append(daemonEnv(), envDriver+"="+s.addr, envFlag+"="+flag)
	driver.Stdout, driver.Stderr = &out, &out
	if err := driver.Start(); err != nil {
		t.Fatal(err)
	}
	defer driver.Process.Kill()
	waitFor(t, func() bool { _, err := os.Stat(flag); return err == nil }, "the chunk to run")
	driver.Process.Kill()
	driver.Wait()
	waitFor(t, func() bool { return strings.Contains(s.logs.String(), `msg="worker process exited"`) },
		"the worker process to exit after its driver died")
}

// Shutdown sends SIGTERM to the worker processes, and kills those still
// running when its context ends, with the processes they started.
func TestShutdown(t *testing.T) {
	s := startServer(t, nil)
	// One that exits on SIGTERM, one that ignores it and starts another.
	obeys := []byte("#!/bin/sh\nprintf . >&4; exec 4>&-\nexec sleep 30\n")
	ignores := []byte("#!/bin/sh\nprintf . >&4; exec 4>&-\ntrap '' TERM\nsleep 30 &\necho $! >&3\nwait\n")
	c1 := mustDial(t, s.addr)
	if _, err := c1.install(obeys); err != nil {
		t.Fatal(err)
	}
	c2 := mustDial(t, s.addr)
	if _, err := c2.install(ignores); err != nil {
		t.Fatal(err)
	}
	line, err := readLine(c2.raw)
	if err != nil {
		t.Fatal(err)
	}
	grandchild, err := strconv.Atoi(line)
	if err != nil {
		t.Fatalf("worker process wrote %q", line)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = s.Shutdown(ctx)
	if err == nil || !strings.Contains(err.Error(), "killed 1 ") {
		t.Fatalf("Shutdown: %v, want one process killed", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Shutdown took %v", d)
	}
	for _, c := range []*client{c1, c2} {
		if _, err := c.readAll(); err != nil {
			t.Fatalf("a worker process's connection is still open: %v", err)
		}
	}
	waitFor(t, func() bool { return !alive(grandchild) }, "the worker process's own child to die")
	if _, err := net.DialTimeout("tcp", s.addr, time.Second); err == nil {
		t.Fatal("the node still accepts connections")
	}
	logs := s.logs.String()
	for _, want := range []string{"shutting down", "SIGTERM", "signal=killed", "drain time is up", "stopped"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log does not mention %q", want)
		}
	}
}

// readLine reads one line from conn.
func readLine(conn net.Conn) (string, error) {
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b []byte
	buf := make([]byte, 1)
	for {
		if _, err := conn.Read(buf); err != nil {
			return string(b), err
		}
		if buf[0] == '\n' {
			return string(b), nil
		}
		b = append(b, buf[0])
	}
}

// alive reports whether process pid exists and is not a zombie.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) S ...: the state follows the last ')'.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// waitFor waits up to 10s for cond.
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A worker process that leaves main, or blocks, before it reaches
// cluster.New: the driver's New fails with what happened, the worker's last
// output and the pointer to the README, instead of EOF or a timeout; the
// blocked process is killed; the node serves the next driver.
func TestWorkerNeverReachesNew(t *testing.T) {
	s := startServer(t, nil)
	for _, tc := range []struct {
		arg  string
		want []string
	}{
		{argExitEarly, []string{"exited with status 0 before it reached cluster.New", "What runs twice", "MP_INPUT is not set: nothing to do"}},
		{argBlockEarly, []string{"did not reach cluster.New within 10s and was killed", "blocked", "waiting for the lock file"}},
	} {
		t.Run(tc.arg, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$", tc.arg)
			cmd.Env = append(daemonEnv(), envNewOnly+"="+s.addr)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the driver started a pool: %s", out)
			}
			for _, want := range tc.want {
				if !strings.Contains(string(out), want) {
					t.Errorf("the driver said %q; want it to say %q", out, want)
				}
			}
		})
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(testenv.Children(os.Getpid())) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if kids := testenv.Children(os.Getpid()); len(kids) > 0 {
		t.Errorf("worker processes left running: %v", kids)
	}
	checkTriples(t, newPool(t, []string{s.addr}), 100)
}

// A node that cannot start the worker process (its cache is on a noexec
// mount) refuses with the reason, and the driver's New says it, not a
// malformed-message error.
func TestUnstartableWorkerReason(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a noexec tmpfs")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "noexec,size=256m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a noexec tmpfs here: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	s := startServer(t, func(c *config) { c.cacheDir = dir })
	_, err := cluster.New(cluster.Addresses(s.addr), cluster.Token(testToken), cluster.ReconnectFor(time.Second))
	if err == nil || strings.Contains(err.Error(), "malformed") || !strings.Contains(err.Error(), "cannot start the executable") || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("New against a node that cannot start workers: %v", err)
	}
}
