package pooltest

import (
	"sync"
	"testing"
	"time"

	"github.com/mpgo/mp/pool"
)

// recorder records Progress reports, and which goroutines made them.
type recorder struct {
	mu      sync.Mutex
	reports [][2]int
}

func (r *recorder) report(done, total int) {
	r.mu.Lock()
	r.reports = append(r.reports, [2]int{done, total})
	r.mu.Unlock()
}

// check: counts never go down, reports are rate-bounded, and the last one,
// made before the call returned, says every item finished.
func (r *recorder) check(t *testing.T, n int, took time.Duration) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.reports) == 0 {
		t.Fatal("no progress reported")
	}
	if last := r.reports[len(r.reports)-1]; last != [2]int{n, n} {
		t.Errorf("last report %v, want [%d %d]", last, n, n)
	}
	for i := 1; i < len(r.reports); i++ {
		if r.reports[i][0] < r.reports[i-1][0] {
			t.Errorf("progress went down: %v", r.reports)
		}
	}
	// One report per 100 ms at most, and the last: a generous bound.
	if max := int(took/(100*time.Millisecond)) + 2; len(r.reports) > max {
		t.Errorf("%d reports in %v, want at most %d", len(r.reports), took, max)
	}
}

// Progress reports finished items of a Map and of an Imap at a bounded
// rate, ending with them all, before the call returns.
func (s *suite) progress(t *testing.T) {
	p := s.open(t, pool.Workers(2))
	ctx := testCtx(t)
	items := make([]time.Duration, 40)
	for i := range items {
		items[i] = 5 * time.Millisecond
	}
	var r recorder
	start := time.Now()
	if _, err := pool.MapCtx(ctx, p, Sleep, items, pool.Chunksize(1), pool.Progress(r.report)); err != nil {
		t.Fatal(err)
	}
	r.check(t, len(items), time.Since(start))
	var ri recorder
	start = time.Now()
	for _, err := range pool.ImapCtx(ctx, p, Sleep, func(yield func(time.Duration) bool) {
		for _, d := range items {
			if !yield(d) {
				return
			}
		}
	}, pool.Progress(ri.report)) {
		if err != nil {
			t.Fatal(err)
		}
	}
	ri.check(t, len(items), time.Since(start))
	// Many trivial items: a few reports, not one per item.
	var rt recorder
	start = time.Now()
	if _, err := pool.Map(ctx, p, Square, ints(100_000), pool.Chunksize(10), pool.Progress(rt.report)); err != nil {
		t.Fatal(err)
	}
	rt.check(t, 100_000, time.Since(start))
}
