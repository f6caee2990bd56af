package pool

import (
	"context"
	"fmt"
	"reflect"
	"runtime/debug"
	"sync/atomic"
)

// typed is a user function of one of the three shapes, with its types.
type typed[T, R any] struct {
	plain func(T) R
	errf  func(T) (R, error)
	ctxf  func(context.Context, T) (R, error)
	// For functions with no result (ForEach), the user's function, by
	// which the call is named and registered, and its Register function.
	orig any
	reg  string
}

// each adapts f, a function with no result of one of the three shapes, to
// one whose result is struct{} (nothing on the wire).
func each[T any](fn any) typed[T, struct{}] {
	var t typed[T, struct{}]
	switch f := fn.(type) {
	case func(T):
		if f != nil {
			t.plain, t.reg = func(x T) struct{} { f(x); return struct{}{} }, "RegisterEach"
		}
	case func(T) error:
		if f != nil {
			t.errf, t.reg = func(x T) (struct{}, error) { return struct{}{}, f(x) }, "RegisterEachErr"
		}
	case func(context.Context, T) error:
		if f != nil {
			t.ctxf, t.reg = func(ctx context.Context, x T) (struct{}, error) { return struct{}{}, f(ctx, x) }, "RegisterEachCtx"
		}
	}
	if t.reg != "" {
		t.orig = fn
	}
	return t
}

func (t typed[T, R]) value() any {
	if t.orig != nil {
		return t.orig
	}
	switch {
	case t.plain != nil:
		return t.plain
	case t.errf != nil:
		return t.errf
	}
	return t.ctxf
}

func (t typed[T, R]) shape() string {
	if t.reg != "" {
		return t.reg
	}
	switch {
	case t.plain != nil:
		return "Register"
	case t.errf != nil:
		return "RegisterErr"
	}
	return "RegisterCtx"
}

func (t typed[T, R]) ptr() uintptr { return reflect.ValueOf(t.value()).Pointer() }

// NewArgs and Run make a registered function's typed part a
// backend.FuncImpl.

func (t typed[T, R]) NewArgs() any { return new([]T) }

func (t typed[T, R]) Run(ctx context.Context, name string, args any) (any, error) {
	in, ok := args.([]T)
	if !ok {
		if p, ok2 := args.(*[]T); ok2 {
			in, ok = *p, true
		}
	}
	if !ok {
		var want []T
		return nil, fmt.Errorf("pool: %s takes %T, got %T", name, want, args)
	}
	out := make([]R, len(in))
	// Plain functions do not see ctx: stop between items once it is done.
	// One item needs no watch on ctx (the cost of a context.AfterFunc):
	// ctx is checked before it.
	stop := new(atomic.Bool)
	if len(in) > 1 {
		defer context.AfterFunc(ctx, func() { stop.Store(true) })()
	} else if ctx.Err() != nil {
		stop.Store(true)
	}
	n, err := t.runRange(ctx, stop, in, out)
	if err != nil {
		if te, ok := err.(*TaskError); ok {
			te.Func = name
		}
	}
	return out[:n], err
}

// runRange runs the function on in[i], storing out[i], until the end, the
// first error, or stop becoming true. It returns how many results it stored
// and the first error as a *TaskError indexed from 0 within in. A panic is
// recovered and becomes the error.
func (t typed[T, R]) runRange(ctx context.Context, stop *atomic.Bool, in []T, out []R) (n int, err error) {
	i := 0
	defer func() {
		if v := recover(); v != nil {
			n, err = i, &TaskError{Index: i, Err: &PanicError{Value: v, Stack: debug.Stack()}}
		}
	}()
	if stop == nil {
		stop = new(atomic.Bool)
	}
	switch {
	case t.plain != nil:
		f := t.plain
		for ; i < len(in); i++ {
			if stop.Load() {
				return i, errStopped
			}
			out[i] = f(in[i])
		}
	case t.errf != nil:
		f := t.errf
		for ; i < len(in); i++ {
			if stop.Load() {
				return i, errStopped
			}
			r, e := f(in[i])
			if e != nil {
				return i, &TaskError{Index: i, Err: e}
			}
			out[i] = r
		}
	default:
		f := t.ctxf
		for ; i < len(in); i++ {
			if stop.Load() {
				return i, errStopped
			}
			if e := ctx.Err(); e != nil {
				return i, &TaskError{Index: i, Err: e}
			}
			r, e := f(ctx, in[i])
			if e != nil {
				return i, &TaskError{Index: i, Err: e}
			}
			out[i] = r
		}
	}
	return i, nil
}

// errStopped marks a chunk abandoned because its call already ended.
var errStopped = fmt.Errorf("pool: call ended")

func (t typed[T, R]) check() error {
	if t.plain == nil && t.errf == nil && t.ctxf == nil {
		return fmt.Errorf("pool: nil function")
	}
	return nil
}
