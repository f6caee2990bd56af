package pool

import "github.com/mpgo/mp/internal/backend"

// An Option configures a pool. The options of this package are accepted
// by every backend's constructor (local.New, cluster.New); a backend's
// package adds its own, which the other backends reject.
type Option func(*backend.Config) error

// Workers sets how many items the pool runs at once. n must be at least 1.
func Workers(n int) Option {
	return func(c *backend.Config) error {
		if n < 1 {
			return configError("Workers(%d): need at least 1 worker", n)
		}
		c.Workers, c.WorkersSet = n, true
		return nil
	}
}

// Initializer sets a function that runs once in each worker before its first
// task, as Python's initializer argument. For the cluster backend fn must be a
// top-level function: worker processes find it by name, and they construct
// the same options only if the option is built where every process runs it
// (in main before cluster.New, or in a package-level variable).
func Initializer(fn func() error) Option {
	name := funcName(fn)
	if fn != nil {
		registerInitializer(name, fn)
	}
	return func(c *backend.Config) error {
		if fn == nil {
			return configError("Initializer(nil)")
		}
		c.Initializer, c.InitializerName = fn, name
		return nil
	}
}

// MaxTasksPerWorker recycles a worker after it has run n tasks (chunks), as
// Python's maxtasksperchild. n must be at least 1.
func MaxTasksPerWorker(n int) Option {
	return func(c *backend.Config) error {
		if n < 1 {
			return configError("MaxTasksPerWorker(%d): need at least 1", n)
		}
		c.MaxTasksPerWorker = n
		return nil
	}
}

// CheckEncoding turns on (or off) the check that what a local pool
// computes is what a cluster pool would: every argument and result of a
// registered function is encoded and decoded as if it crossed to a worker
// process, so a value the cluster would change (a time's location, a value
// in an interface field) is changed here too, and one it would refuse fails
// the call here too, with [ErrEncoding]. It is on by default in test
// binaries (testing.Testing), so that `go test` on a local pool finds what
// the cluster would break; elsewhere it is off, as it costs an encoding and
// a decoding of every item (about 6 ns an int and 36 ns a small struct:
// BenchmarkRoundTrip* in internal/codec). Functions that are not
// registered are never checked: they cannot run on a cluster. The cluster
// backend always encodes and ignores it.
func CheckEncoding(on bool) Option {
	return func(c *backend.Config) error {
		c.CheckEncoding = on
		return nil
	}
}

// A CallOption configures one call.
type CallOption func(*callConfig)

type callConfig struct {
	pin       backend.Pinned // an actor's worker
	chunksize int
	keepGoing bool
	progress  func(done, total int)
}

// Chunksize sets how many items travel to a worker together. Larger chunks
// cost less per item; smaller ones balance uneven items better. n < 1 means
// the default: for Map, Python's ⌈len/(4×workers)⌉ for the first round of
// one chunk per worker, then rounds of ⌈remaining/(2×workers)⌉, each
// handing out half of what is left, down to single items, unless a chunk
// comes back within 200µs (then Python's size throughout); for Imap, a size that
// starts at 1 and doubles while chunks run in under 500µs, up to 1024.
func Chunksize(n int) CallOption {
	return func(c *callConfig) { c.chunksize = n }
}

// KeepGoing makes a Map (or MapAsync, or ForEach) run every item however
// many fail, as conc's iter.MapErr: it returns all the results, the zero
// value at each item that failed, and the errors of all the items that
// failed, joined (errors.Join) in input order, each a [*TaskError]. Without
// it, a call ends at its first error and returns no results. Faults that
// are not an item's own (a cancelled context, a terminated pool, a worker
// lost past its retries) still end the call. With Imap and
// ImapUnordered, each failed item's error is yielded at its place instead,
// and the sequence goes on.
func KeepGoing() CallOption {
	return func(c *callConfig) { c.keepGoing = true }
}

func newCallConfig(opts []CallOption) callConfig {
	var c callConfig
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	return c
}
