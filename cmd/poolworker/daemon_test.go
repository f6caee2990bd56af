//go:build unix

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mpgo/mp/internal/testenv"
	"github.com/mpgo/mp/pool"
	"github.com/mpgo/mp/pool/cluster"
	"github.com/mpgo/mp/pool/pooltest"
)

// daemonEnv is this process's environment without the variables that
// configure poolworker or cluster pools.
func daemonEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MP_") && !strings.HasPrefix(kv, "POOLWORKER_") {
			env = append(env, kv)
		}
	}
	return env
}

// daemon is a poolworker process.
type daemon struct {
	cmd     *exec.Cmd
	addr    string
	logPath string
	exited  bool
}

// startDaemon starts the poolworker binary on a free loopback port with
// MP_TOKEN=testToken, JSON logs to a file, and the given flags. It waits
// until the daemon listens. When the test ends, the daemon is stopped and
// its log shown if the test failed.
//
// It starts no goroutine in this process: the conformance suite checks that
// none of this module's are left behind by its pools.
func startDaemon(t *testing.T, args ...string) *daemon {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "poolworker.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	args = append([]string{"-listen", "127.0.0.1:0", "-log-format", "json"}, args...)
	cmd := exec.Command(testenv.Poolworker(t), args...)
	cmd.Env = append(daemonEnv(), "MP_TOKEN="+testToken)
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemon{cmd: cmd, logPath: logPath}
	t.Cleanup(func() {
		d.stop(t)
		if t.Failed() || os.Getenv("POOLWORKER_TEST_LOGS") != "" {
			t.Logf("poolworker %v log:\n%s", args, d.log())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for d.addr == "" {
		if time.Now().After(deadline) {
			t.Fatal("poolworker did not log its address")
		}
		time.Sleep(10 * time.Millisecond)
		d.addr = d.listeningAddr()
	}
	return d
}

// log returns the daemon's log so far.
func (d *daemon) log() string {
	b, _ := os.ReadFile(d.logPath)
	return string(b)
}

// listeningAddr returns the address in the daemon's "listening" log line,
// or "".
func (d *daemon) listeningAddr() string {
	sc := bufio.NewScanner(strings.NewReader(d.log()))
	for sc.Scan() {
		var rec struct{ Msg, Addr string }
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "listening" {
			return rec.Addr
		}
	}
	return ""
}

// wait waits up to timeout for the daemon to exit, kills it after that, and
// returns its exit code.
func (d *daemon) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	if d.exited {
		return d.cmd.ProcessState.ExitCode()
	}
	timer := time.AfterFunc(timeout, func() { d.cmd.Process.Kill() })
	defer timer.Stop()
	err := d.cmd.Wait()
	d.exited = true
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Errorf("waiting for poolworker: %v", err)
	}
	if !timer.Stop() {
		t.Errorf("poolworker did not exit within %v; killed", timeout)
	}
	return d.cmd.ProcessState.ExitCode()
}

// stop sends SIGTERM to the daemon, if it runs, and checks it exits 0.
func (d *daemon) stop(t *testing.T) {
	if d.exited {
		return
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	if code := d.wait(t, 15*time.Second); code != 0 {
		t.Errorf("poolworker exited with code %d after SIGTERM", code)
	}
}

// poolworker -h explains itself and exits 0.
func TestDaemonHelp(t *testing.T) {
	cmd := exec.Command(testenv.Poolworker(t), "-h")
	cmd.Env = daemonEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("poolworker -h: %v\n%s", err, out)
	}
	for _, want := range []string{"MP_ADDRESS", "MP_TOKEN", "-capacity", "-token-file", "approximate_pi",
		"-metrics-listen", "/readyz", "-cache-max", "CGO_ENABLED=0"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("poolworker -h does not mention %s:\n%s", want, out)
		}
	}
}

// Bad flags stop poolworker at once with exit code 2 and a message naming
// what to fix.
func TestDaemonBadFlags(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"-capacity", "0"}, []string{"-capacity"}},
		{[]string{"-listen", "0.0.0.0:0"}, []string{"-token-file", "MP_TOKEN"}},
		{[]string{"-max-binary", "lots"}, []string{"-max-binary"}},
		{[]string{"-cache-max", "-1"}, []string{"-cache-max"}},
		{[]string{"-metrics-listen", "nowhere"}, []string{"-metrics-listen"}},
		{[]string{"-no-such-flag"}, []string{"-no-such-flag"}},
		{[]string{"-token", "a", "-token-file", "b"}, []string{"-token", "-token-file"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			cmd := exec.Command(testenv.Poolworker(t), tt.args...)
			cmd.Env = daemonEnv()
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var exitErr *exec.ExitError
			if !errors.As(err, &exitErr) || exitErr.ExitCode() != 2 {
				t.Fatalf("exit: %v, want code 2; stderr:\n%s", err, &stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr does not mention %s:\n%s", w, &stderr)
				}
			}
		})
	}
}

// On SIGTERM, a poolworker's worker process finishes the chunks it holds,
// so a Map running on that one node still returns every result, and the
// poolworker then exits 0.
func TestDaemonDrainsOnSIGTERM(t *testing.T) {
	d := startDaemon(t, "-capacity", "2", "-cache-dir", filepath.Join(t.TempDir(), "cache"), "-drain-timeout", "20s")
	p := newPool(t, []string{d.addr})
	// 4 chunks of 10 items of 100ms. A node takes 2×capacity chunks at
	// once, so all 4 are on the node when it is told to stop: 2 running, 2
	// queued in the worker process. The first item of each chunk says when
	// the chunk starts.
	flags := t.TempDir()
	items := make([]napItem, 40)
	for i := range items {
		items[i].Ms = 100
		if i%10 == 0 {
			items[i].Flag = filepath.Join(flags, strconv.Itoa(i))
		}
	}
	type result struct {
		got []int
		err error
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		got, err := pool.MapCtx(ctx, p, nap, items, pool.Chunksize(10))
		done <- result{got, err}
	}()
	waitFor(t, func() bool {
		started, _ := os.ReadDir(flags)
		return len(started) >= 2
	}, "two chunks to run")
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("Map after SIGTERM: %v", r.err)
	}
	if len(r.got) != len(items) {
		t.Fatalf("%d results for %d items", len(r.got), len(items))
	}
	for i, v := range r.got {
		if v != 101 {
			t.Fatalf("result %d = %d, want 101", i, v)
		}
	}
	if took := time.Since(start); took < 1500*time.Millisecond {
		t.Fatalf("Map took %v: the chunks cannot have run", took)
	}
	if code := d.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("poolworker exited with code %d", code)
	}
	log := d.log()
	for _, want := range []string{"signal received: draining", "SIGTERM", "all worker processes exited", `"msg":"stopped"`} {
		if !strings.Contains(log, want) {
			t.Errorf("the log does not mention %q", want)
		}
	}
	if strings.Contains(log, "drain time is up") {
		t.Error("poolworker had to kill its worker process")
	}
}

// The whole conformance suite of package pool, on two poolworker processes
// sharing a cache: every pool the suite makes ships this test binary to
// them (in parallel, the first time) and runs on their worker processes.
//
// The poolworkers are processes, not servers in this process, because the
// suite checks that no goroutine of this module outlives a pool; a
// poolworker's own would count.
//
// Each node has capacity 1, so that a pool's capacity is the 2 workers most
// of the suite asks for: with poolworkers, each node's -capacity rules and
// pool.Workers only caps the chunks in flight, and ImapBoundedLookahead
// computes its bound from the Workers it asked for, not from p.Workers().
func TestConformance(t *testing.T) {
	cache := filepath.Join(t.TempDir(), "cache") // poolworker makes it, mode 0700
	a := startDaemon(t, "-capacity", "1", "-cache-dir", cache, "-drain-timeout", "1s")
	b := startDaemon(t, "-capacity", "1", "-cache-dir", cache, "-drain-timeout", "1s")
	pooltest.Run(t, func(t *testing.T, opts ...pool.Option) *pool.Pool {
		p, err := cluster.New(append(opts, cluster.Addresses(a.addr, b.addr), cluster.Token(testToken))...)
		if err != nil {
			t.Fatal(err)
		}
		return p
	})
}
