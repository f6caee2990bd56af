// Package pool is Python's multiprocessing.Pool for Go: one [Pool] type,
// typed operations over it, and the function registry, options and errors
// shared by every backend.
//
// A [*Pool] is made by a backend: [github.com/mpgo/mp/pool/local] runs goroutine
// workers in this process, [github.com/mpgo/mp/pool/cluster] runs worker
// processes on this machine or on poolworker daemons elsewhere. Programs use a
// pool only through the functions of this package, so moving from one backend
// to the other changes one import line:
//
//	p, err := local.New()           // or cluster.New()
//	if err != nil { ... }
//	defer p.Close()
//	counts, err := pool.Map(ctx, p, sample, batches)
//
// # Function shapes
//
// Go methods cannot have type parameters, so the typed operations are
// package-level generic functions that take the pool as an argument. Each
// comes in three forms, one per function shape, so that the type arguments
// are always inferred:
//
//	Map(ctx, p, fn func(T) R, ...)                          // plain
//	MapErr(ctx, p, fn func(T) (R, error), ...)              // may fail
//	MapCtx(ctx, p, fn func(context.Context, T) (R, error), ...) // context-aware
//
// Python's starmap is Map over a slice of structs: the function takes one
// struct argument.
//
// # Errors
//
// A function that returns an error, or panics, makes the call fail with a
// [*TaskError] that names the function and the item's index; a panic is
// carried as a [*PanicError] with its value and stack. The pool keeps working.
// A call fails with the first error seen in time; it then hands out no new
// work and returns at once, without waiting for the items already running.
//
// # Contexts
//
// Every blocking operation takes a [context.Context]. Cancelling it stops
// handing out items and makes the call return promptly with ctx.Err(); the
// context passed to context-aware functions is cancelled too.
//
// # Concurrency
//
// A Pool and every operation here are safe for concurrent use by many
// goroutines: calls share the pool's workers.
package pool
