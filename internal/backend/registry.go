package backend

import (
	"context"
	"fmt"
	"sync"
)

// A Func is a registered function as backends see it: a name, and the
// means to decode its arguments into a typed slice and run them. Package
// pool registers them; the cluster's workers find them with [Lookup].
type Func struct {
	name string
	impl FuncImpl
}

// FuncImpl is a registered function's typed part, implemented by package
// pool.
type FuncImpl interface {
	NewArgs() any
	Run(ctx context.Context, name string, args any) (results any, err error)
}

// NewFunc returns the Func named name.
func NewFunc(name string, impl FuncImpl) *Func { return &Func{name: name, impl: impl} }

// Name returns the function's fully qualified name, e.g. "main.sample".
func (f *Func) Name() string { return f.name }

// NewArgs returns a pointer to an empty []T, where T is the function's
// argument type, for a decoder to fill.
func (f *Func) NewArgs() any { return f.impl.NewArgs() }

// Run calls the function on each element of args, which must be a []T or
// *[]T, and returns the results as a []R. It stops at the first error or
// panic and returns the results computed before it, and a *pool.TaskError
// whose Index is the failing element's position in args.
func (f *Func) Run(ctx context.Context, args any) (results any, err error) {
	return f.impl.Run(ctx, f.name, args)
}

var reg = struct {
	mu     sync.RWMutex
	byName map[string]*Func
	inits  map[string]func() error
}{byName: map[string]*Func{}, inits: map[string]func() error{}}

// Register records f under its name, for Lookup. Package pool checks
// names and duplicates before.
func Register(f *Func) {
	reg.mu.Lock()
	reg.byName[f.name] = f
	reg.mu.Unlock()
}

// Lookup returns the function registered under name.
func Lookup(name string) (*Func, bool) {
	reg.mu.RLock()
	defer reg.mu.RUnlock()
	f, ok := reg.byName[name]
	return f, ok
}

// RegisterInitializer records fn, a worker initializer, under name.
func RegisterInitializer(name string, fn func() error) {
	reg.mu.Lock()
	reg.inits[name] = fn
	reg.mu.Unlock()
}

// LookupInitializer returns the initializer function named name, recorded
// when a pool.Initializer option naming it was built in this process.
func LookupInitializer(name string) (func() error, bool) {
	reg.mu.RLock()
	defer reg.mu.RUnlock()
	f, ok := reg.inits[name]
	return f, ok
}

// RunInitializer runs a worker's initializer fn, named name, as backends
// do before a worker's first task: a nil fn does nothing; an error is
// wrapped and a panic becomes an error, both naming the initializer.
func RunInitializer(name string, fn func() error) (err error) {
	if fn == nil {
		return nil
	}
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("pool: initializer %s panicked: %v", name, v)
		}
	}()
	if err := fn(); err != nil {
		return fmt.Errorf("pool: initializer %s: %w", name, err)
	}
	return nil
}
