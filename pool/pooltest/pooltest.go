// Package pooltest checks that a [pool.Pool] backend keeps the contract of
// package pool, as testing/fstest does for file systems. Every backend runs
// the same suite:
//
//	func TestConformance(t *testing.T) {
//		pooltest.Run(t, func(t *testing.T, opts ...pool.Option) *pool.Pool {
//			p, err := local.New(opts...)
//			if err != nil {
//				t.Fatal(err)
//			}
//			return p
//		})
//	}
//
// The suite observes pools only through results and errors, never through
// side effects of the functions, so that it holds for backends that run
// functions in other processes. Its functions are registered by this
// package's init.
package pooltest

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mpgo/mp/pool"
)

// NewFunc makes a pool with the given options. The suite closes or
// terminates every pool it makes and joins it.
type NewFunc func(t *testing.T, opts ...pool.Option) *pool.Pool

// patience bounds every wait the suite makes. It is generous: a backend
// that needs it is broken, not slow.
const patience = 30 * time.Second

// Run runs the conformance suite against the backend made by newPool, as
// subtests of t.
func Run(t *testing.T, newPool NewFunc) {
	s := &suite{newPool: newPool}
	tests := []struct {
		name string
		f    func(*testing.T)
	}{
		{"MapOrder", s.mapOrder},
		{"MapEmpty", s.mapEmpty},
		{"MapHuge", s.mapHuge},
		{"MapChunksizes", s.mapChunksizes},
		{"StructArguments", s.structArgs},
		{"RoundTrip", s.roundTrip},
		{"RoundTripFailures", s.roundTripFailures},
		{"MapError", s.mapError},
		{"MapPanic", s.mapPanic},
		{"ApplyForms", s.applyForms},
		{"ForEach", s.forEach},
		{"KeepGoing", s.keepGoing},
		{"Progress", s.progress},
		{"PutRef", s.putRef},
		{"Actors", s.actors},
		{"ActorsInParallel", s.actorsInParallel},
		{"ActorHoldsWorker", s.actorHoldsWorker},
		{"ActorLost", s.actorLost},
		{"CancelStopsCall", s.cancel},
		{"CancelReachesFunction", s.cancelReaches},
		{"FailureCancelsOtherChunks", s.failureCancels},
		{"DeadlineBeforeStart", s.deadlineBeforeStart},
		{"Imap", s.imap},
		{"ImapUnordered", s.imapUnordered},
		{"ImapBoundedLookahead", s.imapBounded},
		{"ImapEndlessInput", s.imapEndless},
		{"ImapBreakStopsCall", s.imapBreak},
		{"ImapError", s.imapError},
		{"Async", s.async},
		{"AsyncCallbacks", s.asyncCallbacks},
		{"AsyncQueued", s.asyncQueued},
		{"Wait", s.wait},
		{"RegisteredErrors", s.registeredErrors},
		{"ConcurrentCallers", s.concurrent},
		{"Initializer", s.initializer},
		{"MaxTasksPerWorker", s.maxTasks},
		{"CloseFinishesRunningCalls", s.closeFinishes},
		{"CloseAfterAsync", s.closeAfterAsync},
		{"UseAfterClose", s.useAfterClose},
		{"JoinBeforeClose", s.joinBeforeClose},
		{"Terminate", s.terminate},
		{"NoGoroutineLeftAfterClose", s.noLeakClose},
		{"NoGoroutineLeftAfterTerminate", s.noLeakTerminate},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.f)
	}
}

type suite struct {
	newPool NewFunc
}

// open makes a pool that is terminated and joined when the test ends.
func (s *suite) open(t *testing.T, opts ...pool.Option) *pool.Pool {
	t.Helper()
	p := s.newPool(t, opts...)
	if p == nil {
		t.Fatal("constructor returned a nil Pool")
	}
	t.Cleanup(func() {
		p.Terminate()
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		defer cancel()
		if err := p.Join(ctx); err != nil {
			t.Errorf("Join after Terminate: %v", err)
		}
	})
	return p
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	t.Cleanup(cancel)
	return ctx
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

func (s *suite) mapOrder(t *testing.T) {
	p := s.open(t, pool.Workers(2))
	got, err := pool.Map(testCtx(t), p, Square, ints(1000))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, squares(1000)) {
		t.Fatalf("Map results not in input order: %v...", got[:10])
	}
}

func (s *suite) mapEmpty(t *testing.T) {
	p := s.open(t)
	for _, in := range [][]int{nil, {}} {
		got, err := pool.Map(testCtx(t), p, Square, in)
		if err != nil || got == nil || len(got) != 0 {
			t.Fatalf("Map(%v) = %v, %v; want an empty non-nil slice and no error", in, got, err)
		}
	}
	n := 0
	for _, err := range pool.Imap(testCtx(t), p, Square, slices.Values([]int(nil))) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 0 {
		t.Fatalf("Imap over nothing yielded %d results", n)
	}
}

func (s *suite) mapHuge(t *testing.T) {
	p := s.open(t)
	const n = 1 << 20
	got, err := pool.Map(testCtx(t), p, Square, ints(n))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, squares(n)) {
		t.Fatal("Map of 1<<20 items: wrong results")
	}
}

func (s *suite) mapChunksizes(t *testing.T) {
	p := s.open(t, pool.Workers(3))
	for _, cs := range []int{-1, 0, 1, 2, 7, 1000, 5000} {
		for _, n := range []int{1, 2, 999, 1000, 1001} {
			got, err := pool.Map(testCtx(t), p, Square, ints(n), pool.Chunksize(cs))
			if err != nil {
				t.Fatalf("chunksize %d, %d items: %v", cs, n, err)
			}
			if !slices.Equal(got, squares(n)) {
				t.Fatalf("chunksize %d, %d items: wrong results", cs, n)
			}
		}
	}
}

func (s *suite) structArgs(t *testing.T) {
	p := s.open(t)
	in := []Point{{1, 2, "a"}, {-3, 4, "héllo"}, {}}
	got, err := pool.Map(testCtx(t), p, Pair, in)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"1,2,A", "-3,4,HÉLLO", "0,0,"}
	if !slices.Equal(got, want) {
		t.Fatalf("Map(Pair) = %q, want %q", got, want)
	}
}

// checkTaskError checks that err is a *TaskError for fn at index, whose
// message contains text.
func checkTaskError(t *testing.T, err error, fn string, index int, text string) *pool.TaskError {
	t.Helper()
	var te *pool.TaskError
	if !errors.As(err, &te) {
		t.Fatalf("error %v (%T) is not a *pool.TaskError", err, err)
	}
	if te.Index != index {
		t.Errorf("TaskError.Index = %d, want %d (%v)", te.Index, index, err)
	}
	if !strings.HasSuffix(te.Func, fn) {
		t.Errorf("TaskError.Func = %q, want it to end in %q", te.Func, fn)
	}
	if !strings.Contains(err.Error(), text) {
		t.Errorf("error %q does not contain %q", err, text)
	}
	return te
}

func (s *suite) mapError(t *testing.T) {
	p := s.open(t, pool.Workers(2))
	in := ints(100)
	in[37] = -37
	got, err := pool.MapErr(testCtx(t), p, FailOnNegative, in, pool.Chunksize(1))
	if got != nil {
		t.Errorf("MapErr returned results %v with an error", got[:3])
	}
	checkTaskError(t, err, "pooltest.FailOnNegative", 37, "negative item -37")
	// The pool keeps working.
	if got, err := pool.MapErr(testCtx(t), p, FailOnNegative, ints(10)); err != nil || !slices.Equal(got, ints(10)) {
		t.Fatalf("after an error: MapErr = %v, %v", got, err)
	}
}

func (s *suite) mapPanic(t *testing.T) {
	p := s.open(t, pool.Workers(2))
	for _, cs := range []int{1, 10, 0} {
		in := ints(50)
		in[13] = -13
		_, err := pool.Map(testCtx(t), p, PanicOnNegative, in, pool.Chunksize(cs))
		checkTaskError(t, err, "pooltest.PanicOnNegative", 13, "boom -13")
		var pe *pool.PanicError
		if !errors.As(err, &pe) {
			t.Fatalf("chunksize %d: error %v does not carry a *pool.PanicError", cs, err)
		}
		if fmt.Sprint(pe.Value) != "boom -13" {
			t.Errorf("PanicError.Value = %v, want boom -13", pe.Value)
		}
		if !strings.Contains(string(pe.Stack), "PanicOnNegative") {
			t.Errorf("PanicError.Stack does not show the panicking function:\n%s", pe.Stack)
		}
	}
	// Every worker survives.
	for range 3 {
		if got, err := pool.Map(testCtx(t), p, PanicOnNegative, ints(100), pool.Chunksize(1)); err != nil || !slices.Equal(got, ints(100)) {
			t.Fatalf("after a panic: Map = %v, %v", got, err)
		}
	}
}

func (s *suite) applyForms(t *testing.T) {
	p := s.open(t)
	ctx := testCtx(t)
	if r, err := pool.Apply(ctx, p, Square, 12); err != nil || r != 144 {
		t.Errorf("Apply(Square, 12) = %v, %v", r, err)
	}
	if r, err := pool.ApplyErr(ctx, p, FailOnNegative, 5); err != nil || r != 5 {
		t.Errorf("ApplyErr(FailOnNegative, 5) = %v, %v", r, err)
	}
	_, err := pool.ApplyErr(ctx, p, FailOnNegative, -5)
	checkTaskError(t, err, "FailOnNegative", 0, "negative item -5")
	_, err = pool.Apply(ctx, p, PanicOnNegative, -1)
	checkTaskError(t, err, "PanicOnNegative", 0, "boom -1")
	if r, err := pool.ApplyCtx(ctx, p, BlockOnNegative, 9); err != nil || r != 9 {
		t.Errorf("ApplyCtx(BlockOnNegative, 9) = %v, %v", r, err)
	}
	if r, err := pool.Apply(ctx, p, Pair, Point{7, 8, "x"}); err != nil || r != "7,8,X" {
		t.Errorf("Apply(Pair) = %q, %v", r, err)
	}
}

// cancel: a call whose context is cancelled returns ctx.Err() promptly.
func (s *suite) cancel(t *testing.T) {
	p := s.open(t, pool.Workers(2))
	ctx, cancel := context.WithCancel(testCtx(t))
	in := ints(20)
	in[5] = -1 // blocks until cancelled
	done := make(chan error, 1)
	go func() {
		_, err := pool.MapCtx(ctx, p, BlockOnNegative, in, pool.Chunksize(1))
		done <- err
	}()
	time.Sleep(50 * time.Millisecond) // let it start; the result does not depend on it
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) || err != context.Canceled {
			t.Fatalf("cancelled MapCtx returned %v, want context.Canceled", err)
		}
	case <-time.After(patience):
		t.Fatal("cancelled MapCtx did not return")
	}
}

// cancelReaches: with one worker, a function blocked on its context frees the
// worker only if the cancellation reached it; the next call proves it did.
func (s *suite) cancelReaches(t *testing.T) {
	p := s.open(t, pool.Workers(1))
	ctx, cancel := context.WithCancel(testCtx(t))
	res := pool.ApplyAsyncCtx(ctx, p, BlockOnNegative, -1)
	time.Sleep(50 * time.Millisecond)
	cancel()
	if _, err := res.Get(testCtx(t)); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled ApplyCtx returned %v, want context.Canceled", err)
	}
	// Plain plus a function that blocks: if the first never returned, this
	// call would wait for the single worker until the test's patience runs
	// out.
	for i := range 3 {
		if r, err := pool.Apply(testCtx(t), p, Square, i); err != nil || r != i*i {
			t.Fatalf("after cancellation, Apply = %v, %v (the blocked function did not see its context cancelled?)", r, err)
		}
	}
}

// failureCancels: a chunk that fails cancels the call's other chunks,
// where they wait and where they run, so that the worker is free again.
func (s *suite) failureCancels(t *testing.T) {
	p := s.open(t, pool.Workers(1))
	ctx := testCtx(t)
	if _, err := pool.MapCtx(ctx, p, FailOrBlock, []int{0, -1}, pool.Chunksize(1)); err == nil {
		t.Fatal("MapCtx with a failing item: no error")
	}
	// If the blocking item were never cancelled, it would hold the only
	// worker, and these would wait until the test's patience runs out.
	for i := range 3 {
		if r, err := pool.Apply(ctx, p, Square, i); err != nil || r != i*i {
			t.Fatalf("after the failed call, Apply = %v, %v (its other chunk not cancelled?)", r, err)
		}
	}
}

func (s *suite) deadlineBeforeStart(t *testing.T) {
	p := s.open(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := pool.Map(ctx, p, Square, ints(10)); err != context.Canceled {
		t.Fatalf("Map with a cancelled context = %v, want context.Canceled", err)
	}
	for _, err := range pool.Imap(ctx, p, Square, slices.Values(ints(10))) {
		if err != context.Canceled {
			t.Fatalf("Imap with a cancelled context yielded %v, want context.Canceled", err)
		}
	}
}

func collect[R any](t *testing.T, seq iter.Seq2[R, error]) []R {
	t.Helper()
	var out []R
	for r, err := range seq {
		if err != nil {
			t.Fatalf("after %d results: %v", len(out), err)
		}
		out = append(out, r)
	}
	return out
}

func (s *suite) imap(t *testing.T) {
	p := s.open(t, pool.Workers(2))
	for _, cs := range []int{0, 1, 3, 100} {
		got := collect(t, pool.Imap(testCtx(t), p, Square, slices.Values(ints(1000)), pool.Chunksize(cs)))
		if !slices.Equal(got, squares(1000)) {
			t.Fatalf("chunksize %d: Imap results not in input order", cs)
		}
	}
	// ranging twice runs two calls
	seq := pool.Imap(testCtx(t), p, Square, slices.Values(ints(10)))
	if a, b := collect(t, seq), collect(t, seq); !slices.Equal(a, b) || !slices.Equal(a, squares(10)) {
		t.Fatalf("ranging twice: %v then %v", a, b)
	}
	// an unregistered-free channel input
	ch := make(chan int)
	go func() {
		for i := range 100 {
			ch <- i
		}
		close(ch)
	}()
	if got := collect(t, pool.Imap(testCtx(t), p, Square, pool.Values(ch))); !slices.Equal(got, squares(100)) {
		t.Fatal("Imap over a channel: wrong results")
	}
}

func (s *suite) imapUnordered(t *testing.T) {
	p := s.open(t, pool.Workers(3))
	for _, cs := range []int{0, 1, 7} {
		got := collect(t, pool.ImapUnordered(testCtx(t), p, Square, slices.Values(ints(1000)), pool.Chunksize(cs)))
		slices.Sort(got)
		if !slices.Equal(got, squares(1000)) {
			t.Fatalf("chunksize %d: ImapUnordered did not yield each result once", cs)
		}
	}
	// Completion order: a slow first item is not yielded first, as Imap
	// would. (Backends that queue chunks on workers may queue a quick item
	// behind it, so only the first result is certain.)
	in := []time.Duration{2 * time.Second, 0, 0, 0}
	var got []time.Duration
	for r, err := range pool.ImapUnorderedCtx(testCtx(t), p, Sleep, slices.Values(in), pool.Chunksize(1)) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	if len(got) != 4 || got[0] != 0 || !slices.Contains(got, 2*time.Second) {
		t.Fatalf("ImapUnordered yielded %v; want a quick item first and the slow one among them", got)
	}
}

// counting is an input that records how far it has been read.
type counting struct {
	mu     sync.Mutex
	pulled int
	limit  int // -1: endless
}

func (c *counting) seq() iter.Seq[int] {
	return func(yield func(int) bool) {
		for i := 0; c.limit < 0 || i < c.limit; i++ {
			c.mu.Lock()
			c.pulled++
			c.mu.Unlock()
			if !yield(i) {
				return
			}
		}
	}
}

func (c *counting) n() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pulled
}

func (s *suite) imapBounded(t *testing.T) {
	p := s.open(t, pool.Workers(2))
	workers := p.Workers() // backends reached over the network report their own
	for _, tc := range []struct{ chunk, bound int }{
		{1, (workers + 1) * 1},
		{5, (workers + 1) * 5},
		{0, (workers + 1) * 1024}, // the adaptive default's largest chunk
	} {
		for _, ordered := range []bool{true, false} {
			in := &counting{limit: 20000}
			f := pool.Imap[int, int]
			if !ordered {
				f = pool.ImapUnordered[int, int]
			}
			yielded, worst := 0, 0
			for _, err := range f(testCtx(t), p, Square, in.seq(), pool.Chunksize(tc.chunk)) {
				if err != nil {
					t.Fatal(err)
				}
				yielded++
				worst = max(worst, in.n()-yielded)
			}
			if yielded != 20000 {
				t.Fatalf("yielded %d of 20000", yielded)
			}
			if worst > tc.bound {
				t.Errorf("chunksize %d, ordered %v: %d items pulled and not yet yielded; the bound is (workers+1)×chunksize = %d", tc.chunk, ordered, worst, tc.bound)
			}
		}
	}
}

func (s *suite) imapEndless(t *testing.T) {
	p := s.open(t, pool.Workers(2))
	in := &counting{limit: -1}
	n := 0
	for r, err := range pool.Imap(testCtx(t), p, Square, in.seq()) {
		if err != nil {
			t.Fatal(err)
		}
		if r != n*n {
			t.Fatalf("result %d = %d", n, r)
		}
		n++
		if n == 100000 {
			break
		}
	}
	if got, bound := in.n(), 100000+(p.Workers()+1)*1024; got > bound {
		t.Fatalf("endless input: %d items pulled for 100000 results (bound %d)", got, bound)
	}
}

func (s *suite) imapBreak(t *testing.T) {
	p := s.open(t, pool.Workers(2))
	in := ints(100)
	for i := 10; i < 100; i++ {
		in[i] = -1 // would block until cancelled
	}
	n := 0
	for _, err := range pool.ImapCtx(testCtx(t), p, BlockOnNegative, slices.Values(in), pool.Chunksize(1)) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		if n == 5 {
			break
		}
	}
	// The blocked items were abandoned and cancelled: the workers are free.
	got, err := pool.Map(testCtx(t), p, Square, ints(10))
	if err != nil || !slices.Equal(got, squares(10)) {
		t.Fatalf("after breaking out of Imap: %v, %v", got, err)
	}
}

func (s *suite) imapError(t *testing.T) {
	p := s.open(t, pool.Workers(2))
	in := ints(100)
	in[42] = -42
	var got []int
	var last error
	for r, err := range pool.ImapErr(testCtx(t), p, FailOnNegative, slices.Values(in), pool.Chunksize(4)) {
		if err != nil {
			last = err
			continue
		}
		got = append(got, r)
	}
	checkTaskError(t, last, "FailOnNegative", 42, "negative item -42")
	if !slices.Equal(got, ints(len(got))) || len(got) > 42 {
		t.Fatalf("Imap yielded %d results before the error, not a prefix of the input below 42", len(got))
	}
	_, err := pool.Map(testCtx(t), p, PanicOnNegative, in)
	checkTaskError(t, err, "PanicOnNegative", 42, "boom -42")
}

func (s *suite) async(t *testing.T) {
	p := s.open(t, pool.Workers(2))
	ctx := testCtx(t)
	m := pool.MapAsync(ctx, p, Square, ints(500))
	got, err := m.Get(ctx)
	if err != nil || !slices.Equal(got, squares(500)) {
		t.Fatalf("MapAsync Get = %v, %v", len(got), err)
	}
	if !m.Ready() {
		t.Error("Ready false after Get")
	}
	if ok, err := m.Successful(); !ok || err != nil {
		t.Errorf("Successful = %v, %v after success", ok, err)
	}

	bctx, cancel := context.WithCancel(ctx)
	a := pool.ApplyAsyncCtx(bctx, p, BlockOnNegative, -1)
	if a.Ready() {
		t.Error("Ready true while the function blocks")
	}
	if _, err := a.Successful(); !errors.Is(err, pool.ErrNotReady) {
		t.Errorf("Successful before the end: %v, want ErrNotReady", err)
	}
	short, cancelShort := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancelShort()
	if err := a.Wait(short); err != context.DeadlineExceeded {
		t.Errorf("Wait with a short context = %v, want DeadlineExceeded", err)
	}
	cancel()
	if err := a.Wait(ctx); err != nil {
		t.Fatalf("Wait = %v", err)
	}
	if ok, err := a.Successful(); ok || err != nil {
		t.Errorf("Successful after failure = %v, %v", ok, err)
	}
	if _, err := a.Get(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Get = %v, want context.Canceled", err)
	}
	e := pool.MapAsyncErr(ctx, p, FailOnNegative, []int{1, -2})
	<-e.Done()
	if _, err := e.Get(ctx); err == nil {
		t.Error("MapAsyncErr of a failing item: no error")
	}
}

func (s *suite) asyncCallbacks(t *testing.T) {
	p := s.open(t)
	ctx := testCtx(t)
	var (
		mu   sync.Mutex
		vals []int
		errs []error
	)
	onVal := func(v int) { mu.Lock(); vals = append(vals, v); mu.Unlock() }
	onErr := func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() }
	var results []*pool.AsyncResult[int]
	for i := range 50 {
		results = append(results, pool.ApplyAsyncErr(ctx, p, FailOnNegative, i-10).Then(onVal, onErr))
	}
	for _, r := range results {
		<-r.Done()
	}
	// registered after the end: runs at once
	results[0].Then(nil, onErr)
	mu.Lock()
	defer mu.Unlock()
	if len(vals) != 40 || len(errs) != 11 {
		t.Fatalf("callbacks: %d values and %d errors, want 40 and 11", len(vals), len(errs))
	}
	slices.Sort(vals)
	if !slices.Equal(vals, ints(40)) {
		t.Fatalf("callback values %v", vals)
	}
}

// asyncQueued: ApplyAsync calls waiting behind busy workers return at
// once, fail at once when their context is cancelled, keep their order
// with the others, and still run when the pool is closed after them.
func (s *suite) asyncQueued(t *testing.T) {
	p := s.open(t, pool.Workers(2))
	ctx := testCtx(t)
	hold, release := context.WithCancel(ctx)
	defer release()
	// More than the workers and their queues can hold, so that the
	// later calls wait in the pool.
	var blocked []*pool.AsyncResult[int]
	for range 40 {
		blocked = append(blocked, pool.ApplyAsyncCtx(hold, p, BlockOnNegative, -1))
	}
	qctx, cancel := context.WithCancel(ctx)
	queued := pool.ApplyAsync(qctx, p, Square, 3)
	last := pool.ApplyAsync(ctx, p, Square, 7)
	cancel()
	if v, err := queued.Get(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("a queued ApplyAsync whose context was cancelled = %v, %v, want context.Canceled", v, err)
	}
	for i, b := range blocked {
		if b.Ready() {
			t.Fatalf("blocked call %d is ready before its context was cancelled", i)
		}
	}
	if last.Ready() {
		t.Fatal("a call queued behind blocked ones is ready")
	}
	p.Close() // the calls already admitted run to the end
	release()
	for i, b := range blocked {
		if _, err := b.Get(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("blocked call %d = %v, want context.Canceled", i, err)
		}
	}
	if v, err := last.Get(ctx); err != nil || v != 49 {
		t.Fatalf("ApplyAsync queued before Close = %v, %v, want 49", v, err)
	}
	if err := p.Join(ctx); err != nil {
		t.Fatal(err)
	}
}

func (s *suite) concurrent(t *testing.T) {
	p := s.open(t, pool.Workers(3))
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for g := range 32 {
		wg.Go(func() {
			ctx := testCtx(t)
			n := 200 + g
			var got []int
			var err error
			switch g % 4 {
			case 0:
				got, err = pool.Map(ctx, p, Square, ints(n))
			case 1:
				got, err = pool.Map(ctx, p, Square, ints(n), pool.Chunksize(1))
			case 2:
				for r, e := range pool.Imap(ctx, p, Square, slices.Values(ints(n))) {
					if e != nil {
						err = e
						break
					}
					got = append(got, r)
				}
			case 3:
				for i := range n {
					r, e := pool.Apply(ctx, p, Square, i)
					if e != nil {
						err = e
						break
					}
					got = append(got, r)
				}
			}
			if err == nil && !slices.Equal(got, squares(n)) {
				err = fmt.Errorf("caller %d: wrong results", g)
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func (s *suite) initializer(t *testing.T) {
	p := s.open(t, pool.Workers(2), InitOption)
	got, err := pool.Map(testCtx(t), p, Initialized, ints(100), pool.Chunksize(1))
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		if v != 1 {
			t.Fatalf("item %d ran before the initializer", i)
		}
	}
}

func (s *suite) maxTasks(t *testing.T) {
	p := s.open(t, pool.Workers(2), pool.MaxTasksPerWorker(3), InitOption)
	got, err := pool.Map(testCtx(t), p, Initialized, ints(40), pool.Chunksize(1))
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(got, 0) {
		t.Fatal("a recycled worker ran a task before its initializer")
	}
	got2, err := pool.Map(testCtx(t), p, Square, ints(1000), pool.Chunksize(10))
	if err != nil || !slices.Equal(got2, squares(1000)) {
		t.Fatalf("with recycling: %v", err)
	}
}

func (s *suite) closeFinishes(t *testing.T) {
	p := s.open(t, pool.Workers(2))
	ctx := testCtx(t)
	n := 0
	for r, err := range pool.Imap(ctx, p, Square, slices.Values(ints(5000)), pool.Chunksize(10)) {
		if err != nil {
			t.Fatalf("after Close, a running call failed: %v", err)
		}
		if r != n*n {
			t.Fatalf("result %d = %d", n, r)
		}
		n++
		if n == 1 {
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n != 5000 {
		t.Fatalf("a call running at Close yielded %d of 5000 results", n)
	}
	if err := p.Join(ctx); err != nil {
		t.Fatal(err)
	}
}

// closeAfterAsync: Python's map_async, close, join, get.
func (s *suite) closeAfterAsync(t *testing.T) {
	p := s.open(t, pool.Workers(2))
	ctx := testCtx(t)
	m := pool.MapAsync(ctx, p, Square, ints(2000), pool.Chunksize(10))
	a := pool.ApplyAsync(ctx, p, Square, 7)
	p.Close()
	if err := p.Join(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := m.Get(ctx); err != nil || !slices.Equal(got, squares(2000)) {
		t.Fatalf("MapAsync started before Close: %v", err)
	}
	if got, err := a.Get(ctx); err != nil || got != 49 {
		t.Fatalf("ApplyAsync started before Close: %v, %v", got, err)
	}
}

func (s *suite) useAfterClose(t *testing.T) {
	for _, stop := range []string{"Close", "Terminate"} {
		p := s.open(t)
		if stop == "Close" {
			p.Close()
			p.Close() // idempotent
		} else {
			p.Terminate()
		}
		ctx := testCtx(t)
		if _, err := pool.Map(ctx, p, Square, ints(3)); !errors.Is(err, pool.ErrClosed) {
			t.Errorf("Map after %s = %v, want ErrClosed", stop, err)
		}
		if _, err := pool.Map(ctx, p, Square, nil); !errors.Is(err, pool.ErrClosed) {
			t.Errorf("Map of nothing after %s = %v, want ErrClosed", stop, err)
		}
		if _, err := pool.Apply(ctx, p, Square, 3); !errors.Is(err, pool.ErrClosed) {
			t.Errorf("Apply after %s = %v, want ErrClosed", stop, err)
		}
		for _, err := range pool.Imap(ctx, p, Square, slices.Values(ints(3))) {
			if !errors.Is(err, pool.ErrClosed) {
				t.Errorf("Imap after %s yielded %v, want ErrClosed", stop, err)
			}
		}
		if _, err := pool.ApplyAsync(ctx, p, Square, 3).Get(ctx); !errors.Is(err, pool.ErrClosed) {
			t.Errorf("ApplyAsync after %s = %v, want ErrClosed", stop, err)
		}
		if err := p.Join(ctx); err != nil {
			t.Errorf("Join after %s = %v", stop, err)
		}
	}
}

func (s *suite) joinBeforeClose(t *testing.T) {
	p := s.open(t)
	if err := p.Join(testCtx(t)); !errors.Is(err, pool.ErrNotClosed) {
		t.Fatalf("Join on an open pool = %v, want ErrNotClosed", err)
	}
}

func (s *suite) terminate(t *testing.T) {
	p := s.open(t, pool.Workers(2))
	ctx := testCtx(t)
	in := []int{-1, -1, -1, -1, -1}
	m := pool.MapAsyncCtx(ctx, p, BlockOnNegative, in, pool.Chunksize(1))
	a := pool.ApplyAsyncCtx(ctx, p, BlockOnNegative, -1)
	time.Sleep(50 * time.Millisecond)
	if err := p.Terminate(); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{"MapAsyncCtx": waitErr(ctx, m), "ApplyAsyncCtx": waitErr(ctx, a)} {
		if !errors.Is(err, pool.ErrTerminated) && !errors.Is(err, pool.ErrClosed) {
			t.Errorf("%s running at Terminate returned %v, want ErrTerminated", name, err)
		}
	}
	if err := p.Join(ctx); err != nil {
		t.Fatalf("Join after Terminate = %v", err)
	}
	p.Terminate() // idempotent
}

func waitErr[R any](ctx context.Context, a *pool.AsyncResult[R]) error {
	_, err := a.Get(ctx)
	return err
}

func (s *suite) noLeakClose(t *testing.T) { s.noLeak(t, false) }

func (s *suite) noLeakTerminate(t *testing.T) { s.noLeak(t, true) }

func (s *suite) noLeak(t *testing.T, terminate bool) {
	ctx := testCtx(t)
	p := s.newPool(t, pool.Workers(3))
	if _, err := pool.Map(ctx, p, Square, ints(1000)); err != nil {
		t.Fatal(err)
	}
	for range pool.Imap(ctx, p, Square, slices.Values(ints(1000))) {
	}
	pool.ApplyAsyncCtx(ctx, p, BlockOnNegative, 1)
	if terminate {
		p.Terminate()
	} else {
		p.Close()
	}
	if err := p.Join(ctx); err != nil {
		t.Fatal(err)
	}
	if left := waitNoGoroutines(); left != "" {
		t.Fatalf("goroutines left after Close/Terminate and Join:\n%s", left)
	}
}

// waitNoGoroutines waits for goroutines running code of this module (outside
// pooltest) to exit, and returns the stacks of those that do not.
func waitNoGoroutines() string {
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := moduleGoroutines()
		if left == "" || time.Now().After(deadline) {
			return left
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func moduleGoroutines() string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var left []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "github.com/mpgo/mp/") && !strings.Contains(g, "mp/pool/pooltest.") && !strings.Contains(g, "testing.(*M).Run(") {
			left = append(left, g)
		}
	}
	return strings.Join(left, "\n\n")
}
