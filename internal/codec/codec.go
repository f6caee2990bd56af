// Package codec encodes the arguments and results of pool functions for the
// cluster's wire, and states what crosses it faithfully.
//
// It writes msgpack (so that every message stays a sequence of msgpack
// values, as internal/wire/spec.md requires) but with the Go types in mind,
// both ends being the same program: a struct is an array of its fields in
// declaration order; a nil slice or map stays nil and an empty one empty;
// a value in an interface-typed field travels with its registered type name
// and comes back as that type; a time.Time keeps its instant and its zone's
// name and offset. Types with their own marshalling (msgpack's
// CustomEncoder or Marshaler, encoding.BinaryMarshaler or TextMarshaler) are
// encoded by it.
//
// [Check] walks a type and rejects what cannot cross faithfully (channels,
// functions, unsafe pointers, unexported fields) before anything runs; the
// encoders and decoders never panic, and every error wraps [ErrEncoding]
// and names the field where it happened.
//
// Encoders and decoders are compiled once per type, by reflection, and
// cached. Slices of the common scalar types, and of structs whose fields
// are all scalars, take fast paths ([AppendItems], [DecodeFast]) that
// write and read the same bytes straight between the slice and a buffer.
package codec

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// ErrEncoding is wrapped by every error of this package: a value that
// cannot be encoded, or bytes that do not decode into the wanted type.
var ErrEncoding = errors.New("pool: cannot encode or decode a value")

// maxDepth bounds how deeply values nest when encoded (a cycle of pointers
// would otherwise never end); the wire's scanner accepts the same depth.
const maxDepth = 10000

// A PathError is an encoding error at a place inside a value: Path is the
// way to it from the item, as Go would write it (".Stats.D", "[3]", "[key]").
type PathError struct {
	Path string
	Err  error
}

func (e *PathError) Error() string {
	if e.Path == "" {
		return e.Err.Error()
	}
	return fmt.Sprintf("at %s: %v", e.Path, e.Err)
}

func (e *PathError) Unwrap() error { return e.Err }

// An ItemError is an encoding error in the item at Index of a slice.
type ItemError struct {
	Index int
	Err   error
}

func (e *ItemError) Error() string { return fmt.Sprintf("item %d: %v", e.Index, e.Err) }

func (e *ItemError) Unwrap() error { return e.Err }

// at prefixes seg to the path of err.
func at(seg string, err error) error {
	var pe *PathError
	if errors.As(err, &pe) {
		pe.Path = seg + pe.Path
		return err
	}
	return &PathError{Path: seg, Err: err}
}

func errorf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrEncoding, fmt.Sprintf(format, args...))
}

// ---- type names, for values in interfaces ----

var names struct {
	mu     sync.RWMutex
	byName map[string]reflect.Type
	byType map[reflect.Type]string
}

func init() {
	names.byName = map[string]reflect.Type{}
	names.byType = map[reflect.Type]string{}
	for _, v := range []any{
		false, 0, int8(0), int16(0), int32(0), int64(0),
		uint(0), uint8(0), uint16(0), uint32(0), uint64(0), uintptr(0),
		float32(0), float64(0), complex64(0), complex128(0), "",
		[]byte(nil), []any(nil), map[string]any(nil), []string(nil), []int(nil),
		[]int64(nil), []float64(nil), map[string]string(nil), map[string]int(nil),
		time.Time{}, time.Duration(0),
	} {
		if err := RegisterType(reflect.TypeOf(v)); err != nil {
			panic(err)
		}
	}
}

// TypeName is the name a type travels under inside an interface: the
// package path and name of a named type ("time.Duration",
// "example.com/m.Point"), or the type as written for others ("[]int").
func TypeName(t reflect.Type) string {
	if t.Name() != "" && t.PkgPath() != "" {
		return t.PkgPath() + "." + t.Name()
	}
	return t.String()
}

// RegisterType lets values of type t cross inside interface-typed fields
// (and in `any`) with their type. t must be a concrete type that passes
// [Check]. Registering a type again does nothing.
func RegisterType(t reflect.Type) error {
	if t == nil || t.Kind() == reflect.Interface {
		return fmt.Errorf("%w: only concrete types can be registered, not %v", ErrEncoding, t)
	}
	if err := Check(t); err != nil {
		return err
	}
	name := TypeName(t)
	names.mu.Lock()
	defer names.mu.Unlock()
	if old, ok := names.byName[name]; ok {
		if old == t {
			return nil
		}
		return fmt.Errorf("%w: two different types are named %s", ErrEncoding, name)
	}
	names.byName[name] = t
	names.byType[t] = name
	return nil
}

// nameOf returns the name t was registered under: pointers to registered
// types are known as "*" and the name.
func nameOf(t reflect.Type) (string, bool) {
	names.mu.RLock()
	defer names.mu.RUnlock()
	if n, ok := names.byType[t]; ok {
		return n, true
	}
	if t.Kind() == reflect.Pointer {
		if n, ok := names.byType[t.Elem()]; ok {
			return "*" + n, true
		}
	}
	return "", false
}

func typeNamed(name string) (reflect.Type, bool) {
	names.mu.RLock()
	defer names.mu.RUnlock()
	if t, ok := names.byName[name]; ok {
		return t, true
	}
	if base, ok := strings.CutPrefix(name, "*"); ok {
		if t, ok := names.byName[base]; ok {
			return reflect.PointerTo(t), true
		}
	}
	return nil, false
}

// implemented reports whether a registered type implements iface.
func implemented(iface reflect.Type) bool {
	names.mu.RLock()
	defer names.mu.RUnlock()
	for t := range names.byType {
		if t.Implements(iface) || reflect.PointerTo(t).Implements(iface) {
			return true
		}
	}
	return false
}

// ---- the contract ----

var (
	timeType    = reflect.TypeFor[time.Time]()
	errorType   = reflect.TypeFor[error]()
	customEnc   = reflect.TypeFor[msgpack.CustomEncoder]()
	customDec   = reflect.TypeFor[msgpack.CustomDecoder]()
	marshaler   = reflect.TypeFor[msgpack.Marshaler]()
	unmarshaler = reflect.TypeFor[msgpack.Unmarshaler]()
	binMarsh    = reflect.TypeFor[encoding.BinaryMarshaler]()
	binUnmarsh  = reflect.TypeFor[encoding.BinaryUnmarshaler]()
	textMarsh   = reflect.TypeFor[encoding.TextMarshaler]()
	textUnmarsh = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// marshalled reports whether t (or *t) encodes and decodes itself.
func marshalled(t reflect.Type) bool {
	both := func(e, d reflect.Type) bool {
		pt := reflect.PointerTo(t)
		return (t.Implements(e) || pt.Implements(e)) && pt.Implements(d)
	}
	return both(customEnc, customDec) || both(marshaler, unmarshaler) ||
		both(binMarsh, binUnmarsh) || both(textMarsh, textUnmarsh)
}

// Check reports whether values of type t cross faithfully: it returns an
// error naming the first field that cannot, and how to fix it. Channels,
// functions, unsafe pointers and unexported struct fields cannot (unless a
// field is tagged `msgpack:"-"`, which leaves it out, or its type marshals
// itself). Interface-typed fields can, for registered concrete types; see
// [CheckInterfaces].
func Check(t reflect.Type) error {
	return walk(t, func(reflect.Type) error { return nil })
}

// CheckInterfaces is [Check], and also rejects an interface type inside t
// that no registered type implements.
func CheckInterfaces(t reflect.Type) error {
	return walk(t, func(it reflect.Type) error {
		if it == errorType || implemented(it) {
			return nil
		}
		return errorf("no registered type implements %v; register the concrete types it holds with pool.RegisterType[T]()", it)
	})
}

func walk(t reflect.Type, iface func(reflect.Type) error) error {
	seen := map[reflect.Type]bool{}
	var visit func(t reflect.Type) error
	visit = func(t reflect.Type) error {
		if seen[t] {
			return nil
		}
		seen[t] = true
		if t == timeType || marshalled(t) {
			return nil
		}
		switch t.Kind() {
		case reflect.Chan, reflect.Func, reflect.UnsafePointer:
			return errorf("%v is a %s, which cannot cross to another process", t, t.Kind())
		case reflect.Interface:
			return iface(t)
		case reflect.Pointer, reflect.Slice, reflect.Array:
			if err := visit(t.Elem()); err != nil {
				return at(elemSeg(t), err)
			}
		case reflect.Map:
			if err := visit(t.Key()); err != nil {
				return at("[key]", err)
			}
			if err := visit(t.Elem()); err != nil {
				return at("[value]", err)
			}
		case reflect.Struct:
			for i := range t.NumField() {
				f := t.Field(i)
				if skipped(f) {
					continue
				}
				if !f.IsExported() {
					return &PathError{Path: "." + f.Name, Err: errorf("%v has the unexported field %s, which would arrive as its zero value; export it, tag it `msgpack:\"-\"` to leave it out, or give %v its own marshalling (MarshalBinary and UnmarshalBinary)", t, f.Name, t)}
				}
				if err := visit(f.Type); err != nil {
					return at("."+f.Name, err)
				}
			}
		}
		return nil
	}
	return visit(t)
}

func elemSeg(t reflect.Type) string {
	if t.Kind() == reflect.Pointer {
		return "(*)"
	}
	return "[i]"
}

// skipped reports whether a struct field is left out: tagged `msgpack:"-"`.
func skipped(f reflect.StructField) bool {
	return f.Tag.Get("msgpack") == "-"
}
