package pool

import (
	"context"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"sync"
)

// A Func is a registered function as backends see it: a name, and the means
// to decode its arguments into a typed slice and run them. Programs do not
// use Func directly; the cluster backend's workers find functions with
// [Lookup].
type Func struct {
	name string
	ptr  uintptr
	impl remoteFunc
}

// remoteFunc is the typed part of a registered function.
type remoteFunc interface {
	newArgs() any
	run(ctx context.Context, name string, args any) (results any, err error)
}

// Name returns the function's fully qualified name, e.g. "main.sample".
func (f *Func) Name() string { return f.name }

// NewArgs returns a pointer to an empty []T, where T is the function's
// argument type, for a decoder to fill.
func (f *Func) NewArgs() any { return f.impl.newArgs() }

// Run calls the function on each element of args, which must be a []T, and
// returns the results as a []R. It stops at the first error or panic and
// returns the results computed before it, and a [*TaskError] whose Index is
// the failing element's position in args.
func (f *Func) Run(ctx context.Context, args any) (results any, err error) {
	return f.impl.run(ctx, f.name, args)
}

type registry struct {
	mu     sync.RWMutex
	byName map[string]*Func
	byPtr  map[uintptr]*Func
	inits  map[string]func() error
}

var reg = registry{
	byName: map[string]*Func{},
	byPtr:  map[uintptr]*Func{},
	inits:  map[string]func() error{},
}

// Register records fn under its fully qualified name (for example
// "main.sample") so that the cluster backend's workers can run it. Call it
// from an init function or a package-level variable declaration, so that it
// has run in every process before the pool starts. It returns an error for a
// nil function, a closure or method value (they carry state that cannot
// cross a process boundary), or a name registered twice. Local pools do not
// need registration.
func Register[T, R any](fn func(T) R) error {
	if fn == nil {
		return fmt.Errorf("pool.Register: nil function")
	}
	return register(fn, typed[T, R]{plain: fn})
}

// RegisterErr is [Register] for functions that return an error.
func RegisterErr[T, R any](fn func(T) (R, error)) error {
	if fn == nil {
		return fmt.Errorf("pool.RegisterErr: nil function")
	}
	return register(fn, typed[T, R]{errf: fn})
}

// RegisterCtx is [Register] for functions that take a context.
func RegisterCtx[T, R any](fn func(context.Context, T) (R, error)) error {
	if fn == nil {
		return fmt.Errorf("pool.RegisterCtx: nil function")
	}
	return register(fn, typed[T, R]{ctxf: fn})
}

// MustRegister is like [Register] but panics on error; it suits
// package-level variable declarations and init functions.
func MustRegister[T, R any](fn func(T) R) {
	if err := Register(fn); err != nil {
		panic(err)
	}
}

// MustRegisterErr is like [RegisterErr] but panics on error.
func MustRegisterErr[T, R any](fn func(T) (R, error)) {
	if err := RegisterErr(fn); err != nil {
		panic(err)
	}
}

// MustRegisterCtx is like [RegisterCtx] but panics on error.
func MustRegisterCtx[T, R any](fn func(context.Context, T) (R, error)) {
	if err := RegisterCtx(fn); err != nil {
		panic(err)
	}
}

func register[T, R any](fn any, t typed[T, R]) error {
	ptr := reflect.ValueOf(fn).Pointer()
	name := nameOfPC(ptr)
	if why := notTopLevel(name); why != "" {
		return fmt.Errorf("pool.Register: %s is %s; only top-level functions can be registered, since other processes find them by name", name, why)
	}
	reg.mu.Lock()
	defer reg.mu.Unlock()
	if _, dup := reg.byName[name]; dup {
		return fmt.Errorf("pool.Register: %s is already registered", name)
	}
	f := &Func{name: name, ptr: ptr, impl: t}
	reg.byName[name] = f
	reg.byPtr[ptr] = f
	return nil
}

// Lookup returns the function registered under name.
func Lookup(name string) (*Func, bool) {
	reg.mu.RLock()
	defer reg.mu.RUnlock()
	f, ok := reg.byName[name]
	return f, ok
}

// LookupInitializer returns the initializer function named name, recorded
// when an [Initializer] option naming it was built in this process.
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

func registerInitializer(name string, fn func() error) {
	reg.mu.Lock()
	reg.inits[name] = fn
	reg.mu.Unlock()
}

// registered returns the registration of the function at ptr, or an error
// naming the function and the line to add.
func registered(fnv any, ptr uintptr, shape string) (*Func, error) {
	reg.mu.RLock()
	f, ok := reg.byPtr[ptr]
	reg.mu.RUnlock()
	if ok {
		return f, nil
	}
	name := nameOfPC(ptr)
	if why := notTopLevel(name); why != "" {
		return nil, fmt.Errorf("%w: %s is %s, which cannot run in another process; use a top-level function and register it", ErrNotRegistered, name, why)
	}
	return nil, fmt.Errorf("%w: %s; add `pool.Must%s(%s)` to an init function of its package", ErrNotRegistered, name, shape, shortName(name))
}

func funcName(fn any) string {
	if fn == nil {
		return ""
	}
	v := reflect.ValueOf(fn)
	if v.Kind() != reflect.Func || v.IsNil() {
		return ""
	}
	return nameOfPC(v.Pointer())
}

func nameOfPC(pc uintptr) string {
	if f := runtime.FuncForPC(pc); f != nil {
		return f.Name()
	}
	return fmt.Sprintf("func@%#x", pc)
}

// notTopLevel says why the function named name is not a top-level function,
// or returns "" if it is one.
func notTopLevel(name string) string {
	base := name[strings.LastIndex(name, "/")+1:]
	switch {
	case strings.HasSuffix(base, "-fm"):
		return "a method value (it carries its receiver)"
	case strings.Contains(base, ".func") || strings.Contains(base, ".gowrap"):
		return "a closure (a function literal)"
	case strings.Contains(base, "["):
		return "an instantiated generic function"
	}
	return ""
}

func shortName(name string) string {
	base := name[strings.LastIndex(name, "/")+1:]
	if i := strings.Index(base, "."); i >= 0 {
		return base[i+1:]
	}
	return base
}
