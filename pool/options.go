package pool

import (
	"runtime"
	"testing"
)

// Config is the configuration shared by every backend. Backends build it
// with [NewConfig] from the options their constructor was given.
type Config struct {
	// Workers is how many items the pool runs at once: goroutines for the
	// local backend, worker processes started on this machine for the
	// cluster (with poolworkers, whose -capacity sets their share, a cap on
	// the chunks in flight across the cluster). Default:
	// runtime.GOMAXPROCS(0), the CPUs available.
	Workers int
	// WorkersSet reports whether the Workers option was given, so that a
	// backend whose capacity comes from elsewhere (the cluster's
	// poolworkers) can tell a cap the user asked for from the default.
	WorkersSet bool
	// Initializer, if set, runs once in each worker before its first task,
	// and again after the worker is recycled by MaxTasksPerWorker. If it
	// fails, the tasks given to that worker fail with its error.
	Initializer func() error
	// InitializerName is the fully qualified name of Initializer, by which
	// remote workers find it.
	InitializerName string
	// MaxTasksPerWorker, if positive, recycles a worker after it has run
	// that many tasks (chunks): the local backend reruns the initializer,
	// the cluster backend replaces the worker process. 0 means never.
	MaxTasksPerWorker int
	// CheckEncoding makes a local pool pass the arguments and results of
	// registered functions through the cluster's encoding (see
	// [CheckEncoding]). Default: on in test binaries, off otherwise.
	CheckEncoding bool
	// Backend holds settings made by a backend's own options (for example
	// cluster addresses). A backend rejects settings it does not know.
	Backend []BackendSetting
}

// A BackendSetting is a setting that only one backend understands. Backend
// packages define their own types implementing it.
type BackendSetting interface {
	// Backend names the backend the setting belongs to, e.g. "cluster".
	Backend() string
	// String describes the setting for error messages.
	String() string
}

// An Option configures a pool. The same options are accepted by every
// backend's constructor.
type Option func(*Config) error

// Workers sets how many items the pool runs at once. n must be at least 1.
func Workers(n int) Option {
	return func(c *Config) error {
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
	return func(c *Config) error {
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
	return func(c *Config) error {
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
// a decoding of every item (about 17 ns an int and 120 ns a small struct:
// BenchmarkRoundTrip* in internal/codec). Functions that are not
// registered are never checked: they cannot run on a cluster. The cluster
// backend always encodes and ignores it.
func CheckEncoding(on bool) Option {
	return func(c *Config) error {
		c.CheckEncoding = on
		return nil
	}
}

// WithBackend returns an option carrying a backend-specific setting. Backend
// packages use it to build their own options.
func WithBackend(s BackendSetting) Option {
	return func(c *Config) error {
		c.Backend = append(c.Backend, s)
		return nil
	}
}

// NewConfig applies opts over the defaults and validates the result.
func NewConfig(opts ...Option) (Config, error) {
	c := Config{Workers: runtime.GOMAXPROCS(0), CheckEncoding: testing.Testing()}
	for _, o := range opts {
		if o == nil {
			return c, configError("nil Option")
		}
		if err := o(&c); err != nil {
			return c, err
		}
	}
	return c, nil
}

// CheckBackend returns an error for the first setting in c.Backend that does
// not belong to the named backend.
func (c *Config) CheckBackend(name string) error {
	for _, s := range c.Backend {
		if s.Backend() != name {
			return configError("option %s is for the %s backend, not %s", s, s.Backend(), name)
		}
	}
	return nil
}

// A CallOption configures one call.
type CallOption func(*callConfig)

type callConfig struct {
	chunksize int
	keepGoing bool
	progress  func(done, total int)
}

// Chunksize sets how many items travel to a worker together. Larger chunks
// cost less per item; smaller ones balance uneven items better. n < 1 means
// the default: for Map, ⌈remaining/(4×workers)⌉, Python's ⌈len/(4×workers)⌉
// for the first chunk and shrinking after it until a chunk comes back
// within 200µs (then Python's size throughout); for Imap, a size that
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
// lost past its retries) still end the call. Imap does not take it.
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
