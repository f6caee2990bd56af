package cluster_test

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mpgo/mp/internal/testenv"
	"github.com/mpgo/mp/pool"
	"github.com/mpgo/mp/pool/cluster"
)

func init() {
	pool.MustRegister(pid)
	pool.MustRegister(napPid)
}

// pid reports which worker process ran it.
func pid(int) int { return os.Getpid() }

// stamp is which worker process ran an item, and when it finished.
type stamp struct {
	PID  int
	Done int64 // unix nanoseconds
}

// napPid sleeps 20 ms and says which worker process ran it, and when.
func napPid(int) stamp {
	time.Sleep(20 * time.Millisecond)
	return stamp{PID: os.Getpid(), Done: time.Now().UnixNano()}
}

// After a history of sequential Applies (each answered in well under a
// millisecond, all on the same warm worker), a Map of slow items still
// splits evenly over the workers: the credits the quick Applies earned do
// not outlive them.
func TestBalanceAfterApplies(t *testing.T) {
	p, err := cluster.New(pool.Workers(2))
	if err != nil {
		t.Fatal(err)
	}
	defer closeAndJoin(t, p)
	ctx := ctxFor(t, time.Minute)
	applied := map[int]int{}
	for i := range 100 {
		got, err := pool.Apply(ctx, p, pid, i)
		if err != nil {
			t.Fatal(err)
		}
		applied[got]++
	}
	start := time.Now()
	res, err := pool.Map(ctx, p, napPid, ints(300))
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	split := map[int]int{}
	for _, s := range res {
		split[s.PID]++
	}
	t.Logf("100 Applies went %v; then 300 × 20 ms items split %v in %v", applied, split, took.Round(time.Millisecond))
	if len(split) != 2 {
		t.Fatalf("the Map ran on %d worker processes, want 2: %v", len(split), split)
	}
	for pid, n := range split {
		if n < 135 || n > 165 {
			t.Errorf("worker %d ran %d of the 300 items; want 150 ± 10%%: %v", pid, n, split)
		}
	}
}

// events records the worker processes' connections and losses, as logged.
type events struct {
	mu   sync.Mutex
	log  []event
	next slog.Handler
}

type event struct {
	msg    string
	worker string
	at     time.Time
}

func (e *events) Enabled(context.Context, slog.Level) bool { return true }
func (e *events) WithAttrs([]slog.Attr) slog.Handler       { return e }
func (e *events) WithGroup(string) slog.Handler            { return e }
func (e *events) Handle(ctx context.Context, r slog.Record) error {
	ev := event{msg: r.Message, at: time.Now()}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "worker" {
			ev.worker = a.Value.String()
		}
		return true
	})
	e.mu.Lock()
	e.log = append(e.log, ev)
	e.mu.Unlock()
	return e.next.Handle(ctx, r)
}

func (e *events) first(msg string, after time.Time) (event, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ev := range e.log {
		if ev.msg == msg && !ev.at.Before(after) {
			return ev, true
		}
	}
	return event{}, false
}

// A worker that stops answering (SIGSTOP) is replaced as soon as it is
// found silent, not after a grace period for the old process to exit: the
// replacement takes part in the Map that was running, with items finished
// while the surviving worker was still busy with its share.
func TestStoppedWorkerReplacedAtOnce(t *testing.T) {
	ev := &events{next: slog.NewTextHandler(tWriter{t}, nil).WithAttrs(nil)}
	p, err := cluster.New(pool.Workers(2), cluster.Heartbeat(100*time.Millisecond, 400*time.Millisecond), cluster.Logger(slog.New(ev)))
	if err != nil {
		t.Fatal(err)
	}
	defer closeAndJoin(t, p)
	// 150 × 20 ms on 2 workers: 1.5 s at full capacity, 3 s on one. Before
	// the fix the replacement came about 3.4 s after the stop, when the
	// survivor had already finished.
	res := pool.MapAsync(ctxFor(t, time.Minute), p, napPid, ints(150))
	time.Sleep(200 * time.Millisecond)
	kids := testenv.Children(os.Getpid())
	if len(kids) != 2 {
		t.Fatalf("want 2 worker processes, found %v", kids)
	}
	stopped := time.Now()
	syscall.Kill(kids[0], syscall.SIGSTOP)
	defer syscall.Kill(kids[0], syscall.SIGKILL)
	got, err := res.Get(ctxFor(t, time.Minute))
	if err != nil {
		t.Fatalf("Map with a stopped worker: %v", err)
	}
	end := time.Now()
	lost, ok := ev.first("worker lost", stopped)
	if !ok {
		t.Fatal("the stopped worker was not reported lost")
	}
	survivor := kids[1]
	var firstNew, lastSurvivor int64
	newPids := map[int]int{}
	for _, s := range got {
		switch s.PID {
		case survivor:
			lastSurvivor = max(lastSurvivor, s.Done)
		case kids[0]:
		default:
			newPids[s.PID]++
			if firstNew == 0 || s.Done < firstNew {
				firstNew = s.Done
			}
		}
	}
	since := func(at time.Time) time.Duration { return at.Sub(stopped).Round(time.Millisecond) }
	t.Logf("stopped at 0; lost at %v; Map done at %v; items by a replacement: %v", since(lost.at), since(end), newPids)
	conn, connected := ev.first("worker connected", lost.at)
	if !connected {
		t.Fatal("no replacement connected after the loss")
	}
	t.Logf("replacement connected at %v", since(conn.at))
	if firstNew != 0 {
		t.Logf("the replacement's first item done at %v", since(time.Unix(0, firstNew)))
	}
	if len(newPids) != 1 {
		t.Fatalf("items ran on replacement processes %v, want exactly one replacement that took part in the Map", newPids)
	}
	if firstNew > lastSurvivor {
		t.Fatal("the replacement's first item finished after the survivor's last one: it did not share the Map")
	}
	if !strings.Contains(conn.worker, "local worker") {
		t.Fatalf("connected event names %q", conn.worker)
	}
}
