package backend

import (
	"fmt"
	"runtime"
	"testing"
)

// Config is the configuration shared by every backend, built by
// [NewConfig] from the options (pool.Option values) given to the
// backend's constructor.
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
	// pool.CheckEncoding). Default: on in test binaries, off otherwise.
	CheckEncoding bool
	// Settings holds settings made by a backend's own options (for example
	// cluster addresses). A backend rejects settings it does not know.
	Settings []Setting
}

// A Setting is a setting that only one backend understands. Backend
// packages define their own types implementing it.
type Setting interface {
	// Backend names the backend the setting belongs to, e.g. "cluster".
	Backend() string
	// String describes the setting for error messages.
	String() string
}

// NewConfig applies opts (pool.Option values) over the defaults and
// validates the result.
func NewConfig[O ~func(*Config) error](opts []O) (Config, error) {
	c := Config{Workers: runtime.GOMAXPROCS(0), CheckEncoding: testing.Testing()}
	for _, o := range opts {
		if o == nil {
			return c, ConfigError("nil Option")
		}
		if err := o(&c); err != nil {
			return c, err
		}
	}
	return c, nil
}

// CheckBackend returns an error for the first setting in c.Settings that
// does not belong to the named backend.
func (c *Config) CheckBackend(name string) error {
	for _, s := range c.Settings {
		if s.Backend() != name {
			return ConfigError("option %s is for the %s backend, not %s", s, s.Backend(), name)
		}
	}
	return nil
}

// ConfigError returns an error wrapping ErrConfig with the formatted
// message.
func ConfigError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
}
