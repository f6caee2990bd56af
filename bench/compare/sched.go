package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mpgo/mp/pool"
	"github.com/mpgo/mp/pool/cluster"
)

// The scheduler section: two scenarios of issue 13 on 2 worker processes,
// items of schedNap that say which process ran them and when.

func init() {
	pool.MustRegister(napStamp)
	pool.MustRegister(pidOf)
}

const schedNap = 20 * time.Millisecond

type stamp struct {
	PID  int
	Done int64 // unix nanoseconds
}

func napStamp(int) stamp {
	time.Sleep(schedNap)
	return stamp{PID: os.Getpid(), Done: time.Now().UnixNano()}
}

type balanceResult struct {
	fresh, after time.Duration
	freshSplit   []int
	afterSplit   []int
}

type stopResult struct {
	lost, connected, firstItem, done time.Duration // after the SIGSTOP
	byReplacement, items             int
	ideal                            time.Duration
}

// schedBalance: a Map of 300 × 20 ms items on a fresh 2-worker pool, and on
// one that first ran 100 sequential Applies.
func schedBalance() (balanceResult, error) {
	var r balanceResult
	for _, history := range []int{0, 100} {
		p, err := cluster.New(pool.Workers(2))
		if err != nil {
			return r, err
		}
		ctx := context.Background()
		for i := range history {
			if _, err := pool.Apply(ctx, p, pidOf, i); err != nil {
				closeJoin(p)
				return r, err
			}
		}
		start := time.Now()
		res, err := pool.Map(ctx, p, napStamp, ints(300))
		took := time.Since(start)
		closeJoin(p)
		if err != nil {
			return r, err
		}
		split := splitOf(res)
		if history == 0 {
			r.fresh, r.freshSplit = took, split
		} else {
			r.after, r.afterSplit = took, split
		}
	}
	return r, nil
}

// pidOf answers at once with the PID of the process that ran it.
func pidOf(int) int { return os.Getpid() }

func splitOf(res []stamp) []int {
	n := map[int]int{}
	var order []int
	for _, s := range res {
		if n[s.PID] == 0 {
			order = append(order, s.PID)
		}
		n[s.PID]++
	}
	var split []int
	for _, pid := range order {
		split = append(split, n[pid])
	}
	return split
}

// lossLog records when the pool logged a worker lost and connected.
type lossLog struct {
	mu     sync.Mutex
	events []lossEvent
}

type lossEvent struct {
	msg string
	at  time.Time
}

func (l *lossLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *lossLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *lossLog) WithGroup(string) slog.Handler            { return l }
func (l *lossLog) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.events = append(l.events, lossEvent{r.Message, time.Now()})
	l.mu.Unlock()
	return nil
}

func (l *lossLog) first(msg string, after time.Time) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.events {
		if e.msg == msg && !e.at.Before(after) {
			return e.at
		}
	}
	return time.Time{}
}

// schedStop: a Map of 150 × 20 ms items on 2 worker processes (heartbeat
// 100 ms, timeout 400 ms); one worker is SIGSTOPped 200 ms in.
func schedStop() (stopResult, error) {
	var r stopResult
	before := children() // the shared pool's workers
	ll := &lossLog{}
	p, err := cluster.New(pool.Workers(2), cluster.Heartbeat(100*time.Millisecond, 400*time.Millisecond), cluster.Logger(slog.New(ll)))
	if err != nil {
		return r, err
	}
	defer closeJoin(p)
	ctx := context.Background()
	const n = 150
	r.items = n
	r.ideal = n * schedNap / 2
	start := time.Now()
	res := pool.MapAsync(ctx, p, napStamp, ints(n))
	time.Sleep(200 * time.Millisecond)
	var kids []int
	for _, k := range children() {
		if !slices.Contains(before, k) {
			kids = append(kids, k)
		}
	}
	if len(kids) != 2 {
		return r, fmt.Errorf("want 2 worker processes, found %v", kids)
	}
	stopped := time.Now()
	syscall.Kill(kids[0], syscall.SIGSTOP)
	defer syscall.Kill(kids[0], syscall.SIGKILL)
	got, err := res.Get(ctx)
	if err != nil {
		return r, err
	}
	r.done = time.Since(start)
	since := func(t time.Time) time.Duration {
		if t.IsZero() {
			return -1
		}
		return t.Sub(stopped)
	}
	lost := ll.first("worker lost", stopped)
	r.lost = since(lost)
	r.connected = -1
	if !lost.IsZero() {
		r.connected = since(ll.first("worker connected", lost))
	}
	var first int64
	for _, s := range got {
		if s.PID != kids[0] && s.PID != kids[1] {
			r.byReplacement++
			if first == 0 || s.Done < first {
				first = s.Done
			}
		}
	}
	r.firstItem = -1
	if first != 0 {
		r.firstItem = since(time.Unix(0, first))
	}
	return r, nil
}

func reportSched(b *strings.Builder, bal balanceResult, st stopResult) {
	b.WriteString("\n## Scheduler: balance after a history, and a stopped worker\n\n")
	fmt.Fprintf(b, "One run each, after the rounds, on 2 worker processes; items sleep %v and return the PID of the process that ran them.\n\n", schedNap)
	t := table{head: []string{"scenario", "split of the items", "time", "ideal", "time ÷ fresh pool"}}
	t.add("fresh pool, Map of 300 items", fmt.Sprint(bal.freshSplit), fmtDur(bal.fresh.Seconds()), fmtDur((300 * schedNap / 2).Seconds()), "1.00×")
	t.add("after 100 sequential Applies, Map of 300 items", fmt.Sprint(bal.afterSplit), fmtDur(bal.after.Seconds()), fmtDur((300 * schedNap / 2).Seconds()), fmtRatio(bal.after.Seconds()/bal.fresh.Seconds()))
	b.WriteString(t.String())
	b.WriteString("\n")
	ms := func(d time.Duration) string {
		if d < 0 {
			return "never"
		}
		return fmt.Sprintf("%d ms", d.Milliseconds())
	}
	t = table{head: []string{"scenario", "worker lost", "replacement connected", "its first item done", "items by the replacement", "Map time", "ideal (2 workers)"}}
	t.add(fmt.Sprintf("Map of %d items, a worker SIGSTOPped 200 ms in (heartbeat 100 ms, timeout 400 ms); times after the SIGSTOP", st.items),
		ms(st.lost), ms(st.connected), ms(st.firstItem), fmt.Sprint(st.byReplacement), fmtDur(st.done.Seconds()), fmtDur(st.ideal.Seconds()))
	b.WriteString(t.String())
}
