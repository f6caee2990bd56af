package codec

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"sync"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// encFunc writes v. decFunc reads into v, which is settable.
type (
	encFunc func(e *msgpack.Encoder, v reflect.Value, depth int) error
	decFunc func(d *msgpack.Decoder, v reflect.Value, depth int) error
)

// codecs is the compiled encoder and decoder of one type. A recursive type
// refers to its own codecs through the pointer, filled in after compiling.
type codecs struct {
	enc encFunc
	dec decFunc
}

var cache sync.Map // reflect.Type → *codecs

// codecFor returns t's codecs, compiling them on first use.
func codecFor(t reflect.Type) *codecs {
	if c, ok := cache.Load(t); ok {
		return c.(*codecs)
	}
	building := map[reflect.Type]*codecs{}
	c := compile(t, building)
	for bt, bc := range building {
		cache.LoadOrStore(bt, bc)
	}
	return c
}

func compile(t reflect.Type, building map[reflect.Type]*codecs) *codecs {
	if c, ok := cache.Load(t); ok {
		return c.(*codecs)
	}
	if c, ok := building[t]; ok {
		return c
	}
	c := &codecs{}
	building[t] = c
	c.enc, c.dec = build(t, building)
	return c
}

func tooDeep() error {
	return errorf("values nested more than %d deep (a cycle of pointers?)", maxDepth)
}

var errorStringType = reflect.TypeOf(errors.New(""))

// isNil peeks for msgpack's nil, consuming it if present.
func isNil(d *msgpack.Decoder) (bool, error) {
	c, err := d.PeekCode()
	if err != nil {
		return false, err
	}
	if c == msgpcode.Nil {
		return true, d.DecodeNil()
	}
	return false, nil
}

func build(t reflect.Type, b map[reflect.Type]*codecs) (encFunc, decFunc) {
	switch {
	case t == timeType:
		return encTime, decTime
	case marshalled(t):
		return encMarshalled, decMarshalled
	}
	switch t.Kind() {
	case reflect.Bool:
		return func(e *msgpack.Encoder, v reflect.Value, _ int) error { return e.EncodeBool(v.Bool()) },
			func(d *msgpack.Decoder, v reflect.Value, _ int) error {
				x, err := d.DecodeBool()
				v.SetBool(x)
				return err
			}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return func(e *msgpack.Encoder, v reflect.Value, _ int) error { return e.EncodeInt(v.Int()) },
			func(d *msgpack.Decoder, v reflect.Value, _ int) error {
				x, err := decodeInt(d)
				if err != nil {
					return err
				}
				if v.OverflowInt(x) {
					return errorf("%d overflows %v", x, t)
				}
				v.SetInt(x)
				return nil
			}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return func(e *msgpack.Encoder, v reflect.Value, _ int) error { return e.EncodeUint(v.Uint()) },
			func(d *msgpack.Decoder, v reflect.Value, _ int) error {
				x, err := d.DecodeUint64()
				if err != nil {
					return err
				}
				if v.OverflowUint(x) {
					return errorf("%d overflows %v", x, t)
				}
				v.SetUint(x)
				return nil
			}
	case reflect.Float32:
		return func(e *msgpack.Encoder, v reflect.Value, _ int) error { return e.EncodeFloat32(float32(v.Float())) },
			func(d *msgpack.Decoder, v reflect.Value, _ int) error {
				x, err := d.DecodeFloat32()
				v.SetFloat(float64(x))
				return err
			}
	case reflect.Float64:
		return func(e *msgpack.Encoder, v reflect.Value, _ int) error { return e.EncodeFloat64(v.Float()) },
			func(d *msgpack.Decoder, v reflect.Value, _ int) error {
				x, err := d.DecodeFloat64()
				v.SetFloat(x)
				return err
			}
	case reflect.Complex64, reflect.Complex128:
		return encComplex, decComplex
	case reflect.String:
		return func(e *msgpack.Encoder, v reflect.Value, _ int) error { return e.EncodeString(v.String()) },
			func(d *msgpack.Decoder, v reflect.Value, _ int) error {
				x, err := d.DecodeString()
				v.SetString(x)
				return err
			}
	case reflect.Pointer:
		return buildPointer(t, b)
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 && !marshalled(t.Elem()) {
			return encBytes, decBytes
		}
		return buildSlice(t, b)
	case reflect.Array:
		return buildArray(t, b)
	case reflect.Map:
		return buildMap(t, b)
	case reflect.Struct:
		return buildStruct(t, b)
	case reflect.Interface:
		return encInterface, decInterface
	}
	err := Check(t)
	if err == nil {
		err = errorf("%v cannot cross to another process", t)
	}
	fail := func(*msgpack.Encoder, reflect.Value, int) error { return err }
	return fail, func(*msgpack.Decoder, reflect.Value, int) error { return err }
}

// decodeInt reads an integer that must fit an int64 (msgpack writes
// positive ones as unsigned).
func decodeInt(d *msgpack.Decoder) (int64, error) {
	c, err := d.PeekCode()
	if err != nil {
		return 0, err
	}
	if c == msgpcode.Uint64 {
		u, err := d.DecodeUint64()
		if err == nil && u > math.MaxInt64 {
			err = errorf("%d overflows int64", u)
		}
		return int64(u), err
	}
	return d.DecodeInt64()
}

func encTime(e *msgpack.Encoder, v reflect.Value, _ int) error {
	tm := v.Interface().(time.Time)
	name, offset := tm.Zone()
	if err := e.EncodeArrayLen(4); err != nil {
		return err
	}
	if err := e.EncodeInt(tm.Unix()); err != nil {
		return err
	}
	if err := e.EncodeInt(int64(tm.Nanosecond())); err != nil {
		return err
	}
	if tm.Location() == time.UTC {
		name = "" // UTC itself, not a zone that happens to be named UTC
	}
	if err := e.EncodeString(name); err != nil {
		return err
	}
	return e.EncodeInt(int64(offset))
}

func decTime(d *msgpack.Decoder, v reflect.Value, _ int) error {
	if n, err := d.DecodeArrayLen(); err != nil || n != 4 {
		return errorf("a time.Time is a 4-array, got %d items (%v)", n, err)
	}
	sec, err := d.DecodeInt64()
	if err != nil {
		return err
	}
	nsec, err := d.DecodeInt64()
	if err != nil {
		return err
	}
	name, err := d.DecodeString()
	if err != nil {
		return err
	}
	offset, err := d.DecodeInt64()
	if err != nil {
		return err
	}
	if nsec < 0 || nsec >= 1e9 || offset < -1e6 || offset > 1e6 {
		return errorf("a time.Time out of range")
	}
	tm := time.Unix(sec, nsec).UTC()
	if name != "" || offset != 0 {
		tm = tm.In(time.FixedZone(name, int(offset)))
	} else if sec == (time.Time{}).Unix() && nsec == 0 {
		tm = time.Time{}
	}
	v.Set(reflect.ValueOf(tm))
	return nil
}

// encMarshalled and decMarshalled hand a type with its own marshalling to
// msgpack, which calls its methods (through a pointer, so that pointer
// methods are found).
func encMarshalled(e *msgpack.Encoder, v reflect.Value, _ int) error {
	if !v.CanAddr() {
		p := reflect.New(v.Type())
		p.Elem().Set(v)
		v = p.Elem()
	}
	return e.EncodeValue(v.Addr())
}

func decMarshalled(d *msgpack.Decoder, v reflect.Value, _ int) error {
	return d.DecodeValue(v.Addr())
}

func encComplex(e *msgpack.Encoder, v reflect.Value, _ int) error {
	c := v.Complex()
	if err := e.EncodeArrayLen(2); err != nil {
		return err
	}
	if v.Kind() == reflect.Complex64 {
		if err := e.EncodeFloat32(float32(real(c))); err != nil {
			return err
		}
		return e.EncodeFloat32(float32(imag(c)))
	}
	if err := e.EncodeFloat64(real(c)); err != nil {
		return err
	}
	return e.EncodeFloat64(imag(c))
}

func decComplex(d *msgpack.Decoder, v reflect.Value, _ int) error {
	if n, err := d.DecodeArrayLen(); err != nil || n != 2 {
		return errorf("a complex number is a 2-array, got %d items (%v)", n, err)
	}
	re, err := d.DecodeFloat64()
	if err != nil {
		return err
	}
	im, err := d.DecodeFloat64()
	v.SetComplex(complex(re, im))
	return err
}

func encBytes(e *msgpack.Encoder, v reflect.Value, _ int) error {
	if v.IsNil() {
		return e.EncodeNil()
	}
	return e.EncodeBytes(v.Bytes())
}

func decBytes(d *msgpack.Decoder, v reflect.Value, _ int) error {
	if null, err := isNil(d); null || err != nil {
		v.SetZero()
		return err
	}
	b, err := d.DecodeBytes()
	if err != nil {
		return err
	}
	if b == nil {
		b = []byte{}
	}
	v.Set(reflect.ValueOf(b).Convert(v.Type()))
	return nil
}

func buildPointer(t reflect.Type, b map[reflect.Type]*codecs) (encFunc, decFunc) {
	ec := compile(t.Elem(), b)
	return func(e *msgpack.Encoder, v reflect.Value, depth int) error {
			if v.IsNil() {
				return e.EncodeNil()
			}
			if depth >= maxDepth {
				return tooDeep()
			}
			if err := ec.enc(e, v.Elem(), depth+1); err != nil {
				return at("(*)", err)
			}
			return nil
		}, func(d *msgpack.Decoder, v reflect.Value, depth int) error {
			if null, err := isNil(d); null || err != nil {
				v.SetZero()
				return err
			}
			if depth >= maxDepth {
				return tooDeep()
			}
			p := reflect.New(t.Elem())
			if err := ec.dec(d, p.Elem(), depth+1); err != nil {
				return at("(*)", err)
			}
			v.Set(p)
			return nil
		}
}

func buildSlice(t reflect.Type, b map[reflect.Type]*codecs) (encFunc, decFunc) {
	ec := compile(t.Elem(), b)
	return func(e *msgpack.Encoder, v reflect.Value, depth int) error {
			if v.IsNil() {
				return e.EncodeNil()
			}
			return encElems(e, ec, v, depth)
		}, func(d *msgpack.Decoder, v reflect.Value, depth int) error {
			if null, err := isNil(d); null || err != nil {
				v.SetZero()
				return err
			}
			n, err := d.DecodeArrayLen()
			if err != nil {
				return err
			}
			if depth >= maxDepth {
				return tooDeep()
			}
			s := reflect.New(t).Elem()
			s.Set(reflect.MakeSlice(t, 0, preallocate(n, t.Elem())))
			for i := range n {
				grow(s)
				if err := ec.dec(d, s.Index(i), depth+1); err != nil {
					return at(fmt.Sprintf("[%d]", i), err)
				}
			}
			v.Set(s)
			return nil
		}
}

// preallocBytes bounds the memory made for items before they are read: a
// length is only a claim until its items have decoded (every item takes a
// byte or more, so a false claim ends at the end of the input, after as
// many items). Within it, a slice is made whole at once, as a true claim
// deserves: growing it item by item cost a fifth of a Map of ints.
const preallocBytes = 4 << 20

// preallocate returns how many items of type t to make room for when n
// are claimed.
func preallocate(n int, t reflect.Type) int {
	return min(n, max(1024, preallocBytes/max(int(t.Size()), 1)))
}

// grow adds a zero item to s, an addressable slice. Within its capacity
// the item is zeroed: the room may hold values already (a backend decodes
// into the caller's results, where a lost attempt may have decoded before),
// and decoding into a map or a pointer would merge with them.
func grow(s reflect.Value) {
	if s.Len() == s.Cap() {
		s.Grow(1)
		s.SetLen(s.Len() + 1)
		return
	}
	s.SetLen(s.Len() + 1)
	s.Index(s.Len() - 1).SetZero()
}

func buildArray(t reflect.Type, b map[reflect.Type]*codecs) (encFunc, decFunc) {
	ec := compile(t.Elem(), b)
	return func(e *msgpack.Encoder, v reflect.Value, depth int) error {
			return encElems(e, ec, v, depth)
		}, func(d *msgpack.Decoder, v reflect.Value, depth int) error {
			n, err := d.DecodeArrayLen()
			if err != nil {
				return err
			}
			if n != t.Len() {
				return errorf("%v has %d items, got %d", t, t.Len(), n)
			}
			return decElems(d, ec, v, depth)
		}
}

func encElems(e *msgpack.Encoder, ec *codecs, v reflect.Value, depth int) error {
	if depth >= maxDepth {
		return tooDeep()
	}
	n := v.Len()
	if err := e.EncodeArrayLen(n); err != nil {
		return err
	}
	for i := range n {
		if err := ec.enc(e, v.Index(i), depth+1); err != nil {
			return at(fmt.Sprintf("[%d]", i), err)
		}
	}
	return nil
}

func decElems(d *msgpack.Decoder, ec *codecs, v reflect.Value, depth int) error {
	if depth >= maxDepth {
		return tooDeep()
	}
	for i := range v.Len() {
		if err := ec.dec(d, v.Index(i), depth+1); err != nil {
			return at(fmt.Sprintf("[%d]", i), err)
		}
	}
	return nil
}

func buildMap(t reflect.Type, b map[reflect.Type]*codecs) (encFunc, decFunc) {
	kc, vc := compile(t.Key(), b), compile(t.Elem(), b)
	return func(e *msgpack.Encoder, v reflect.Value, depth int) error {
			if v.IsNil() {
				return e.EncodeNil()
			}
			if depth >= maxDepth {
				return tooDeep()
			}
			if err := e.EncodeMapLen(v.Len()); err != nil {
				return err
			}
			it := v.MapRange()
			for it.Next() {
				if err := kc.enc(e, it.Key(), depth+1); err != nil {
					return at("[key]", err)
				}
				if err := vc.enc(e, it.Value(), depth+1); err != nil {
					return at(fmt.Sprintf("[%v]", it.Key()), err)
				}
			}
			return nil
		}, func(d *msgpack.Decoder, v reflect.Value, depth int) error {
			if null, err := isNil(d); null || err != nil {
				v.SetZero()
				return err
			}
			if depth >= maxDepth {
				return tooDeep()
			}
			n, err := d.DecodeMapLen()
			if err != nil {
				return err
			}
			m := reflect.MakeMapWithSize(t, min(n, 1024))
			k, x := reflect.New(t.Key()).Elem(), reflect.New(t.Elem()).Elem()
			for range n {
				k.SetZero()
				x.SetZero()
				if err := kc.dec(d, k, depth+1); err != nil {
					return at("[key]", err)
				}
				if err := vc.dec(d, x, depth+1); err != nil {
					return at(fmt.Sprintf("[%v]", k), err)
				}
				m.SetMapIndex(k, x)
			}
			v.Set(m)
			return nil
		}
}

func buildStruct(t reflect.Type, b map[reflect.Type]*codecs) (encFunc, decFunc) {
	type field struct {
		index int
		seg   string
		c     *codecs
	}
	var fields []field
	for i := range t.NumField() {
		f := t.Field(i)
		if skipped(f) {
			continue
		}
		if !f.IsExported() {
			err := Check(t)
			fail := func(*msgpack.Encoder, reflect.Value, int) error { return err }
			return fail, func(*msgpack.Decoder, reflect.Value, int) error { return err }
		}
		fields = append(fields, field{i, "." + f.Name, compile(f.Type, b)})
	}
	return func(e *msgpack.Encoder, v reflect.Value, depth int) error {
			if depth >= maxDepth {
				return tooDeep()
			}
			if err := e.EncodeArrayLen(len(fields)); err != nil {
				return err
			}
			for _, f := range fields {
				if err := f.c.enc(e, v.Field(f.index), depth+1); err != nil {
					return at(f.seg, err)
				}
			}
			return nil
		}, func(d *msgpack.Decoder, v reflect.Value, depth int) error {
			if depth >= maxDepth {
				return tooDeep()
			}
			n, err := d.DecodeArrayLen()
			if err != nil {
				return err
			}
			if n != len(fields) {
				return errorf("%v has %d fields that cross, got %d", t, len(fields), n)
			}
			for _, f := range fields {
				if err := f.c.dec(d, v.Field(f.index), depth+1); err != nil {
					return at(f.seg, err)
				}
			}
			return nil
		}
}

// errorName is the name under which an error of an unregistered type
// crosses in an error-typed field: as its message.
const errorName = "error"

// A value in an interface is nil, or a 2-array of its type's registered
// name and the value.
func encInterface(e *msgpack.Encoder, v reflect.Value, depth int) error {
	if v.IsNil() {
		return e.EncodeNil()
	}
	if depth >= maxDepth {
		return tooDeep()
	}
	x := v.Elem()
	name, ok := nameOf(x.Type())
	if !ok {
		err, isErr := x.Interface().(error)
		if !isErr || !errorStringType.Implements(v.Type()) {
			return errorf("%v holds a %v, which is not registered; add `pool.RegisterType[%v]()` to an init function", v.Type(), x.Type(), x.Type())
		}
		if err := e.EncodeArrayLen(2); err != nil {
			return err
		}
		if err := e.EncodeString(errorName); err != nil {
			return err
		}
		return e.EncodeString(err.Error())
	}
	if err := e.EncodeArrayLen(2); err != nil {
		return err
	}
	if err := e.EncodeString(name); err != nil {
		return err
	}
	return codecFor(x.Type()).enc(e, x, depth+1)
}

func decInterface(d *msgpack.Decoder, v reflect.Value, depth int) error {
	if null, err := isNil(d); null || err != nil {
		v.SetZero()
		return err
	}
	if depth >= maxDepth {
		return tooDeep()
	}
	if n, err := d.DecodeArrayLen(); err != nil || n != 2 {
		return errorf("a value in an interface is a 2-array, got %d items (%v)", n, err)
	}
	name, err := d.DecodeString()
	if err != nil {
		return err
	}
	if name == errorName && errorStringType.Implements(v.Type()) {
		msg, err := d.DecodeString()
		if err != nil {
			return err
		}
		v.Set(reflect.ValueOf(errors.New(msg)))
		return nil
	}
	t, ok := typeNamed(name)
	if !ok {
		return errorf("type %s is not registered in this process; add `pool.RegisterType[%s]()` to an init function", name, name)
	}
	if !t.Implements(v.Type()) {
		return errorf("%s does not implement %v", name, v.Type())
	}
	x := reflect.New(t).Elem()
	if err := codecFor(t).dec(d, x, depth+1); err != nil {
		return err
	}
	v.Set(x)
	return nil
}
