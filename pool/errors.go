package pool

import (
	"errors"
	"fmt"

	"github.com/mpgo/mp/internal/backend"
	"github.com/mpgo/mp/internal/codec"
)

// Sentinel errors, to be tested with [errors.Is].
var (
	// ErrClosed is returned by operations started after Close or Terminate.
	ErrClosed = backend.ErrClosed
	// ErrTerminated is returned by calls that were still running when the
	// pool was terminated.
	ErrTerminated = errors.New("pool: terminated")
	// ErrNotClosed is returned by Join on a pool that is neither closed nor
	// terminated: Join would wait forever.
	ErrNotClosed = backend.ErrNotClosed
	// ErrNotRegistered is returned when a backend that runs functions in
	// other processes is given a function that was not registered.
	ErrNotRegistered = errors.New("pool: function not registered")
	// ErrNotReady is returned by AsyncResult.Successful before the call has
	// finished.
	ErrNotReady = errors.New("pool: result not ready")
	// ErrNoWorkers is returned when a pool has lost every worker and cannot
	// run the remaining items.
	ErrNoWorkers = errors.New("pool: no workers left")
	// ErrConfig wraps every configuration error.
	ErrConfig = backend.ErrConfig
	// ErrEncoding is wrapped by the error of a call whose argument or
	// result cannot cross to a worker process as it is: a type the
	// contract rejects (see [Register]), a value in an interface whose type
	// is not registered (see [RegisterType]), an item larger than the
	// cluster's message limit. It comes in a [*TaskError] naming the item,
	// and its message names the field and the fix. Local pools give it too
	// when they check encoding (see [CheckEncoding]).
	ErrEncoding = codec.ErrEncoding
)

// A TaskError reports that the user function failed on one item. Err is the
// error the function returned, a [*PanicError] if it panicked, or the
// context's error if the function stopped because its context was
// cancelled.
type TaskError struct {
	Func  string // the function's fully qualified name, e.g. "main.sample"
	Index int    // the item's index in the input; 0 for Apply
	Err   error
}

func (e *TaskError) Error() string {
	return fmt.Sprintf("pool: %s failed on item %d: %v", e.Func, e.Index, e.Err)
}

func (e *TaskError) Unwrap() error { return e.Err }

// A PanicError is a panic recovered from a user function.
type PanicError struct {
	// Value is the value passed to panic. Backends that run functions in
	// other processes carry it as a string (fmt's %v of the value).
	Value any
	// Stack is the goroutine's stack at the panic, as debug.Stack prints it.
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// Unwrap returns the panic value if it is an error, so that errors.Is sees
// through a panic(err).
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

var configError = backend.ConfigError

var errNilSeq = errors.New("pool: nil iter.Seq")
