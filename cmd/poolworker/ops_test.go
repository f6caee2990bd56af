//go:build unix

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mpgo/mp/internal/testenv"
	"github.com/mpgo/mp/pool"
)

// metricsAddr returns the -metrics-listen address in the daemon's
// "listening" log line.
func (d *daemon) metricsAddr(t *testing.T) string {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(d.log()))
	for sc.Scan() {
		var rec struct{ Msg, Metrics string }
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "listening" && rec.Metrics != "" {
			return rec.Metrics
		}
	}
	t.Fatalf("poolworker did not log its metrics address:\n%s", d.log())
	return ""
}

// get fetches http://addr/path and returns the status code and body.
func get(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, string(b)
}

// metric returns the value of the sample series (a metric name with its
// labels, as exposed: `mp_poolworker_chunks_total{outcome="ok"}`) in a
// text exposition, and whether it is there.
func metric(exposition, series string) (float64, bool) {
	for line := range strings.Lines(exposition) {
		rest, ok := strings.CutPrefix(line, series+" ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		return v, err == nil
	}
	return 0, false
}

// scrape returns the value of series on the daemon's /metrics; a series
// missing fails the test.
func scrape(t *testing.T, addr, series string) float64 {
	t.Helper()
	code, body := get(t, addr, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d\n%s", code, body)
	}
	v, ok := metric(body, series)
	if !ok {
		t.Fatalf("/metrics has no %s:\n%s", series, body)
	}
	return v
}

// After a Map, /metrics on the poolworker shows the chunks and items its
// worker process ran, and the session, worker process and cached
// executable are accounted for; a driver with the wrong token is counted
// as a handshake failure.
func TestMetricsAfterMap(t *testing.T) {
	d := startDaemon(t, "-capacity", "2", "-cache-dir", filepath.Join(t.TempDir(), "cache"), "-metrics-listen", "127.0.0.1:0")
	addr := d.metricsAddr(t)
	if code, body := get(t, addr, "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz: %d %s", code, body)
	}
	if code, body := get(t, addr, "/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz: %d %s", code, body)
	}
	if v := scrape(t, addr, `mp_poolworker_chunks_total{outcome="ok"}`); v != 0 {
		t.Fatalf("chunks before any driver: %v", v)
	}

	p := newPool(t, []string{d.addr})
	const n, chunk = 1000, 10
	items := make([]int, n)
	for i := range items {
		items[i] = i
	}
	got, err := pool.Map(context.Background(), p, triple, items, pool.Chunksize(chunk))
	if err != nil || len(got) != n {
		t.Fatalf("Map: %d results, %v", len(got), err)
	}
	if v := scrape(t, addr, "mp_poolworker_sessions"); v != 1 {
		t.Errorf("sessions during the pool: %v, want 1", v)
	}
	if v := scrape(t, addr, "mp_poolworker_worker_processes"); v != 1 {
		t.Errorf("worker processes during the pool: %v, want 1", v)
	}
	p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Join(ctx); err != nil {
		t.Fatal(err)
	}
	// The worker process reports its last counts as it exits; the daemon
	// adds them when it reaps it.
	waitFor(t, func() bool { return scrape(t, addr, "mp_poolworker_worker_processes") == 0 }, "the worker process to exit")
	if v := scrape(t, addr, `mp_poolworker_chunks_total{outcome="ok"}`); v != n/chunk {
		t.Errorf(`chunks_total{outcome="ok"} = %v, want %d`, v, n/chunk)
	}
	if v := scrape(t, addr, `mp_poolworker_items_total{outcome="ok"}`); v != n {
		t.Errorf(`items_total{outcome="ok"} = %v, want %d`, v, n)
	}
	if v := scrape(t, addr, `mp_poolworker_chunks_total{outcome="error"}`); v != 0 {
		t.Errorf(`chunks_total{outcome="error"} = %v, want 0`, v)
	}
	if v := scrape(t, addr, "mp_poolworker_sessions"); v != 0 {
		t.Errorf("sessions after the pool: %v, want 0", v)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(exe)
	if err != nil {
		t.Fatal(err)
	}
	if v := scrape(t, addr, "mp_poolworker_cache_bytes"); v != float64(info.Size()) {
		t.Errorf("cache_bytes = %v, want the test binary's %d", v, info.Size())
	}
	if v := scrape(t, addr, "mp_poolworker_uploads_total"); v != 1 {
		t.Errorf("uploads_total = %v, want 1", v)
	}

	if _, err := dial(d.addr, "wrong"); err == nil {
		t.Fatal("a driver with the wrong token was accepted")
	}
	waitFor(t, func() bool { return scrape(t, addr, `mp_poolworker_handshake_failures_total{reason="auth"}`) == 1 },
		"a handshake failure for reason auth")
}

// While a poolworker drains after SIGTERM, /readyz answers 503 and
// /healthz 200; the poolworker still exits 0 once its worker process is
// done.
func TestReadyzWhileDraining(t *testing.T) {
	d := startDaemon(t, "-capacity", "1", "-cache-dir", filepath.Join(t.TempDir(), "cache"), "-metrics-listen", "127.0.0.1:0", "-drain-timeout", "30s")
	addr := d.metricsAddr(t)
	p := newPool(t, []string{d.addr})
	flag := filepath.Join(t.TempDir(), "started")
	pool.ApplyAsyncCtx(context.Background(), p, block, flag)
	waitFor(t, func() bool { _, err := os.Stat(flag); return err == nil }, "the chunk to run")
	if code, body := get(t, addr, "/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz before SIGTERM: %d %s", code, body)
	}
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The worker process holds its chunk until the driver goes: the
	// poolworker drains until then.
	var code int
	var body string
	waitFor(t, func() bool {
		code, body = get(t, addr, "/readyz")
		return code != http.StatusOK
	}, "/readyz to fail")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "draining") {
		t.Errorf("/readyz while draining: %d %q, want 503 draining", code, body)
	}
	if code, body := get(t, addr, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz while draining: %d %s", code, body)
	}
	if v := scrape(t, addr, "mp_poolworker_worker_processes"); v != 1 {
		t.Errorf("worker processes while draining: %v, want 1", v)
	}
	p.Terminate()
	if code := d.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("poolworker exited with code %d", code)
	}
}

// A metrics address already in use stops poolworker at once, with exit
// code 1 and the reason.
func TestMetricsPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cmd := exec.Command(testenv.Poolworker(t), "-listen", "127.0.0.1:0", "-cache-dir", filepath.Join(t.TempDir(), "cache"),
		"-metrics-listen", ln.Addr().String())
	cmd.Env = append(daemonEnv(), "MP_TOKEN="+testToken)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	timer := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
	defer timer.Stop()
	err = cmd.Run()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 1 {
		t.Fatalf("exit: %v, want code 1; stderr:\n%s", err, &stderr)
	}
	for _, want := range []string{"-metrics-listen", "address already in use", ln.Addr().String()} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr does not mention %q:\n%s", want, &stderr)
		}
	}
}

// poolworker -version prints the build's version, Go version and system.
func TestVersion(t *testing.T) {
	cmd := exec.Command(testenv.Poolworker(t), "-version")
	cmd.Env = daemonEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("poolworker -version: %v\n%s", err, out)
	}
	f := strings.Fields(string(out))
	if len(f) < 4 || f[0] != "poolworker" || f[1] == "unknown" || f[1] == "" {
		t.Fatalf("poolworker -version printed %q", out)
	}
	for _, want := range []string{runtime.Version(), runtime.GOOS + "/" + runtime.GOARCH} {
		if !strings.Contains(string(out), want) {
			t.Errorf("poolworker -version does not mention %s: %q", want, out)
		}
	}
}

// A program that imports pool/cluster (or any package under pool/) does not
// link the metrics library: poolworker alone does.
func TestPoolLinksNoMetrics(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to list dependencies: %v", err)
	}
	out, err := exec.Command(goTool, "list", "-deps", "github.com/mpgo/mp/pool/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := string(out)
	if !strings.Contains(deps, "github.com/mpgo/mp/pool/cluster\n") {
		t.Fatalf("go list -deps ./pool/... does not list pool/cluster:\n%s", deps)
	}
	for _, bad := range []string{"github.com/prometheus/", "google.golang.org/protobuf"} {
		if strings.Contains(deps, bad) {
			t.Errorf("packages under pool/ depend on %s", bad)
		}
	}
	out, err = exec.Command(goTool, "list", "-deps", "github.com/mpgo/mp/cmd/poolworker").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "github.com/prometheus/client_golang/prometheus\n") {
		t.Fatalf("poolworker does not depend on the metrics library (the check above checks nothing): %v", err)
	}
}
