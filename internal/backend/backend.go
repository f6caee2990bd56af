// Package backend is the contract between package pool and the backends
// that run its tasks (pool/local, pool/cluster), kept apart from pool so
// that programs reading pool's documentation see only what they call, as
// database/sql keeps its drivers' contract in database/sql/driver.
//
// It is internal: the contract changes with the features of package pool,
// and every backend lives in this module.
package backend

import (
	"context"
	"errors"
)

// Backend is a set of workers. Package pool wraps it in the *pool.Pool that
// programs hold; the typed operations call its methods. Every method must
// be safe for concurrent use.
type Backend interface {
	// Workers reports how many tasks the pool runs at once.
	Workers() int

	// Begin admits a new call. It returns an error wrapping ErrClosed after
	// Close or Terminate. Each successful Begin is paired with one End,
	// after the call has submitted its last task. A closed pool keeps
	// running the tasks of calls admitted before Close.
	Begin() error
	// End marks the end of a call admitted by Begin.
	End()
	// Submit hands t to the pool. It blocks until a worker accepts t, ctx
	// is done (it returns ctx.Err()), or the pool is terminated (it returns
	// an error wrapping pool.ErrTerminated). Once Submit has returned nil,
	// the backend must finish t exactly once: by t.Run, t.RunChecked,
	// t.Complete or t.Fail.
	Submit(ctx context.Context, t *Task) error

	// Close stops the pool from admitting new calls. Calls already
	// running finish their work; then the workers exit. Close does not
	// wait for that: Join does. Close is idempotent.
	Close() error
	// Terminate stops the pool now: queued and running tasks fail with
	// pool.ErrTerminated, so every pending call returns promptly, and
	// contexts given to context-aware functions are cancelled. A plain
	// function that is already running cannot be interrupted; Join waits
	// for it.
	Terminate() error
	// Join waits until every worker has exited, or ctx is done. It
	// returns ErrNotClosed if neither Close nor Terminate was called.
	Join(ctx context.Context) error

	// Pin reserves a worker for an actor, waiting (as Submit does) until
	// one is free: a goroutine of a local pool, a slot of a worker process
	// of a cluster. The worker runs no other calls until Release, and
	// Workers counts one fewer meanwhile. It is called within Begin and
	// End.
	Pin(ctx context.Context) (Pinned, error)
}

// Pinned is a worker reserved by Backend.Pin. Package pool submits one
// task at a time to it.
type Pinned interface {
	// Submit runs t on the pinned worker, as Backend.Submit does, but
	// never on another: if the worker is gone (its process died, it
	// retired, the pool closed), t is not run, and Submit, or t, fails
	// with an error wrapping pool.ErrActorLost.
	Submit(ctx context.Context, t *Task) error
	// Release gives the worker back to the pool. It is idempotent.
	Release()
}

// Wrap returns b wrapped in the *pool.Pool that programs use, as an any
// (package pool imports this one, not the other way round). Package pool
// sets it in its init function; a backend's New returns
// Wrap(b).(*pool.Pool).
var Wrap func(b Backend) any

// Unwrap returns the Backend of p, a *pool.Pool (for tests of this module
// that look inside a backend). Package pool sets it in its init function.
var Unwrap func(p any) Backend

// The sentinel errors this package returns. Package pool exports them
// under the same names.
var (
	ErrClosed    = errors.New("pool: closed")
	ErrNotClosed = errors.New("pool: Join called before Close or Terminate")
	ErrConfig    = errors.New("pool: bad configuration")
)
