package pool

import (
	"context"
	"fmt"
	"reflect"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/mpgo/mp/internal/backend"
	"github.com/mpgo/mp/internal/codec"
)

// regFunc is a registered function: its backend.Func, by which workers
// run it, and what the operations need to know of it.
type regFunc struct {
	f       *backend.Func
	ptr     uintptr
	in, out reflect.Type
	checked atomic.Bool // contract passed
}

// contract checks, once it passes, that every interface type in the
// function's argument and result has a registered implementation: types
// are registered in init functions, perhaps after the function, so this is
// checked when the function is first called on a pool that encodes.
func (f *regFunc) contract() error {
	if f.checked.Load() {
		return nil
	}
	if err := codec.CheckInterfaces(f.in); err != nil {
		return fmt.Errorf("%w: the argument type of %s: %w", ErrEncoding, f.f.Name(), err)
	}
	if err := codec.CheckInterfaces(f.out); err != nil {
		return fmt.Errorf("%w: the result type of %s: %w", ErrEncoding, f.f.Name(), err)
	}
	f.checked.Store(true)
	return nil
}

type registry struct {
	mu     sync.RWMutex
	byName map[string]*regFunc
	byPtr  map[uintptr]*regFunc
}

var reg = registry{
	byName: map[string]*regFunc{},
	byPtr:  map[uintptr]*regFunc{},
}

// Register records fn under its fully qualified name (for example
// "main.sample") so that the cluster backend's workers can run it. Call it
// from an init function or a package-level variable declaration, so that it
// has run in every process before the pool starts. Registering the same
// function again does nothing, so that two packages may both register a
// function they share. Local pools do not need registration.
//
// It checks the type contract: T and R must cross to another process and
// come back as they were. It returns an error, naming the field and the
// fix, for channels, functions and unsafe pointers, and for unexported
// struct fields (which would arrive as zero values) unless the field is
// tagged `msgpack:"-"` or its type marshals itself (MarshalBinary and
// UnmarshalBinary, MarshalText and UnmarshalText, or msgpack's own
// interfaces). Values in interface-typed fields cross with their type when
// it is registered with [RegisterType]. It also returns an error for a nil
// function, a closure or method value (they carry state that cannot cross
// a process boundary), and for a different function under a name already
// registered.
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

// RegisterEach is [Register] for functions with no result, run by
// [ForEach].
func RegisterEach[T any](fn func(T)) error {
	if fn == nil {
		return fmt.Errorf("pool.RegisterEach: nil function")
	}
	return register(fn, each[T](fn))
}

// RegisterEachErr is [RegisterEach] for functions that return an error.
func RegisterEachErr[T any](fn func(T) error) error {
	if fn == nil {
		return fmt.Errorf("pool.RegisterEachErr: nil function")
	}
	return register(fn, each[T](fn))
}

// RegisterEachCtx is [RegisterEach] for functions that take a context.
func RegisterEachCtx[T any](fn func(context.Context, T) error) error {
	if fn == nil {
		return fmt.Errorf("pool.RegisterEachCtx: nil function")
	}
	return register(fn, each[T](fn))
}

// MustRegisterEach is like [RegisterEach] but panics on error.
func MustRegisterEach[T any](fn func(T)) {
	if err := RegisterEach(fn); err != nil {
		panic(err)
	}
}

// MustRegisterEachErr is like [RegisterEachErr] but panics on error.
func MustRegisterEachErr[T any](fn func(T) error) {
	if err := RegisterEachErr(fn); err != nil {
		panic(err)
	}
}

// MustRegisterEachCtx is like [RegisterEachCtx] but panics on error.
func MustRegisterEachCtx[T any](fn func(context.Context, T) error) {
	if err := RegisterEachCtx(fn); err != nil {
		panic(err)
	}
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
	if err := codec.Check(reflect.TypeFor[T]()); err != nil {
		return fmt.Errorf("pool.Register: the argument type of %s cannot cross to another process: %w", name, err)
	}
	if err := codec.Check(reflect.TypeFor[R]()); err != nil {
		return fmt.Errorf("pool.Register: the result type of %s cannot cross to another process: %w", name, err)
	}
	reg.mu.Lock()
	defer reg.mu.Unlock()
	if old, dup := reg.byName[name]; dup {
		if old.ptr == ptr {
			return nil
		}
		return fmt.Errorf("pool.Register: a different function is already registered as %s", name)
	}
	f := &regFunc{f: backend.NewFunc(name, t), ptr: ptr, in: reflect.TypeFor[T](), out: reflect.TypeFor[R]()}
	reg.byName[name] = f
	reg.byPtr[ptr] = f
	backend.Register(f.f)
	return nil
}

// RegisterType lets values of type T cross to worker processes inside
// interface-typed fields and in `any` with their type: without it, such a
// value fails the call with [ErrEncoding]. The common types need no
// registration: bool, the integer, float and complex types, string,
// []byte, []any, map[string]any, []string, []int, []int64, []float64,
// map[string]string, map[string]int, time.Time and time.Duration; a
// pointer to a registered type crosses too. Call it from an init function,
// as [Register]. T must be a concrete type that crosses (see [Register]);
// registering it again does nothing.
func RegisterType[T any]() error {
	t := reflect.TypeFor[T]()
	if err := codec.RegisterType(t); err != nil {
		return fmt.Errorf("pool.RegisterType[%v]: %w", t, err)
	}
	return nil
}

// MustRegisterType is like [RegisterType] but panics on error.
func MustRegisterType[T any]() {
	if err := RegisterType[T](); err != nil {
		panic(err)
	}
}

// RegisterError lets err, a sentinel error value such as
// `var ErrNotFound = errors.New("not found")`, keep its identity on the
// cluster: when a function's error wraps it (returns it, or
// fmt.Errorf("…: %w", ErrNotFound)), errors.Is(callErr, ErrNotFound) holds
// for the caller as on a local pool. Other errors cross as their message.
// context.Canceled, context.DeadlineExceeded and ErrEncoding need no
// registration. Call it from an init function; registering it again does
// nothing. Two different errors of the same type and message cannot both be
// registered.
func RegisterError(err error) error {
	if err := codec.RegisterError(err); err != nil {
		return fmt.Errorf("pool.RegisterError: %w", err)
	}
	return nil
}

// MustRegisterError is like [RegisterError] but panics on error.
func MustRegisterError(err error) {
	if err := RegisterError(err); err != nil {
		panic(err)
	}
}

// RegisterErrorType lets errors of type E (such as *MyError, with exported
// fields) cross to the caller with their type and fields, wherever they are
// in a function's error chain: errors.As finds them on the cluster as on a
// local pool. E's fields must cross (see [Register]).
func RegisterErrorType[E error]() error {
	t := reflect.TypeFor[E]()
	if err := codec.RegisterErrorType(t); err != nil {
		return fmt.Errorf("pool.RegisterErrorType[%v]: %w", t, err)
	}
	return nil
}

// MustRegisterErrorType is like [RegisterErrorType] but panics on error.
func MustRegisterErrorType[E error]() {
	if err := RegisterErrorType[E](); err != nil {
		panic(err)
	}
}

func registerInitializer(name string, fn func() error) {
	backend.RegisterInitializer(name, fn)
}

// isRegistered reports whether the function at ptr is registered.
func isRegistered(ptr uintptr) bool {
	reg.mu.RLock()
	defer reg.mu.RUnlock()
	_, ok := reg.byPtr[ptr]
	return ok
}

// registered returns the registration of the function at ptr, or an error
// naming the function and the line to add.
func registered(fnv any, ptr uintptr, shape string) (*regFunc, error) {
	reg.mu.RLock()
	f, ok := reg.byPtr[ptr]
	reg.mu.RUnlock()
	if ok {
		return f, nil
	}
	name := nameOfPC(ptr)
	wrap := "; wrap it in a top-level function of your own package and register that in an init function"
	switch why := notTopLevel(name); {
	case strings.HasPrefix(why, "an instantiated generic"):
		return nil, fmt.Errorf("%w: %s is %s, which cannot be registered by name%s", ErrNotRegistered, name, why, wrap)
	case why != "":
		return nil, fmt.Errorf("%w: %s is %s, which cannot run in another process; use a top-level function and register it", ErrNotRegistered, name, why)
	case !inMainModule(name):
		return nil, fmt.Errorf("%w: %s belongs to another module%s", ErrNotRegistered, name, wrap)
	}
	return nil, fmt.Errorf("%w: %s; add `pool.Must%s(%s)` to an init function of its package", ErrNotRegistered, name, shape, shortName(name))
}

// inMainModule reports whether the function named name belongs to the
// program's own module (or to package main), where the user can add a
// registration next to it.
func inMainModule(name string) bool {
	pkg := pkgOf(name)
	if pkg == "main" || strings.HasSuffix(pkg, ".test") {
		return true
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok || bi.Main.Path == "" {
		return strings.Contains(strings.Split(pkg, "/")[0], ".")
	}
	return pkg == bi.Main.Path || strings.HasPrefix(pkg, bi.Main.Path+"/")
}

// pkgOf returns the package path of the function named name.
func pkgOf(name string) string {
	slash := strings.LastIndex(name, "/")
	dot := strings.Index(name[slash+1:], ".")
	if dot < 0 {
		return name
	}
	return name[:slash+1+dot]
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
	case isClosureName(base[strings.Index(base, ".")+1:]):
		return "a closure (a function literal)"
	case strings.Contains(base, "["):
		return "an instantiated generic function"
	}
	return ""
}

// isClosureName reports whether rest, a function's name after its
// package, is a function literal's ("outer.func1", "outer.gowrap2"), as
// opposed to a top-level function that happens to be called func2.
func isClosureName(rest string) bool {
	for _, marker := range []string{".func", ".gowrap"} {
		for i := strings.Index(rest, marker); i >= 0; {
			j := i + len(marker)
			if j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
				return true
			}
			k := strings.Index(rest[j:], marker)
			if k < 0 {
				break
			}
			i = j + k
		}
	}
	return false
}

func shortName(name string) string {
	base := name[strings.LastIndex(name, "/")+1:]
	if i := strings.Index(base, "."); i >= 0 {
		return base[i+1:]
	}
	return base
}
