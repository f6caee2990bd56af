package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mpgo/mp/internal/testenv"
	"github.com/mpgo/mp/pool"
	"github.com/mpgo/mp/pool/cluster"
)

func init() {
	pool.MustRegister(slowSquare)
	pool.MustRegister(makeOpaque)
	pool.MustRegister(openBox)
	pool.MustRegister(spin)
}

// slowSquare takes about a millisecond: long Maps of it can be interrupted.
func slowSquare(x int) int {
	time.Sleep(time.Millisecond)
	return x * x
}

// opaque is a type that is not registered: in an interface it cannot
// cross.
type opaque struct{ N int }

type box struct{ V any }

// makeOpaque returns a result that cannot be encoded.
func makeOpaque(x int) box { return box{V: opaque{x}} }

// openBox takes an argument that may not be encodable.
func openBox(b box) int { return 1 }

func makeChan(int) chan int { return make(chan int) }

func unregistered(x int) int { return x }

func waitNoChildren(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(testenv.Children(os.Getpid())) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("child processes left: %v", testenv.Children(os.Getpid()))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func closeAndJoin(t *testing.T, p *pool.Pool) {
	t.Helper()
	p.Close()
	if err := p.Join(ctxFor(t, 30*time.Second)); err != nil {
		t.Fatalf("Join: %v", err)
	}
	waitNoChildren(t)
}

// Kill -9 a worker process in the middle of a long Map: the Map returns the
// exact result, and the pool goes on with a restarted worker.
func TestKillWorkerDuringMap(t *testing.T) {
	p, err := cluster.New(pool.Workers(2))
	if err != nil {
		t.Fatal(err)
	}
	defer closeAndJoin(t, p)
	in := ints(3000)
	res := pool.MapAsync(ctxFor(t, time.Minute), p, slowSquare, in, pool.Chunksize(20))
	time.Sleep(300 * time.Millisecond)
	kids := testenv.Children(os.Getpid())
	if len(kids) != 2 {
		t.Fatalf("want 2 worker processes, found %v", kids)
	}
	if err := syscall.Kill(kids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	got, err := res.Get(ctxFor(t, time.Minute))
	if err != nil {
		t.Fatalf("Map with a killed worker: %v", err)
	}
	if !slices.Equal(got, squares(len(in))) {
		t.Fatal("Map with a killed worker: wrong results")
	}
	if slices.Contains(testenv.Children(os.Getpid()), kids[0]) {
		t.Fatal("the killed worker is still a child")
	}
	if got, err := pool.Map(ctxFor(t, time.Minute), p, slowSquare, ints(50)); err != nil || !slices.Equal(got, squares(50)) {
		t.Fatalf("after the kill: %v", err)
	}
}

// A worker that stops answering (SIGSTOP: its TCP connection stays open) is
// detected by the heartbeat, and its chunks are re-run elsewhere.
func TestSilentWorker(t *testing.T) {
	p, err := cluster.New(pool.Workers(2), cluster.Heartbeat(100*time.Millisecond, 400*time.Millisecond), cluster.Logger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer closeAndJoin(t, p)
	res := pool.MapAsync(ctxFor(t, time.Minute), p, slowSquare, ints(2000), pool.Chunksize(10))
	time.Sleep(200 * time.Millisecond)
	kids := testenv.Children(os.Getpid())
	if len(kids) != 2 {
		t.Fatalf("want 2 worker processes, found %v", kids)
	}
	stopped := time.Now()
	syscall.Kill(kids[0], syscall.SIGSTOP)
	defer syscall.Kill(kids[0], syscall.SIGKILL)
	got, err := res.Get(ctxFor(t, time.Minute))
	if err != nil || !slices.Equal(got, squares(2000)) {
		t.Fatalf("Map with a silent worker: %v", err)
	}
	t.Logf("Map complete %v after the worker went silent (heartbeat 100ms, timeout 400ms)", time.Since(stopped).Round(time.Millisecond))
}

// With Retries(0), a chunk lost with its worker fails the call with
// ErrWorkerLost.
func TestRetriesExhausted(t *testing.T) {
	p, err := cluster.New(pool.Workers(1), cluster.Retries(0))
	if err != nil {
		t.Fatal(err)
	}
	defer closeAndJoin(t, p)
	res := pool.MapAsync(ctxFor(t, time.Minute), p, slowSquare, ints(2000), pool.Chunksize(10))
	time.Sleep(200 * time.Millisecond)
	for _, pid := range testenv.Children(os.Getpid()) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	_, err = res.Get(ctxFor(t, time.Minute))
	if !errors.Is(err, cluster.ErrWorkerLost) || !strings.Contains(err.Error(), "Retries is 0") {
		t.Fatalf("err = %v, want ErrWorkerLost", err)
	}
}

// With no worker left (they crash as they restart), calls fail with
// ErrNoWorkers within ReconnectFor, not hang (Python's Pool hangs here).
func TestNoWorkersLeft(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "crash")
	t.Setenv(crashEnv, marker)
	p, err := cluster.New(pool.Workers(2), cluster.ReconnectFor(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		p.Terminate()
		p.Join(ctxFor(t, 30*time.Second))
		waitNoChildren(t)
	}()
	res := pool.MapAsync(ctxFor(t, time.Minute), p, slowSquare, ints(5000), pool.Chunksize(10))
	time.Sleep(200 * time.Millisecond)
	os.WriteFile(marker, nil, 0o644) // restarted workers now exit at once
	start := time.Now()
	for _, pid := range testenv.Children(os.Getpid()) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	_, err = res.Get(ctxFor(t, time.Minute))
	if !errors.Is(err, pool.ErrNoWorkers) {
		t.Fatalf("err = %v, want ErrNoWorkers", err)
	}
	t.Logf("no workers left: the call failed %v after the kill: %v", time.Since(start).Round(time.Millisecond), err)
	if _, err := pool.Apply(ctxFor(t, time.Minute), p, slowSquare, 3); !errors.Is(err, pool.ErrNoWorkers) {
		t.Fatalf("a new call on a pool with no workers: %v", err)
	}
}

func TestUnregisteredFunctions(t *testing.T) {
	p, err := cluster.New(pool.Workers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer closeAndJoin(t, p)
	ctx := ctxFor(t, time.Minute)
	_, err = pool.Map(ctx, p, unregistered, ints(3))
	if !errors.Is(err, pool.ErrNotRegistered) || !strings.Contains(err.Error(), "pool.MustRegister(unregistered)") {
		t.Errorf("unregistered function: %v", err)
	}
	k := 3
	_, err = pool.Map(ctx, p, func(x int) int { return x * k }, ints(3))
	if !errors.Is(err, pool.ErrNotRegistered) || !strings.Contains(err.Error(), "closure") {
		t.Errorf("closure: %v", err)
	}
	if err := pool.Register(makeChan); !strings.Contains(fmt.Sprint(err), "chan int is a chan") {
		t.Errorf("Register of a function returning a channel: %v", err)
	}
	_, err = pool.Map(ctx, p, makeOpaque, ints(3), pool.Chunksize(3))
	var te *pool.TaskError
	if !errors.As(err, &te) || te.Index != 0 || !errors.Is(err, pool.ErrEncoding) || !strings.Contains(err.Error(), "RegisterType[cluster_test.opaque]") {
		t.Errorf("unencodable result: %v", err)
	}
	_, err = pool.Map(ctx, p, openBox, []box{{1}, {opaque{}}}, pool.Chunksize(2))
	if !errors.As(err, &te) || te.Index != 1 || !errors.Is(err, pool.ErrEncoding) || !strings.Contains(err.Error(), "at .V") {
		t.Errorf("unencodable argument: %v", err)
	}
	// The pool still works.
	if got, err := pool.Map(ctx, p, slowSquare, ints(10)); err != nil || !slices.Equal(got, squares(10)) {
		t.Fatalf("after bad calls: %v", err)
	}
}

func TestBadConfig(t *testing.T) {
	for _, tc := range []struct {
		opt  pool.Option
		want string
	}{
		{cluster.Retries(-1), "Retries(-1)"},
		{cluster.Heartbeat(0, time.Second), "Heartbeat"},
		{cluster.Addresses("nocolon"), "host:port"},
		{cluster.Addresses(), "at least one"},
		{cluster.ReconnectFor(0), "ReconnectFor"},
	} {
		_, err := cluster.New(tc.opt)
		if !errors.Is(err, pool.ErrConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", tc.want, err)
		}
	}
}

// Close and Terminate leave no child process behind.
func TestNoChildLeft(t *testing.T) {
	for _, terminate := range []bool{false, true} {
		p, err := cluster.New(pool.Workers(3))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Map(ctxFor(t, time.Minute), p, slowSquare, ints(100)); err != nil {
			t.Fatal(err)
		}
		if n := len(testenv.Children(os.Getpid())); n != 3 {
			t.Fatalf("%d worker processes, want 3", n)
		}
		if terminate {
			p.Terminate()
		} else {
			p.Close()
		}
		if err := p.Join(ctxFor(t, 30*time.Second)); err != nil {
			t.Fatal(err)
		}
		if kids := testenv.Children(os.Getpid()); len(kids) != 0 {
			t.Fatalf("after Join: child processes %v", kids)
		}
	}
}

// testLogger logs through t.Log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, nil))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

func ints(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

func squares(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i * i
	}
	return s
}

// Soak: a Map over 1,000,000 items while worker processes are killed at
// random intervals returns exactly the serial result.
func TestSoakRandomKills(t *testing.T) {
	if testing.Short() {
		t.Skip("soak test")
	}
	// A replacement killed before it connects counts against ReconnectFor
	// (5 s by default), after which its member is given up: on a loaded
	// machine the kills below can keep a member down that long. The soak
	// is about work kept across kills, not that policy: give it a minute.
	p, err := cluster.New(pool.Workers(2), cluster.Retries(20), cluster.ReconnectFor(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer closeAndJoin(t, p)
	const n = 1_000_000
	ctx := ctxFor(t, 5*time.Minute)
	res := pool.MapAsync(ctx, p, spin, ints(n), pool.Chunksize(500))
	rng := rand.New(rand.NewPCG(1, 2)) // the same kill intervals every run
	kills := 0
	for !res.Ready() {
		time.Sleep(time.Duration(50+rng.IntN(200)) * time.Millisecond)
		if kids := testenv.Children(os.Getpid()); len(kids) > 0 && !res.Ready() {
			syscall.Kill(kids[rng.IntN(len(kids))], syscall.SIGKILL)
			kills++
		}
	}
	got, err := res.Get(ctx)
	if err != nil {
		t.Fatalf("after %d kills: %v", kills, err)
	}
	for i, v := range got {
		if v != spin(i) {
			t.Fatalf("after %d kills: item %d = %d, want %d", kills, i, v, spin(i))
		}
	}
	t.Logf("1,000,000 items, %d worker processes killed: exact result", kills)
	if kills == 0 {
		t.Fatal("no worker was killed: the soak proved nothing")
	}
}

// MaxTasksPerWorker replaces worker processes without losing work.
func TestMaxTasksRecyclesProcesses(t *testing.T) {
	p, err := cluster.New(pool.Workers(2), pool.MaxTasksPerWorker(5))
	if err != nil {
		t.Fatal(err)
	}
	defer closeAndJoin(t, p)
	seen := map[int]bool{}
	res := pool.MapAsync(ctxFor(t, time.Minute), p, slowSquare, ints(2000), pool.Chunksize(20))
	for !res.Ready() {
		for _, pid := range testenv.Children(os.Getpid()) {
			seen[pid] = true
		}
		time.Sleep(5 * time.Millisecond)
	}
	got, err := res.Get(ctxFor(t, time.Minute))
	if err != nil || !slices.Equal(got, squares(2000)) {
		t.Fatalf("with recycling: %v", err)
	}
	// 100 chunks, 5 per process: about 20 processes; polling sees most.
	if len(seen) < 6 {
		t.Fatalf("saw %d worker processes for 100 chunks at 5 per process", len(seen))
	}
	t.Logf("100 chunks, MaxTasksPerWorker(5): saw %d worker processes", len(seen))
}

// spin is a deterministic function that takes a few microseconds.
func spin(x int) int {
	h := x
	for i := range 3000 {
		h = h*31 + i
	}
	return h
}

// failInit is an initializer that always fails; the option is built at
// package level so that worker processes know it by name.
func failInit() error { return errors.New("missing /data/model.bin") }

var failInitOpt = pool.Initializer(failInit)

// With MaxTasksPerWorker and an initializer that fails, every call fails
// with the initializer's error, promptly, call after call.
func TestMaxTasksWithFailingInitializer(t *testing.T) {
	p, err := cluster.New(pool.Workers(1), pool.MaxTasksPerWorker(1), failInitOpt)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAndJoin(t, p)
	for i := range 3 {
		_, err := pool.Apply(ctxFor(t, 30*time.Second), p, slowSquare, 2)
		if err == nil || !strings.Contains(err.Error(), "missing /data/model.bin") {
			t.Fatalf("call %d: %v", i, err)
		}
	}
}

// With MaxTasksPerWorker, chunks that fail without running (too large to
// send, or refused by the worker) still leave the pool working: no call
// waits on a worker that will never retire.
func TestMaxTasksWithFailingChunks(t *testing.T) {
	p, err := cluster.New(pool.Workers(1), pool.MaxTasksPerWorker(1), cluster.MaxMessage(1024))
	if err != nil {
		t.Fatal(err)
	}
	defer closeAndJoin(t, p)
	big := []box{{1}, {strings.Repeat("x", 2048)}}
	var te *pool.TaskError
	if _, err := pool.Map(ctxFor(t, time.Minute), p, openBox, big, pool.Chunksize(2)); !errors.As(err, &te) || te.Index != 1 || !strings.Contains(err.Error(), "cluster.MaxMessage") {
		t.Fatalf("an oversized item: %v", err)
	}
	for i := range 3 {
		if _, err := pool.Map(ctxFor(t, time.Minute), p, unregistered, ints(1)); !errors.Is(err, pool.ErrNotRegistered) {
			t.Fatalf("unregistered, call %d: %v", i, err)
		}
		if got, err := pool.Apply(ctxFor(t, 30*time.Second), p, slowSquare, 3); err != nil || got != 9 {
			t.Fatalf("call %d after failures: %v, %v", i, got, err)
		}
	}
}

// A cancelled call frees its worker between items, even for a plain
// function: the next call does not wait for the whole abandoned chunk.
func TestCancelFreesWorker(t *testing.T) {
	p, err := cluster.New(pool.Workers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer closeAndJoin(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	// One chunk of 20,000 items of 1ms: 20s if it ran to the end.
	if _, err := pool.Map(ctx, p, slowSquare, ints(20000), pool.Chunksize(20000)); err != context.DeadlineExceeded {
		t.Fatalf("cancelled Map: %v", err)
	}
	start := time.Now()
	if got, err := pool.Apply(ctxFor(t, time.Minute), p, slowSquare, 4); err != nil || got != 16 {
		t.Fatalf("next Apply: %v, %v", got, err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("the next call waited %v: the abandoned chunk kept the worker", d)
	}
}
