package pool

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/mpgo/mp/internal/backend"
	"github.com/mpgo/mp/internal/codec"
)

// ErrActorLost is wrapped by the error of a call to an actor whose worker
// is gone: its process died or was recycled, or the pool was closed. The
// actor's state went with it; later calls fail the same way.
var ErrActorLost = errors.New("pool: actor lost")

func init() {
	if err := codec.RegisterError(ErrActorLost); err != nil {
		panic(err)
	}
	MustRegisterEach(dropActor)
}

// An Actor is one value of type S that lives on one worker, as Ray's
// actors: state (a counter, a loaded model, a connection) that calls change
// in place. Make one with [NewActor]; call its methods with [Call],
// [CallErr] and [CallCtx]. Calls to one actor run one at a time, in the
// order they were made; calls to different actors run in parallel. An
// actor holds its worker until [Actor.Close]. Its methods are safe for
// concurrent use.
type Actor[S any] struct {
	p   *Pool
	id  uint64
	pin backend.Pinned

	mu     sync.Mutex
	tail   chan struct{} // closed when the last call made so far is done
	closed bool
	lost   error // set once a call found the actor lost
}

// actorIDs numbers the actors of this process; a worker process serves one
// driver, so the numbers are unique where the actors live.
var actorIDs atomic.Uint64

// actors holds the state of the actors living in this process, by ID.
var actors sync.Map

// actorNew is the argument of an actor's constructor task.
type actorNew[A any] struct {
	ID  uint64
	Arg A
}

// actorCall is the argument of a method call's task.
type actorCall[T any] struct {
	ID  uint64
	Arg T
}

// ctorTyped is the task that builds an actor where it will live.
func ctorTyped[S, A any](ctor func(A) (*S, error)) typed[actorNew[A], struct{}] {
	return typed[actorNew[A], struct{}]{
		errf: func(n actorNew[A]) (struct{}, error) {
			s, err := ctor(n.Arg)
			if err != nil {
				return struct{}{}, err
			}
			if s == nil {
				return struct{}{}, errors.New("pool: the actor's constructor returned nil and no error")
			}
			actors.Store(n.ID, s)
			return struct{}{}, nil
		},
		orig: ctor,
		reg:  "RegisterActor",
	}
}

// methodTyped is the task that runs a method on an actor where it lives.
func methodTyped[S, T, R any](m func(*S, context.Context, T) (R, error), orig any, reg string) typed[actorCall[T], R] {
	return typed[actorCall[T], R]{
		ctxf: func(ctx context.Context, c actorCall[T]) (R, error) {
			v, ok := actors.Load(c.ID)
			if !ok {
				var zero R
				return zero, fmt.Errorf("%w: actor %d is not on this worker", ErrActorLost, c.ID)
			}
			s, ok := v.(*S)
			if !ok {
				var zero R
				return zero, fmt.Errorf("pool: actor %d is a %T, not a *%T", c.ID, v, *new(S))
			}
			return m(s, ctx, c.Arg)
		},
		orig: orig,
		reg:  reg,
	}
}

func plainMethod[S, T, R any](m func(*S, T) R) func(*S, context.Context, T) (R, error) {
	return func(s *S, _ context.Context, x T) (R, error) { return m(s, x), nil }
}

func errMethod[S, T, R any](m func(*S, T) (R, error)) func(*S, context.Context, T) (R, error) {
	return func(s *S, _ context.Context, x T) (R, error) { return m(s, x) }
}

// dropActor forgets an actor's state where it lives.
func dropActor(id uint64) { actors.Delete(id) }

// RegisterActor records ctor, an actor's constructor, so that a cluster's
// worker processes can build the actor by [NewActor], as [Register] does
// for functions. Local pools do not need it.
func RegisterActor[S, A any](ctor func(A) (*S, error)) error {
	if ctor == nil {
		return errors.New("pool.RegisterActor: nil constructor")
	}
	return register(ctor, ctorTyped(ctor))
}

// MustRegisterActor is like [RegisterActor] but panics on error.
func MustRegisterActor[S, A any](ctor func(A) (*S, error)) {
	if err := RegisterActor(ctor); err != nil {
		panic(err)
	}
}

// RegisterMethod records m, a method expression such as (*Counter).Add, so
// that a cluster's worker processes can run it by [Call], as [Register]
// does for functions. Local pools do not need it.
func RegisterMethod[S, T, R any](m func(*S, T) R) error {
	if m == nil {
		return errors.New("pool.RegisterMethod: nil method")
	}
	return register(m, methodTyped(plainMethod(m), m, "RegisterMethod"))
}

// RegisterMethodErr is [RegisterMethod] for methods that return an error,
// called by [CallErr].
func RegisterMethodErr[S, T, R any](m func(*S, T) (R, error)) error {
	if m == nil {
		return errors.New("pool.RegisterMethodErr: nil method")
	}
	return register(m, methodTyped(errMethod(m), m, "RegisterMethodErr"))
}

// RegisterMethodCtx is [RegisterMethod] for methods that take a context,
// called by [CallCtx].
func RegisterMethodCtx[S, T, R any](m func(*S, context.Context, T) (R, error)) error {
	if m == nil {
		return errors.New("pool.RegisterMethodCtx: nil method")
	}
	return register(m, methodTyped(m, m, "RegisterMethodCtx"))
}

// MustRegisterMethod is like [RegisterMethod] but panics on error.
func MustRegisterMethod[S, T, R any](m func(*S, T) R) {
	if err := RegisterMethod(m); err != nil {
		panic(err)
	}
}

// MustRegisterMethodErr is like [RegisterMethodErr] but panics on error.
func MustRegisterMethodErr[S, T, R any](m func(*S, T) (R, error)) {
	if err := RegisterMethodErr(m); err != nil {
		panic(err)
	}
}

// MustRegisterMethodCtx is like [RegisterMethodCtx] but panics on error.
func MustRegisterMethodCtx[S, T, R any](m func(*S, context.Context, T) (R, error)) {
	if err := RegisterMethodCtx(m); err != nil {
		panic(err)
	}
}

// NewActor reserves a worker of p and builds an actor there by ctor(arg),
// as Ray's Actor.remote: a goroutine of a local pool, a worker process of
// a cluster (where ctor must be registered with [RegisterActor]). It waits
// for a free worker, bounded by ctx, and returns ctor's error as a
// [*TaskError]. The worker runs only the actor's calls until
// [Actor.Close], and p.Workers counts one fewer meanwhile: a pool of n
// workers holds at most n actors, and needs a worker left over for its
// other calls.
func NewActor[S, A any](ctx context.Context, p *Pool, ctor func(A) (*S, error), arg A) (*Actor[S], error) {
	if ctor == nil {
		return nil, errors.New("pool.NewActor: nil constructor")
	}
	if p == nil || p.b == nil {
		return nil, errors.New("pool.NewActor: nil Pool")
	}
	if err := p.b.Begin(); err != nil {
		return nil, err
	}
	pin, err := p.b.Pin(ctx)
	p.b.End()
	if err != nil {
		return nil, err
	}
	a := &Actor[S]{p: p, id: actorIDs.Add(1), pin: pin, tail: closedChan}
	_, err = onActor(ctx, a, ctorTyped(ctor), actorNew[A]{a.id, arg})
	if err != nil {
		pin.Release()
		return nil, err
	}
	return a, nil
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Call runs m (a method expression, such as (*Counter).Add) on the actor
// a with arg, after the calls to a made before it, and returns its
// result. On a cluster, m must be registered with [RegisterMethod]. Its
// cost is that of an [Apply]. A method that fails or panics gives a
// [*TaskError], and the actor lives on; an actor whose worker is gone gives
// an error wrapping [ErrActorLost].
func Call[S, T, R any](ctx context.Context, a *Actor[S], m func(*S, T) R, arg T) (R, error) {
	if m == nil {
		var zero R
		return zero, errors.New("pool.Call: nil method")
	}
	return onActor(ctx, a, methodTyped(plainMethod(m), m, "RegisterMethod"), actorCall[T]{a.idOf(), arg})
}

// CallErr is [Call] for methods that return an error.
func CallErr[S, T, R any](ctx context.Context, a *Actor[S], m func(*S, T) (R, error), arg T) (R, error) {
	if m == nil {
		var zero R
		return zero, errors.New("pool.CallErr: nil method")
	}
	return onActor(ctx, a, methodTyped(errMethod(m), m, "RegisterMethodErr"), actorCall[T]{a.idOf(), arg})
}

// CallCtx is [Call] for methods that take a context: it is cancelled when
// ctx is, or the pool is terminated.
func CallCtx[S, T, R any](ctx context.Context, a *Actor[S], m func(*S, context.Context, T) (R, error), arg T) (R, error) {
	if m == nil {
		var zero R
		return zero, errors.New("pool.CallCtx: nil method")
	}
	return onActor(ctx, a, methodTyped(m, m, "RegisterMethodCtx"), actorCall[T]{a.idOf(), arg})
}

// Close forgets the actor's state on its worker, after the calls made
// before it, and gives the worker back to the pool. Later calls fail with
// an error wrapping [ErrActorLost]. Closing again does nothing. Closing
// the pool ends its actors too.
func (a *Actor[S]) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	prev := a.tail
	a.mu.Unlock()
	<-prev
	defer a.pin.Release()
	if a.lost != nil {
		return nil
	}
	_, err := prepareMap(context.Background(), a.p, each[uint64](dropActor), []uint64{a.id}, []CallOption{Chunksize(1), onWorker(a.pin)})()
	if errors.Is(err, ErrActorLost) || errors.Is(err, ErrClosed) {
		return nil
	}
	return err
}

// onWorker sends a call's tasks to a pinned worker.
func onWorker(pin backend.Pinned) CallOption {
	return func(c *callConfig) { c.pin = pin }
}

// onActor runs f(arg) on a's worker, in a's order.
func onActor[S, T, R any](ctx context.Context, a *Actor[S], f typed[T, R], arg T) (R, error) {
	return prepareOnActor(ctx, a, f, arg)()
}

// prepareOnActor takes the call's place in a's order now, and returns the
// rest of the call, which must be run exactly once.
func prepareOnActor[S, T, R any](ctx context.Context, a *Actor[S], f typed[T, R], arg T) func() (R, error) {
	var zero R
	if a == nil {
		return func() (R, error) { return zero, errors.New("pool: nil Actor") }
	}
	mine := make(chan struct{})
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return func() (R, error) { return zero, fmt.Errorf("%w: the actor is closed", ErrActorLost) }
	}
	prev := a.tail
	a.tail = mine
	a.mu.Unlock()
	return func() (R, error) {
		select {
		case <-prev:
		case <-ctx.Done():
			go func() { <-prev; close(mine) }() // keep the order for the calls behind
			return zero, ctx.Err()
		}
		defer close(mine)
		if a.lost != nil { // written before close(prev), read after
			return zero, a.lost
		}
		out, err := prepareMap(ctx, a.p, f, []T{arg}, []CallOption{Chunksize(1), onWorker(a.pin)})()
		if errors.Is(err, ErrActorLost) {
			a.lost = err
		}
		if err != nil {
			return zero, err
		}
		return out[0], nil
	}
}

// CallAsync starts [Call] and returns at once, as Ray's actor method
// .remote(): the call's place in the actor's order is taken now, so calls
// made one after another run in that order.
func CallAsync[S, T, R any](ctx context.Context, a *Actor[S], m func(*S, T) R, arg T) *AsyncResult[R] {
	if m == nil {
		return goAsync(failed[R](errors.New("pool.CallAsync: nil method")))
	}
	return goAsync(prepareOnActor(ctx, a, methodTyped(plainMethod(m), m, "RegisterMethod"), actorCall[T]{a.idOf(), arg}))
}

// CallAsyncErr is [CallAsync] for methods that return an error.
func CallAsyncErr[S, T, R any](ctx context.Context, a *Actor[S], m func(*S, T) (R, error), arg T) *AsyncResult[R] {
	if m == nil {
		return goAsync(failed[R](errors.New("pool.CallAsyncErr: nil method")))
	}
	return goAsync(prepareOnActor(ctx, a, methodTyped(errMethod(m), m, "RegisterMethodErr"), actorCall[T]{a.idOf(), arg}))
}

// CallAsyncCtx is [CallAsync] for methods that take a context.
func CallAsyncCtx[S, T, R any](ctx context.Context, a *Actor[S], m func(*S, context.Context, T) (R, error), arg T) *AsyncResult[R] {
	if m == nil {
		return goAsync(failed[R](errors.New("pool.CallAsyncCtx: nil method")))
	}
	return goAsync(prepareOnActor(ctx, a, methodTyped(m, m, "RegisterMethodCtx"), actorCall[T]{a.idOf(), arg}))
}

func failed[R any](err error) func() (R, error) {
	return func() (R, error) { var zero R; return zero, err }
}

func (a *Actor[S]) idOf() uint64 {
	if a == nil {
		return 0
	}
	return a.id
}
