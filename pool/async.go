package pool

import (
	"context"
	"sync"
	"sync/atomic"
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
// Pool.apply_async.
func ApplyAsync[T, R any](ctx context.Context, p *Pool, fn func(T) R, arg T) *AsyncResult[R] {
	return goAsync(prepareApply(ctx, p, typed[T, R]{plain: fn}, arg))
}

// ApplyAsyncErr is [ApplyAsync] for functions that return an error.
func ApplyAsyncErr[T, R any](ctx context.Context, p *Pool, fn func(T) (R, error), arg T) *AsyncResult[R] {
	return goAsync(prepareApply(ctx, p, typed[T, R]{errf: fn}, arg))
}

// ApplyAsyncCtx is [ApplyAsync] for functions that take a context.
func ApplyAsyncCtx[T, R any](ctx context.Context, p *Pool, fn func(context.Context, T) (R, error), arg T) *AsyncResult[R] {
	return goAsync(prepareApply(ctx, p, typed[T, R]{ctxf: fn}, arg))
}

func goAsync[R any](run func() (R, error)) *AsyncResult[R] {
	a := newAsync[R]()
	go func() { a.set(run()) }()
	return a
}
