package pool

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mpgo/mp/internal/codec"
	"github.com/mpgo/mp/internal/objects"
)

// Pool is a set of workers, implemented by each backend. Programs call the
// typed operations of this package ([Map], [Imap], [Apply], …) with a Pool and
// its lifecycle methods (Close, Terminate, Join); the other methods are the
// contract between those operations and the backends, and are not meant to
// be called by programs.
//
// Every method must be safe for concurrent use.
type Pool interface {
	// Workers reports how many tasks the pool runs at once.
	Workers() int

	// Begin admits a new call. It returns an error wrapping ErrClosed after
	// Close or Terminate. Each successful Begin is paired with one End,
	// after the call has submitted its last task. A closed pool keeps
	// running the tasks of calls admitted before Close.
	Begin() error
	// End marks the end of a call admitted by Begin.
	End()
	// Submit hands t to the pool. It blocks until a worker accepts t, ctx is
	// done (it returns ctx.Err()), or the pool is terminated (it returns
	// ErrTerminated). Once Submit has returned nil, the backend must finish
	// t exactly once: by t.Run, t.Complete or t.Fail.
	Submit(ctx context.Context, t *Task) error

	// Close stops the pool from admitting new calls. Calls already running
	// finish their work; then the workers exit. Close does not wait for
	// that: Join does. Close is idempotent.
	Close() error
	// Terminate stops the pool now: queued and running tasks fail with
	// ErrTerminated, so every pending call returns promptly, and contexts
	// given to context-aware functions are cancelled. A plain function that
	// is already running cannot be interrupted; Join waits for it.
	Terminate() error
	// Join waits until every worker has exited, or ctx is done. It returns
	// ErrNotClosed if neither Close nor Terminate was called.
	Join(ctx context.Context) error
}

// A Task is one chunk of items of one call, as a backend sees it. Tasks are
// made by the operations of this package and handed to [Pool.Submit].
type Task struct {
	c     *call
	impl  taskImpl
	state atomic.Uint32 // 0 pending, 1 finished
	sent  time.Time
}

type taskImpl interface {
	run(ctx context.Context, stop *atomic.Bool) (int, error)
	runChecked(ctx context.Context, stop *atomic.Bool) (int, error)
	args() any
	rest(from int) taskImpl // the items from index from on, or nil
	newResults() any
	setResults(res any) (int, error)
	base() int
	size() int
}

// Run runs the task in this process and finishes it. It recovers panics of
// the user function; it never panics itself.
func (t *Task) Run() {
	if t.state.Load() != 0 {
		return
	}
	_, err := t.impl.run(t.c.ctx, &t.c.stop)
	t.finish(err)
}

// RunChecked is Run for a backend that checks encoding (see
// [CheckEncoding]): if the task's function is registered, its arguments
// and results pass through the encoding the cluster uses, as if they
// crossed to a worker process, so that the function sees, and the caller
// gets, what a cluster pool would give, or the same [ErrEncoding]. It costs
// an encoding and a decoding of every argument and result. Functions that
// are not registered run as by Run: they cannot run on a cluster at all.
func (t *Task) RunChecked() {
	if t.state.Load() != 0 {
		return
	}
	if !isRegistered(t.c.fnPtr) {
		t.Run()
		return
	}
	if _, err := t.c.remote(); err != nil { // the contract's interfaces
		t.finish(err)
		return
	}
	_, err := t.impl.runChecked(t.c.ctx, &t.c.stop)
	t.finish(err)
}

// Context returns the context of the task's call. It is cancelled when the
// call ends, for any reason; a backend running the task remotely should then
// cancel it there.
func (t *Task) Context() context.Context { return t.c.ctx }

// Func returns the registered function the task runs, or an error wrapping
// ErrNotRegistered that names the function and says what line to add.
func (t *Task) Func() (*Func, error) { return t.c.remote() }

// Len returns the number of items in the task.
func (t *Task) Len() int { return t.impl.size() }

// Args returns the task's arguments as a []T, for a backend to encode.
func (t *Task) Args() any { return t.impl.args() }

// NewResults returns a pointer to an empty []R for a backend to decode
// results into before passing it to Complete.
func (t *Task) NewResults() any { return t.impl.newResults() }

// Complete finishes a task run elsewhere. results must be a []R or *[]R with
// one result per item run, in order; err is the error that stopped the
// chunk, if any. A *TaskError's Index must count from the start of the
// chunk; Complete makes it count from the start of the call's input.
// Complete and Fail after the first have no effect.
func (t *Task) Complete(results any, err error) {
	if t.state.Load() != 0 {
		return
	}
	n, serr := t.impl.setResults(results)
	if serr == nil && err == nil && n != t.impl.size() {
		serr = fmt.Errorf("pool: backend returned %d results for %d items", n, t.impl.size())
	}
	if serr != nil && err == nil {
		err = serr
	}
	t.finish(err)
}

// Fail finishes the task with err without running it, or abandons it while it
// runs: its call fails with err. Fail after the task has finished has no
// effect.
func (t *Task) Fail(err error) {
	if err == nil {
		err = errors.New("pool: task failed with a nil error")
	}
	t.finish(err)
}

// Done reports whether the task has finished.
func (t *Task) Done() bool { return t.state.Load() != 0 }

func (t *Task) finish(err error) {
	if !t.state.CompareAndSwap(0, 1) {
		return
	}
	t.c.taskDone(t, err)
}

// call is the state of one typed operation: the tasks it has submitted, its
// first error and its context.
type call struct {
	p       Pool
	ctx     context.Context
	cancel  context.CancelFunc
	stop    atomic.Bool
	quick   atomic.Bool  // a chunk came back within quickChunk
	pending atomic.Int64 // unfinished tasks, plus one while submitting
	done    chan struct{}

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
	fn     *Func
	fnErr  error

	// onDone, if set, is called for every finished task, after its error
	// was recorded and before pending is decremented.
	onDone func(t *Task, err error)
}

func begin[T, R any](ctx context.Context, p Pool, f typed[T, R]) (*call, error) {
	if ctx == nil {
		return nil, errors.New("pool: nil Context")
	}
	if p == nil {
		return nil, errors.New("pool: nil Pool")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := p.Begin(); err != nil {
		return nil, err
	}
	c := &call{p: p, done: make(chan struct{}), fnVal: f.value(), fnPtr: f.ptr(), shape: f.shape()}
	if s := objects.Of(p); s != nil {
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
	c.cancel()
	c.p.End()
}

func (c *call) remote() (*Func, error) {
	c.fnOnce.Do(func() {
		c.fn, c.fnErr = registered(c.fnVal, c.fnPtr, c.shape)
		if c.fnErr == nil {
			c.fnErr = c.fn.contract()
		}
	})
	return c.fn, c.fnErr
}

func (c *call) name() string { return nameOfPC(c.fnPtr) }

func (c *call) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
	c.stop.Store(true)
	c.cancel()
}

func (c *call) firstErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// quickChunk: a chunk back this fast says the items are cheap.
const quickChunk = 200 * time.Microsecond

func (c *call) taskDone(t *Task, err error) {
	if !c.quick.Load() && time.Since(t.sent) < quickChunk {
		c.quick.Store(true)
	}
	if err == nil {
		c.progress.add(t.impl.size())
	}
	if err != nil && err != errStopped {
		var te *TaskError
		if errors.As(err, &te) && te.Func == "" {
			te.Func = c.name()
		}
		rel := -1
		if te != nil {
			rel = te.Index
			te.Index += t.impl.base()
		}
		if c.keepGoing && te != nil && err == error(te) && !c.stop.Load() {
			c.mu.Lock()
			c.errs = append(c.errs, te)
			c.mu.Unlock()
			c.progress.add(rel + 1)
			if rest := t.impl.rest(rel + 1); rest != nil {
				c.resubmit(&Task{c: c, impl: rest})
			}
		} else {
			c.fail(err)
		}
	}
	if c.onDone != nil {
		c.onDone(t, err)
	}
	c.release()
}

func (c *call) release() {
	if c.pending.Add(-1) == 0 {
		close(c.done)
	}
}

// submit hands t to the pool, counting it as pending.
func (c *call) submit(t *Task) error {
	c.pending.Add(1)
	t.sent = time.Now()
	if err := c.p.Submit(c.ctx, t); err != nil {
		c.pending.Add(-1)
		c.fail(err)
		return err
	}
	return nil
}

// resubmit submits t, the rest of a chunk whose item failed, from the
// goroutine that finished the chunk, which may be a worker: so it counts t
// as pending at once, and submits it from a goroutine of its own.
func (c *call) resubmit(t *Task) {
	c.pending.Add(1)
	t.sent = time.Now()
	go func() {
		if err := c.p.Submit(c.ctx, t); err != nil {
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

// chunk is a task's typed part: a run of consecutive items.
type chunk[T, R any] struct {
	f   *typed[T, R]
	in  []T
	out []R
	off int
}

func (k *chunk[T, R]) run(ctx context.Context, stop *atomic.Bool) (int, error) {
	return k.f.runRange(ctx, stop, k.in, k.out)
}

// runChecked runs the chunk on its items as decoded after encoding, and
// stores its results as decoded after encoding.
func (k *chunk[T, R]) runChecked(ctx context.Context, stop *atomic.Bool) (int, error) {
	var in []T
	if err := codec.RoundTrip(k.in, &in); err != nil {
		return 0, encodingError("argument", err)
	}
	res := make([]R, len(in))
	n, err := k.f.runRange(ctx, stop, in, res)
	var out []R
	if rerr := codec.RoundTrip(res[:n], &out); rerr != nil {
		return 0, encodingError("result", rerr)
	}
	copy(k.out, out)
	return n, crossError(err)
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

func (k *chunk[T, R]) args() any { return k.in }

func (k *chunk[T, R]) rest(from int) taskImpl {
	if from >= len(k.in) {
		return nil
	}
	return &chunk[T, R]{f: k.f, in: k.in[from:], out: k.out[from:], off: k.off + from}
}

func (k *chunk[T, R]) newResults() any { return new([]R) }
func (k *chunk[T, R]) base() int       { return k.off }
func (k *chunk[T, R]) size() int       { return len(k.in) }

func (k *chunk[T, R]) setResults(res any) (int, error) {
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
	return copy(k.out, rs), nil
}
