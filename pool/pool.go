package pool

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mpgo/mp/internal/backend"
	"github.com/mpgo/mp/internal/codec"
	"github.com/mpgo/mp/internal/objects"
)

// A Pool is a set of workers that runs the typed operations of this
// package ([Map], [Imap], [Apply], …): goroutines in this process, made by
// local.New, or worker processes on this machine or on a cluster, made by
// cluster.New. Its methods are safe for concurrent use.
type Pool struct {
	b     backend.Backend
	async asyncQueue // the tasks of async calls, until submitted
}

func init() {
	backend.Wrap = func(b backend.Backend) any { return &Pool{b: b} }
	backend.Unwrap = func(p any) backend.Backend { return p.(*Pool).b }
}

// Workers reports how many items the pool runs at once. For a cluster it
// changes as members come and go.
func (p *Pool) Workers() int { return p.b.Workers() }

// Close stops the pool from admitting new calls. Calls already running
// finish their work; then the workers exit. Close does not wait for that:
// [Pool.Join] does. Close is idempotent.
func (p *Pool) Close() error {
	p.async.close()
	return p.b.Close()
}

// Terminate stops the pool now: queued and running items fail with
// [ErrTerminated], so every pending call returns promptly, and contexts
// given to context-aware functions are cancelled. A plain function that is
// already running cannot be interrupted; Join waits for it.
func (p *Pool) Terminate() error {
	p.async.close()
	return p.b.Terminate()
}

// Join waits until every worker has exited, or ctx is done. It returns
// [ErrNotClosed] if neither Close nor Terminate was called.
func (p *Pool) Join(ctx context.Context) error { return p.b.Join(ctx) }

// task is what a call's tasks have in common, whatever their types.
type task interface {
	backendTask() *backend.Task
	base() int
	size() int
	sentAt() time.Time
	rest(from int) task // the items from index from on, or nil
}

// call is the state of one typed operation: the tasks it has submitted, its
// first error and its context.
type call struct {
	p       backend.Backend
	pin     backend.Pinned // set for an actor's call: its tasks go there
	ctx     context.Context
	cancel  context.CancelFunc
	stop    atomic.Bool
	quick   atomic.Bool   // a chunk came back within quickChunk
	pending atomic.Int64  // unfinished tasks, plus one while submitting
	done    chan struct{} // closed when pending falls to 0; nil for an async Apply

	mu  sync.Mutex
	err error

	// keepGoing: an item's error does not end the call; errs collects
	// them, and the rest of the item's chunk is submitted again.
	keepGoing bool
	errs      []*TaskError

	progress *progress // nil without the Progress option

	fnPtr  uintptr
	fnVal  any
	shape  string
	fnOnce sync.Once
	fn     *regFunc
	fnErr  error

	// onDone, if set, is called for every finished task, after its error
	// was recorded and before pending is decremented.
	onDone func(t task, err error)

	// then, if set (an async call that no goroutine waits for), is called
	// once, by over, when the call is over: its tasks are done, it failed,
	// or its context is done.
	then   callEnder
	thenOK atomic.Bool  // then was called
	ends   atomic.Int32 // async calls: End once this many endShare calls

	// The functions tasks registered with AfterCancel, run once ctx is
	// cancelled; guarded by mu.
	parent    context.Context // the caller's context
	hooks     *cancelHook     // a list, newest first
	cancelled bool            // the hooks ran
	unwatch   func() bool     // stops the watch on parent, if any
}

// A callEnder finishes an async call that no goroutine waits for.
type callEnder interface{ callOver() }

// cancelHook is a function registered by a task's AfterCancel.
type cancelHook struct {
	f          func()
	prev, next *cancelHook
	linked     bool
}

// afterCancel is Task.AfterCancel for the call's tasks.
func (c *call) afterCancel(f func()) (stop func() bool) {
	h := &cancelHook{f: f}
	c.mu.Lock()
	if c.cancelled {
		c.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	if c.unwatch == nil && c.parent.Done() != nil {
		// The caller's context can be done while the call waits: watch
		// it, once for all the call's tasks.
		c.unwatch = context.AfterFunc(c.parent, c.runHooks)
	}
	h.next, h.linked = c.hooks, true
	if h.next != nil {
		h.next.prev = h
	}
	c.hooks = h
	c.mu.Unlock()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if !h.linked {
			return false
		}
		h.linked = false
		if h.prev != nil {
			h.prev.next = h.next
		} else {
			c.hooks = h.next
		}
		if h.next != nil {
			h.next.prev = h.prev
		}
		return true
	}
}

// runHooks runs, once, in a goroutine, the functions registered with
// afterCancel: the call's context is cancelled.
func (c *call) runHooks() {
	c.mu.Lock()
	if c.cancelled {
		c.mu.Unlock()
		return
	}
	c.cancelled = true
	hs := c.hooks
	c.hooks = nil
	for h := hs; h != nil; h = h.next {
		h.linked = false
	}
	unwatch := c.unwatch
	c.mu.Unlock()
	if unwatch != nil {
		unwatch()
	}
	if hs != nil {
		go func() {
			for h := hs; h != nil; h = h.next {
				h.f()
			}
		}()
	}
}

// cancelAll cancels the call's context, and runs the functions its tasks
// registered with AfterCancel.
func (c *call) cancelAll() {
	c.cancel()
	c.runHooks()
}

func begin[T, R any](ctx context.Context, p *Pool, f typed[T, R]) (*call, error) {
	return beginCall(ctx, p, f, true)
}

// beginCall is begin; a call that no goroutine waits for (wait false) has
// no done channel.
func beginCall[T, R any](ctx context.Context, p *Pool, f typed[T, R], wait bool) (*call, error) {
	if ctx == nil {
		return nil, errors.New("pool: nil Context")
	}
	if p == nil || p.b == nil {
		return nil, errors.New("pool: nil Pool")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := p.b.Begin(); err != nil {
		return nil, err
	}
	c := &call{p: p.b, parent: ctx, fnVal: f.value(), fnPtr: f.ptr(), shape: f.shape()}
	if wait {
		c.done = make(chan struct{})
	}
	if s := objects.Of(p.b); s != nil {
		// Functions that take a context learn their pool's store: a Ref
		// of another pool fails there as on a cluster worker.
		ctx = objects.WithStore(ctx, s.ID())
	}
	c.ctx, c.cancel = context.WithCancel(ctx)
	c.pending.Store(1)
	return c, nil
}

// end releases the call: it cancels the call's context, so that abandoned
// tasks stop, and tells the pool the call submits no more.
func (c *call) end() {
	c.stop.Store(true)
	c.cancelAll()
	c.p.End()
}

// endShare is end for an async call, done in shares: the pool hears of
// the end at the last (see applyAsync).
func (c *call) endShare() {
	if c.ends.Add(-1) == 0 {
		c.p.End()
	}
}

func (c *call) remote() (*backend.Func, error) {
	c.fnOnce.Do(func() {
		c.fn, c.fnErr = registered(c.fnVal, c.fnPtr, c.shape)
		if c.fnErr == nil {
			c.fnErr = c.fn.contract()
		}
	})
	if c.fnErr != nil {
		return nil, c.fnErr
	}
	return c.fn.f, nil
}

func (c *call) name() string { return nameOfPC(c.fnPtr) }

func (c *call) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
	c.stop.Store(true)
	c.cancelAll()
	c.over()
}

// over calls then, the first time, if set: the call is over.
func (c *call) over() {
	if c.then != nil && c.thenOK.CompareAndSwap(false, true) {
		c.then.callOver()
	}
}

func (c *call) firstErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// quickChunk: a chunk back this fast says the items are cheap.
const quickChunk = 200 * time.Microsecond

func (c *call) taskDone(t task, err error) {
	if !c.quick.Load() && time.Since(t.sentAt()) < quickChunk {
		c.quick.Store(true)
	}
	if err == nil {
		c.progress.add(t.size())
	}
	var rest task // with KeepGoing, the items after a failed one
	if err != nil && err != errStopped {
		var te *TaskError
		if errors.As(err, &te) && te.Func == "" {
			te.Func = c.name()
		}
		rel := -1
		if te != nil {
			rel = te.Index
			te.Index += t.base()
		}
		if c.keepGoing && te != nil && err == error(te) && !c.stop.Load() {
			c.mu.Lock()
			c.errs = append(c.errs, te)
			c.mu.Unlock()
			c.progress.add(rel + 1)
			rest = t.rest(rel + 1)
		} else {
			c.fail(err)
		}
	}
	if c.onDone != nil {
		c.onDone(t, err)
	}
	if rest != nil {
		// After onDone: Imap learns of the failed chunk before its rest
		// can finish.
		c.resubmit(rest)
	}
	c.release()
}

func (c *call) release() {
	if c.pending.Add(-1) == 0 {
		if c.done != nil {
			close(c.done)
		}
		c.over()
	}
}

// submit hands t to the pool, counting it as pending.
func (c *call) submit(t task) error {
	c.pending.Add(1)
	if err := c.send(t); err != nil {
		c.pending.Add(-1)
		c.fail(err)
		return err
	}
	return nil
}

// send hands t to the pool, or to the call's pinned worker.
func (c *call) send(t task) error {
	if c.pin != nil {
		return c.pin.Submit(c.ctx, t.backendTask())
	}
	return c.p.Submit(c.ctx, t.backendTask())
}

// resubmit submits t, the rest of a chunk whose item failed, from the
// goroutine that finished the chunk, which may be a worker: so it counts t
// as pending at once, and submits it from a goroutine of its own.
func (c *call) resubmit(t task) {
	c.pending.Add(1)
	go func() {
		if err := c.send(t); err != nil {
			c.fail(err)
			c.release()
		}
	}()
}

// itemErrors returns the errors KeepGoing collected, joined in input
// order, or nil.
func (c *call) itemErrors() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.errs) == 0 {
		return nil
	}
	slices.SortFunc(c.errs, func(a, b *TaskError) int { return a.Index - b.Index })
	errs := make([]error, len(c.errs))
	for i, e := range c.errs {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// wait waits for every submitted task, the call's failure, or ctx. It
// returns the call's error.
func (c *call) wait(ctx context.Context) error {
	c.release() // the submitter's share
	select {
	case <-c.done:
	case <-c.ctx.Done():
	}
	return c.result(ctx)
}

func (c *call) result(ctx context.Context) error {
	err := c.firstErr()
	if cerr := ctx.Err(); cerr != nil && (err == nil || errors.Is(err, cerr)) {
		return cerr
	}
	return err
}

// chunk is a task of a call: a run of consecutive items.
type chunk[T, R any] struct {
	backend.Task
	c    *call
	sent time.Time
	f    *typed[T, R]
	in   []T
	out  []R
	off  int
}

// newChunk returns the task of items in, whose results go to out, the
// first of them at index off of the call's input.
func newChunk[T, R any](c *call, f *typed[T, R], in []T, out []R, off int) *chunk[T, R] {
	k := &chunk[T, R]{c: c, sent: time.Now(), f: f, in: in, out: out, off: off}
	k.Init(k)
	return k
}

func (k *chunk[T, R]) backendTask() *backend.Task { return &k.Task }
func (k *chunk[T, R]) sentAt() time.Time          { return k.sent }

// Context, Run, RunChecked, Func, Len, Args, NewResults, ResultsAt,
// SetResults and Finish make the chunk a backend.Work.

func (k *chunk[T, R]) Context() context.Context     { return k.c.ctx }
func (k *chunk[T, R]) Func() (*backend.Func, error) { return k.c.remote() }
func (k *chunk[T, R]) Len() int                     { return len(k.in) }
func (k *chunk[T, R]) Args() any                    { return k.in }
func (k *chunk[T, R]) NewResults() any              { return new([]R) }
func (k *chunk[T, R]) Finish(err error)             { k.c.taskDone(k, err) }
func (k *chunk[T, R]) AfterCancel(f func()) func() bool {
	return k.c.afterCancel(f)
}

// ResultsAt is the chunk's out[lo:hi] as an empty slice with its room:
// the call's own results, which a backend decodes into without a copy.
func (k *chunk[T, R]) ResultsAt(lo, hi int) any {
	s := k.out[lo:lo:hi]
	return &s
}

func (k *chunk[T, R]) Run() error {
	_, err := k.f.runRange(k.c.ctx, &k.c.stop, k.in, k.out)
	return err
}

// RunChecked runs the chunk on its items as decoded after encoding, and
// stores its results as decoded after encoding, if its function is
// registered; otherwise it runs it as Run does.
func (k *chunk[T, R]) RunChecked() error {
	if !isRegistered(k.c.fnPtr) {
		return k.Run()
	}
	if _, err := k.c.remote(); err != nil { // the contract's interfaces
		return err
	}
	var in []T
	if err := codec.RoundTrip(k.in, &in); err != nil {
		return encodingError("argument", err)
	}
	res := make([]R, len(in))
	n, err := k.f.runRange(k.c.ctx, &k.c.stop, in, res)
	var out []R
	if rerr := codec.RoundTrip(res[:n], &out); rerr != nil {
		return encodingError("result", rerr)
	}
	copy(k.out, out)
	return crossError(err)
}

// crossError changes a function's error as crossing to another process
// does: it keeps its message, and its identity only where registered (see
// RegisterError). Panics and the context's own errors keep theirs.
func crossError(err error) error {
	te, ok := err.(*TaskError)
	if !ok || te.Err == context.Canceled || te.Err == context.DeadlineExceeded {
		return err
	}
	if _, panicked := te.Err.(*PanicError); panicked {
		return err
	}
	names, typed := codec.EncodeError(te.Err)
	te.Err = codec.DecodeError(te.Err.Error(), names, typed)
	return te
}

// encodingError makes an encoding error of one item a *TaskError naming
// it, as the cluster backend does.
func encodingError(what string, err error) error {
	var ie *codec.ItemError
	if errors.As(err, &ie) {
		return &TaskError{Index: ie.Index, Err: fmt.Errorf("the %s cannot cross to another process: %w", what, ie.Err)}
	}
	return fmt.Errorf("the %s cannot cross to another process: %w", what, err)
}

func (k *chunk[T, R]) rest(from int) task {
	if from >= len(k.in) {
		return nil
	}
	return newChunk(k.c, k.f, k.in[from:], k.out[from:], k.off+from)
}

func (k *chunk[T, R]) base() int { return k.off }
func (k *chunk[T, R]) size() int { return len(k.in) }

func (k *chunk[T, R]) SetResults(res any) (int, error) {
	var rs []R
	switch v := res.(type) {
	case []R:
		rs = v
	case *[]R:
		rs = *v
	case nil:
	default:
		return 0, errors.New("pool: backend returned results of the wrong type")
	}
	if len(rs) > len(k.out) {
		return 0, errors.New("pool: backend returned more results than items")
	}
	if len(rs) > 0 && &rs[0] == &k.out[0] {
		return len(rs), nil // decoded in place (ResultsAt)
	}
	return copy(k.out, rs), nil
}
