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
		sizes := newSizer(len(items), w)
		for lo := 0; lo < len(items) && !c.stop.Load(); {
			size := cs
			if size < 1 {
				size = sizes.next(len(items)-lo, c.quick.Load())
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

// sizer gives Map's default chunk sizes. The first is Python's,
// ⌈len/(4×workers)⌉. After it, sizes follow factoring (Hummel, Schonberg
// and Flynn, 1992): chunks go out in rounds of one per worker, and each
// round's size is ⌈remaining/(2×workers)⌉, at most the first, so that each
// round hands out half of what is left and the last rounds are single
// items: the workers finish together. Shrinking round by round rather than
// chunk by chunk makes half the chunks of ⌈remaining/(4×workers)⌉ per chunk
// (14 against 24 for 100 items on 2 workers) with the same small tail, and
// each chunk costs a cluster's driver a round trip's CPU (about 0.2 ms) on
// the cores the workers compute on. Once a chunk has come back within
// quickChunk, items are cheap and the imbalance small: the size stays at
// the first, and small Maps do not pay for dozens of tiny chunks.
type sizer struct {
	first, workers int
	size           int // this round's
	left           int // chunks left in this round
}

func newSizer(n, workers int) sizer {
	first := max((n+4*workers-1)/(4*workers), 1)
	return sizer{first: first, workers: workers}
}

// next returns the size of the next chunk, remaining items being left.
func (s *sizer) next(remaining int, quick bool) int {
	if quick {
		return s.first
	}
	if s.left == 0 {
		s.size = min(s.first, (remaining+2*s.workers-1)/(2*s.workers))
		s.left = s.workers
	}
	s.left--
	return s.size
}
