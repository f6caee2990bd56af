package pool

import "context"

// Map calls fn on every item and returns the results in input order, as
// Python's Pool.map. It blocks until every item is done, the first error
// (see the package doc), or ctx is done. Items travel to workers in chunks
// (see [Chunksize]). By default the first chunk is ⌈len(items)/(4×workers)⌉
// items, as in Python, and each next one ⌈remaining/(4×workers)⌉, so that
// chunks shrink as the input runs out and the workers finish together
// (unless chunks come back within 200µs: then they all have Python's size).
// It
// allocates the result slice and one small task per chunk: on the local
// backend a few nanoseconds per item in all.
func Map[T, R any](ctx context.Context, p *Pool, fn func(T) R, items []T, opts ...CallOption) ([]R, error) {
	return mapSlice(ctx, p, typed[T, R]{plain: fn}, items, opts)
}

// MapErr is [Map] for functions that return an error.
func MapErr[T, R any](ctx context.Context, p *Pool, fn func(T) (R, error), items []T, opts ...CallOption) ([]R, error) {
	return mapSlice(ctx, p, typed[T, R]{errf: fn}, items, opts)
}

// MapCtx is [Map] for functions that take a context. The context they get is
// cancelled when ctx is, when the call fails, or when the pool is
// terminated.
func MapCtx[T, R any](ctx context.Context, p *Pool, fn func(context.Context, T) (R, error), items []T, opts ...CallOption) ([]R, error) {
	return mapSlice(ctx, p, typed[T, R]{ctxf: fn}, items, opts)
}

// ForEach calls fn on every item, for functions with no result, as Map
// does, and returns the first error (see the package doc). On the cluster
// fn is registered with [RegisterEach].
func ForEach[T any](ctx context.Context, p *Pool, fn func(T), items []T, opts ...CallOption) error {
	return forEach(ctx, p, each[T](fn), items, opts)
}

// ForEachErr is [ForEach] for functions that return an error.
func ForEachErr[T any](ctx context.Context, p *Pool, fn func(T) error, items []T, opts ...CallOption) error {
	return forEach(ctx, p, each[T](fn), items, opts)
}

// ForEachCtx is [ForEach] for functions that take a context.
func ForEachCtx[T any](ctx context.Context, p *Pool, fn func(context.Context, T) error, items []T, opts ...CallOption) error {
	return forEach(ctx, p, each[T](fn), items, opts)
}

func forEach[T any](ctx context.Context, p *Pool, f typed[T, struct{}], items []T, opts []CallOption) error {
	_, err := mapSlice(ctx, p, f, items, opts)
	return err
}

// Apply calls fn(arg) on a worker and returns its result, as Python's
// Pool.apply. An error is a [*TaskError] with Index 0. It costs a chunk of
// one item: about a microsecond on the local backend, a round trip (about
// 0.1 ms on loopback) on the cluster; for many items, Map amortizes it.
func Apply[T, R any](ctx context.Context, p *Pool, fn func(T) R, arg T) (R, error) {
	return apply(ctx, p, typed[T, R]{plain: fn}, arg)
}

// ApplyErr is [Apply] for functions that return an error.
func ApplyErr[T, R any](ctx context.Context, p *Pool, fn func(T) (R, error), arg T) (R, error) {
	return apply(ctx, p, typed[T, R]{errf: fn}, arg)
}

// ApplyCtx is [Apply] for functions that take a context.
func ApplyCtx[T, R any](ctx context.Context, p *Pool, fn func(context.Context, T) (R, error), arg T) (R, error) {
	return apply(ctx, p, typed[T, R]{ctxf: fn}, arg)
}

func apply[T, R any](ctx context.Context, p *Pool, f typed[T, R], arg T) (R, error) {
	return prepareApply(ctx, p, f, arg)()
}

// prepareApply admits an Apply call now and returns the rest of it.
func prepareApply[T, R any](ctx context.Context, p *Pool, f typed[T, R], arg T) func() (R, error) {
	run := prepareMap(ctx, p, f, []T{arg}, []CallOption{Chunksize(1)})
	return func() (R, error) {
		out, err := run()
		if err != nil {
			var zero R
			return zero, err
		}
		return out[0], nil
	}
}

func mapSlice[T, R any](ctx context.Context, p *Pool, f typed[T, R], items []T, opts []CallOption) ([]R, error) {
	return prepareMap(ctx, p, f, items, opts)()
}

// prepareMap admits a Map call now, so that an async call started before
// Close is one of the calls Close lets finish, and returns the rest of the
// call, which must be run exactly once.
func prepareMap[T, R any](ctx context.Context, p *Pool, f typed[T, R], items []T, opts []CallOption) func() ([]R, error) {
	fail := func(err error) func() ([]R, error) { return func() ([]R, error) { return nil, err } }
	if err := f.check(); err != nil {
		return fail(err)
	}
	c, err := begin(ctx, p, f)
	if err != nil {
		return fail(err)
	}
	return func() ([]R, error) {
		defer c.end()
		out := make([]R, len(items))
		cfg := newCallConfig(opts)
		c.pin = cfg.pin
		c.keepGoing = cfg.keepGoing
		c.progress = startProgress(cfg.progress, len(items))
		defer c.progress.end()
		cs := cfg.chunksize
		w := max(p.Workers(), 1)
		// Guided chunks: ⌈remaining/(4×workers)⌉, Python's size for the
		// first chunk, shrinking as the input runs out so that the workers
		// finish together instead of one waiting on the last big chunk.
		// Once a chunk has come back quickly, items are cheap and the
		// imbalance is small: the size stays at Python's, and small Maps
		// do not pay for dozens of tiny chunks.
		first := (len(items) + 4*w - 1) / (4 * w)
		for lo := 0; lo < len(items) && !c.stop.Load(); {
			size := cs
			if size < 1 {
				size = first
				if !c.quick.Load() {
					size = (len(items) - lo + 4*w - 1) / (4 * w)
				}
			}
			hi := min(lo+size, len(items))
			t := newChunk(c, &f, items[lo:hi:hi], out[lo:hi:hi], lo)
			if c.submit(t) != nil {
				break
			}
			lo = hi
		}
		if err := c.wait(ctx); err != nil {
			return nil, err
		}
		if err := c.itemErrors(); err != nil {
			return out, err
		}
		return out, nil
	}
}
