package codec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// Errors cross as their message, plus what makes errors.Is and errors.As
// hold on the other side: the names of the registered sentinel values the
// error wraps, and the values in its chain whose types are registered error
// types (encoded with their type, as values in interfaces are).

var errs struct {
	mu        sync.RWMutex
	sentinels map[string]error // by errorName
	types     map[reflect.Type]bool
}

func init() {
	errs.sentinels = map[string]error{}
	errs.types = map[reflect.Type]bool{}
	for _, err := range []error{context.Canceled, context.DeadlineExceeded, ErrEncoding} {
		if err := RegisterError(err); err != nil {
			panic(err)
		}
	}
}

// sentinelName names a sentinel by its type and message: both ends are the
// same program, and two sentinels alike in both cannot be told apart.
func sentinelName(err error) string {
	return TypeName(reflect.TypeOf(err)) + ": " + err.Error()
}

// RegisterError lets err, a sentinel error value, keep its identity when it
// crosses: an error that wraps it on one side wraps it on the other.
// Registering it again does nothing.
func RegisterError(err error) error {
	if err == nil {
		return errors.New("nil error")
	}
	if !reflect.TypeOf(err).Comparable() {
		return fmt.Errorf("%v is not comparable, so it is not a sentinel: register its type instead", reflect.TypeOf(err))
	}
	name := sentinelName(err)
	errs.mu.Lock()
	defer errs.mu.Unlock()
	if old, ok := errs.sentinels[name]; ok && old != err {
		return fmt.Errorf("two different errors are %q, of type %v: they could not be told apart", err.Error(), reflect.TypeOf(err))
	}
	errs.sentinels[name] = err
	return nil
}

// RegisterErrorType lets errors of type t (an error type that crosses, see
// Check) cross with their type and fields: errors.As finds them on the
// other side. A pointer type's element type is registered.
func RegisterErrorType(t reflect.Type) error {
	if !t.Implements(errorType) {
		return fmt.Errorf("%v does not implement error", t)
	}
	base := t
	if t.Kind() == reflect.Pointer {
		base = t.Elem()
	}
	if err := RegisterType(base); err != nil {
		return err
	}
	errs.mu.Lock()
	errs.types[t] = true
	errs.mu.Unlock()
	return nil
}

// EncodeError returns what err needs, beyond its message, to keep its
// identity: the names of the registered sentinels it wraps, and its chain's
// values of registered error types, encoded (nil if there are none).
func EncodeError(err error) (names []string, typed []byte) {
	errs.mu.RLock()
	for name, s := range errs.sentinels {
		if errors.Is(err, s) {
			names = append(names, name)
		}
	}
	var values []any
	walkChain(err, func(e error) {
		if errs.types[reflect.TypeOf(e)] {
			values = append(values, e)
		}
	})
	errs.mu.RUnlock()
	if len(values) > 0 {
		var buf bytes.Buffer
		enc := msgpack.NewEncoder(&buf)
		enc.UseCompactInts(true)
		if EncodeSlice(enc, values) == nil {
			typed = buf.Bytes()
		}
	}
	return names, typed
}

// walkChain calls f on err and every error it wraps.
func walkChain(err error, f func(error)) {
	for depth := 0; err != nil && depth < 100; depth++ {
		f(err)
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walkChain(e, f)
			}
			return
		default:
			return
		}
	}
}

// DecodeError rebuilds an error from its message and what EncodeError
// gave: an error with that message that wraps the named sentinels and the
// typed values, or a plain error if there are none. Names and values this
// process does not know are left out.
func DecodeError(msg string, names []string, typed []byte) error {
	var wrapped []error
	errs.mu.RLock()
	for _, n := range names {
		if s, ok := errs.sentinels[n]; ok {
			wrapped = append(wrapped, s)
		}
	}
	errs.mu.RUnlock()
	if len(typed) > 0 {
		var values []any
		if DecodeBytes(typed, &values) == nil {
			for _, v := range values {
				if e, ok := v.(error); ok {
					wrapped = append(wrapped, e)
				}
			}
		}
	}
	if len(wrapped) == 0 {
		return errors.New(msg)
	}
	return &remoteError{msg: msg, wrapped: wrapped}
}

// remoteError is an error from another process that kept its identity.
type remoteError struct {
	msg     string
	wrapped []error
}

func (e *remoteError) Error() string   { return e.msg }
func (e *remoteError) Unwrap() []error { return e.wrapped }
