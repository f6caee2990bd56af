package pool

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// An AsyncResult is the handle of a call started by [MapAsync] or
// [ApplyAsync], as Python's AsyncResult. Its methods are safe for concurrent
// use.
type AsyncResult[R any] struct {
	done chan struct{}
	seq  uint64 // when it finished, in the order of finishSeq; set before done closes

	mu        sync.Mutex
	finished  bool
	val       R
	err       error
	callbacks []func(R, error)
}

func newAsync[R any]() *AsyncResult[R] { return &AsyncResult[R]{done: make(chan struct{})} }

func (a *AsyncResult[R]) set(v R, err error) {
	a.mu.Lock()
	a.val, a.err, a.finished = v, err, true
	cbs := a.callbacks
	a.callbacks = nil
	a.mu.Unlock()
	for _, cb := range cbs {
		cb(v, err)
	}
	a.seq = finishSeq.Add(1)
	close(a.done)
}

// finishSeq orders the finishing of AsyncResults, for Wait.
var finishSeq atomic.Uint64

func (a *AsyncResult[R]) finishedAt() uint64 { return a.seq }

// Get waits for the call to finish and returns its result, or returns
// ctx.Err() if ctx is done first (the call goes on).
func (a *AsyncResult[R]) Get(ctx context.Context) (R, error) {
	if err := a.Wait(ctx); err != nil {
		var zero R
		return zero, err
	}
	return a.val, a.err
}

// Wait waits for the call to finish, or returns ctx.Err() if ctx is done
// first. It returns nil when the call has finished, whether or not the call
// succeeded: use Get or Successful for that.
func (a *AsyncResult[R]) Wait(ctx context.Context) error {
	select {
	case <-a.done:
		return nil
	default:
	}
	select {
	case <-a.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Done returns a channel that is closed when the call has finished and its
// callbacks have returned.
func (a *AsyncResult[R]) Done() <-chan struct{} { return a.done }

// Ready reports whether the call has finished.
func (a *AsyncResult[R]) Ready() bool {
	select {
	case <-a.done:
		return true
	default:
		return false
	}
}

// Successful reports whether the call finished without error. Before the call
// has finished it returns false and ErrNotReady, as Python's raises
// ValueError.
func (a *AsyncResult[R]) Successful() (bool, error) {
	if !a.Ready() {
		return false, ErrNotReady
	}
	return a.err == nil, nil
}

// Then registers callbacks, as Python's callback and error_callback: when
// the call finishes, callback gets the result if it succeeded, errCallback
// the error if it failed. Either may be nil. Callbacks registered before the
// call finishes run in the pool's goroutine that finished it, before Done is
// closed, and must not block for long; registered after, they run at once
// in the caller's goroutine. Then returns a for chaining.
func (a *AsyncResult[R]) Then(callback func(R), errCallback func(error)) *AsyncResult[R] {
	cb := func(v R, err error) {
		if err == nil && callback != nil {
			callback(v)
		} else if err != nil && errCallback != nil {
			errCallback(err)
		}
	}
	a.mu.Lock()
	if !a.finished {
		a.callbacks = append(a.callbacks, cb)
		a.mu.Unlock()
		return a
	}
	v, err := a.val, a.err
	a.mu.Unlock()
	cb(v, err)
	return a
}

// MapAsync starts [Map] and returns at once, as Python's Pool.map_async.
// The call is admitted before MapAsync returns, so a Close right after it
// lets it finish (Python's map_async, close, join, get). It holds its own
// goroutine until it finishes. If the pool is already closed, the result
// fails with ErrClosed.
func MapAsync[T, R any](ctx context.Context, p *Pool, fn func(T) R, items []T, opts ...CallOption) *AsyncResult[[]R] {
	return goAsync(prepareMap(ctx, p, typed[T, R]{plain: fn}, items, opts))
}

// MapAsyncErr is [MapAsync] for functions that return an error.
func MapAsyncErr[T, R any](ctx context.Context, p *Pool, fn func(T) (R, error), items []T, opts ...CallOption) *AsyncResult[[]R] {
	return goAsync(prepareMap(ctx, p, typed[T, R]{errf: fn}, items, opts))
}

// MapAsyncCtx is [MapAsync] for functions that take a context.
func MapAsyncCtx[T, R any](ctx context.Context, p *Pool, fn func(context.Context, T) (R, error), items []T, opts ...CallOption) *AsyncResult[[]R] {
	return goAsync(prepareMap(ctx, p, typed[T, R]{ctxf: fn}, items, opts))
}

// ApplyAsync starts [Apply] and returns at once, as Python's
// Pool.apply_async. The call is admitted before ApplyAsync returns, as by
// [MapAsync]. ApplyAsync never blocks: its task waits in the pool's queue
// of async calls, in order, for one of a few goroutines the pool keeps to
// submit it (no goroutine per call), and the result is set by the goroutine
// that finishes the task. If ctx is done first, the call fails with
// ctx.Err() at once, whether its task waits or runs.
func ApplyAsync[T, R any](ctx context.Context, p *Pool, fn func(T) R, arg T) *AsyncResult[R] {
	return applyAsync(ctx, p, typed[T, R]{plain: fn}, arg)
}

// ApplyAsyncErr is [ApplyAsync] for functions that return an error.
func ApplyAsyncErr[T, R any](ctx context.Context, p *Pool, fn func(T) (R, error), arg T) *AsyncResult[R] {
	return applyAsync(ctx, p, typed[T, R]{errf: fn}, arg)
}

// ApplyAsyncCtx is [ApplyAsync] for functions that take a context.
func ApplyAsyncCtx[T, R any](ctx context.Context, p *Pool, fn func(context.Context, T) (R, error), arg T) *AsyncResult[R] {
	return applyAsync(ctx, p, typed[T, R]{ctxf: fn}, arg)
}

// applyAsync admits the call, queues its one task for the pool's
// submitters and returns. The call ends, and its result is set, in the
// goroutine that ends it: the one that finishes its task, fails it, or
// cancels ctx.
func applyAsync[T, R any](ctx context.Context, p *Pool, f typed[T, R], arg T) *AsyncResult[R] {
	k := &asyncApply[T, R]{ctx: ctx, f: f}
	k.a.done = make(chan struct{})
	if err := f.check(); err != nil {
		k.a.set(k.out[0], err)
		return &k.a
	}
	c, err := beginCall(ctx, p, f, false)
	if err != nil {
		k.a.set(k.out[0], err)
		return &k.a
	}
	// The pool hears of the call's end once it is over and its submitter
	// is done with it (it may still be submitting when ctx is cancelled).
	c.ends.Store(2)
	k.in[0] = arg
	k.chunk = chunk[T, R]{c: c, sent: time.Now(), f: &k.f, in: k.in[:], out: k.out[:]}
	k.chunk.Init(&k.chunk)
	c.then = k
	if ctx.Done() != nil {
		// If ctx is done already, over may run before stop is stored:
		// then there is nothing to stop.
		stop := context.AfterFunc(ctx, c.over)
		c.mu.Lock()
		k.stop = stop
		c.mu.Unlock()
	}
	p.async.push(c, &k.chunk)
	return &k.a
}

// asyncApply is an async Apply: its result, its task, its argument and
// result, in one allocation.
type asyncApply[T, R any] struct {
	a     AsyncResult[R]
	chunk chunk[T, R]
	ctx   context.Context
	f     typed[T, R]
	in    [1]T
	out   [1]R
	stop  func() bool // of the context.AfterFunc on ctx; guarded by the call's mu
}

// callOver sets the result once the call is over.
func (k *asyncApply[T, R]) callOver() {
	c := k.chunk.c
	c.mu.Lock()
	stop := k.stop
	c.mu.Unlock()
	if stop != nil {
		stop() // ctx no longer holds the call
	}
	c.stop.Store(true)
	c.cancelAll()
	c.endShare()
	if err := c.result(k.ctx); err != nil {
		var zero R
		k.a.set(zero, err)
		return
	}
	k.a.set(k.out[0], nil)
}

// asyncQueue holds the tasks of async calls until they are submitted, in
// order, by a few goroutines it keeps (up to maxSubmitters, started as the
// queue grows, kept until the pool is closed), so that an async call
// neither blocks its caller nor costs a goroutine of its own, whose stack
// the runtime would grow again for each call as it submits. While one
// submitter waits for a free worker or writes to one, the others go on
// queuing, and a cluster's connection sends their messages in one write.
// Its zero value is ready.
type asyncQueue struct {
	mu      sync.Mutex
	cond    sync.Cond
	items   []asyncItem // items[head:] wait, first in first out
	head    int
	running int // submitters
	idle    int // submitters waiting for an item
	closed  bool
}

type asyncItem struct {
	c *call
	t task
}

// maxSubmitters bounds the goroutines of an asyncQueue.
const maxSubmitters = 4

func (q *asyncQueue) push(c *call, t task) {
	q.mu.Lock()
	if q.cond.L == nil {
		q.cond.L = &q.mu
	}
	q.items = append(q.items, asyncItem{c, t})
	switch {
	case q.idle > 0:
		q.cond.Signal()
	case q.running < maxSubmitters:
		q.running++
		go q.submitter()
	}
	q.mu.Unlock()
}

// submitter submits the queue's tasks until the queue is closed and empty.
func (q *asyncQueue) submitter() {
	q.mu.Lock()
	for {
		for q.head == len(q.items) && !q.closed {
			q.idle++
			q.cond.Wait()
			q.idle--
		}
		if q.head == len(q.items) {
			q.running--
			q.mu.Unlock()
			return
		}
		it := q.items[q.head]
		q.items[q.head] = asyncItem{}
		q.head++
		if q.head == len(q.items) {
			q.items, q.head = q.items[:0], 0
		} else if q.head >= 1024 && 2*q.head >= len(q.items) {
			// A queue that never empties must not grow without end.
			n := copy(q.items, q.items[q.head:])
			clear(q.items[n:])
			q.items, q.head = q.items[:n], 0
		}
		q.mu.Unlock()
		if !it.c.stop.Load() { // not ended while it waited
			it.c.submit(it.t)
		}
		it.c.release() // the submitter's share
		it.c.endShare()
		q.mu.Lock()
	}
}

// close lets the submitters exit once the queue is empty. Calls admitted
// before the pool closed may still push; a submitter is then started
// again.
func (q *asyncQueue) close() {
	q.mu.Lock()
	q.closed = true
	if q.cond.L != nil {
		q.cond.Broadcast()
	}
	q.mu.Unlock()
}

func goAsync[R any](run func() (R, error)) *AsyncResult[R] {
	a := newAsync[R]()
	go func() { a.set(run()) }()
	return a
}
