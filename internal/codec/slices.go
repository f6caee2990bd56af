package codec

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"reflect"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// EncodeSlice writes s, a slice, as an array of its items (nil as nil). An
// error in an item is an [*ItemError] naming its index.
func EncodeSlice(e *msgpack.Encoder, s any) error {
	n, enc := ItemEncoder(s)
	if n < 0 {
		return e.EncodeNil()
	}
	if err := e.EncodeArrayLen(n); err != nil {
		return err
	}
	for i := range n {
		if err := enc(e, i); err != nil {
			return err
		}
	}
	return nil
}

// ItemEncoder returns the length of s, a slice (-1 for a nil slice), and a
// function that writes its item i, so that a caller can write the items in
// several messages. The function returns an [*ItemError] naming i, and never
// panics. Slices of the common scalar types take fast paths that skip
// reflection.
func ItemEncoder(s any) (int, func(e *msgpack.Encoder, i int) error) {
	switch s := s.(type) {
	case []int:
		return fast(s, func(e *msgpack.Encoder, x int) error { return e.EncodeInt(int64(x)) })
	case []int64:
		return fast(s, (*msgpack.Encoder).EncodeInt)
	case []int32:
		return fast(s, func(e *msgpack.Encoder, x int32) error { return e.EncodeInt(int64(x)) })
	case []uint64:
		return fast(s, (*msgpack.Encoder).EncodeUint)
	case []float64:
		return fast(s, (*msgpack.Encoder).EncodeFloat64)
	case []string:
		return fast(s, (*msgpack.Encoder).EncodeString)
	case []bool:
		return fast(s, (*msgpack.Encoder).EncodeBool)
	}
	if s == nil {
		return -1, nil
	}
	v := reflect.ValueOf(s)
	if v.Kind() != reflect.Slice {
		err := errorf("want a slice, got %T", s)
		return 0, func(*msgpack.Encoder, int) error { return err }
	}
	if v.IsNil() {
		return -1, nil
	}
	c := codecFor(v.Type().Elem())
	return v.Len(), func(e *msgpack.Encoder, i int) (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = &ItemError{Index: i, Err: errorf("encoding panicked: %v", p)}
			}
		}()
		if err := c.enc(e, v.Index(i), 0); err != nil {
			return &ItemError{Index: i, Err: err}
		}
		return nil
	}
}

func fast[E any](s []E, put func(*msgpack.Encoder, E) error) (int, func(*msgpack.Encoder, int) error) {
	if s == nil {
		return -1, nil
	}
	return len(s), func(e *msgpack.Encoder, i int) error {
		if err := put(e, s[i]); err != nil {
			return &ItemError{Index: i, Err: err}
		}
		return nil
	}
}

// DecodeSlice reads an array written by [EncodeSlice] (or by several calls
// of an [ItemEncoder] after one array header) and appends its items to
// *ptr, a pointer to a slice. A nil array appends nothing. An error is an
// [*ItemError] naming the item's index within the array; DecodeSlice never
// panics.
func DecodeSlice(d *msgpack.Decoder, ptr any) error {
	switch p := ptr.(type) {
	case *[]int:
		return decodeEach(d, p, func(d *msgpack.Decoder) (int, error) {
			x, err := d.DecodeInt64()
			return int(x), err
		})
	case *[]int64:
		return decodeEach(d, p, (*msgpack.Decoder).DecodeInt64)
	case *[]float64:
		return decodeEach(d, p, (*msgpack.Decoder).DecodeFloat64)
	case *[]string:
		return decodeEach(d, p, (*msgpack.Decoder).DecodeString)
	}
	pv := reflect.ValueOf(ptr)
	if pv.Kind() != reflect.Pointer || pv.IsNil() || pv.Elem().Kind() != reflect.Slice {
		return errorf("want a pointer to a slice, got %T", ptr)
	}
	if null, err := isNil(d); null || err != nil {
		return wrapDecode(err)
	}
	n, err := d.DecodeArrayLen()
	if err != nil {
		return wrapDecode(err)
	}
	s := pv.Elem()
	if s.IsNil() {
		s.Set(reflect.MakeSlice(s.Type(), 0, preallocate(n, s.Type().Elem())))
	}
	start := s.Len()
	c := codecFor(s.Type().Elem())
	i := 0
	defer func() {
		if p := recover(); p != nil {
			s.SetLen(start + i)
			err = &ItemError{Index: i, Err: errorf("decoding panicked: %v", p)}
		}
	}()
	for ; i < n; i++ {
		grow(s)
		if err := c.dec(d, s.Index(start+i), 0); err != nil {
			s.SetLen(start + i)
			return &ItemError{Index: i, Err: wrapDecode(err)}
		}
	}
	return nil
}

// wrapDecode makes msgpack's own errors wrap ErrEncoding.
func wrapDecode(err error) error {
	if err == nil || isOurs(err) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrEncoding, err)
}

func isOurs(err error) bool {
	for e := err; e != nil; {
		if e == ErrEncoding {
			return true
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		e = u.Unwrap()
	}
	return false
}

// decodeEach appends the items of an array to *p, each read by get.
func decodeEach[E any](d *msgpack.Decoder, p *[]E, get func(*msgpack.Decoder) (E, error)) error {
	if null, err := isNil(d); null || err != nil {
		return wrapDecode(err)
	}
	n, err := d.DecodeArrayLen()
	if err != nil {
		return wrapDecode(err)
	}
	s := *p
	if s == nil {
		s = make([]E, 0, preallocate(n, reflect.TypeFor[E]()))
	}
	for i := range n {
		x, err := get(d)
		if err != nil {
			*p = s
			return &ItemError{Index: i, Err: wrapDecode(err)}
		}
		s = append(s, x)
	}
	*p = s
	return nil
}

// RoundTrip encodes src, a slice, and decodes it into dst, a pointer to an
// empty slice of the same type, as a value crossing to another process
// would be: what arrives in dst is what a cluster worker would see. It
// costs an encoding and a decoding of every item.
func RoundTrip(src, dst any) error {
	b := buffers.Get().(*buffer)
	defer buffers.Put(b)
	if v := reflect.ValueOf(src); v.Kind() == reflect.Slice && !v.IsNil() {
		// Slices of scalars and structs of scalars: the fast paths, which
		// write and read the same bytes.
		raw, n, ok := AppendItems(append(b.raw[:0], 0xdd, 0, 0, 0, 0), src, 0, math.MaxInt, math.MaxInt)
		if ok {
			binary.BigEndian.PutUint32(raw[1:], uint32(n))
			if cap(raw) <= 1<<20 {
				b.raw = raw
			}
			if _, ok := DecodeFast(raw, dst); ok {
				return nil
			}
			return DecodeBytes(raw, dst)
		}
	}
	b.buf.Reset()
	if err := EncodeSlice(b.enc, src); err != nil {
		return err
	}
	b.dec.Reset(&b.buf)
	return DecodeSlice(b.dec, dst)
}

type buffer struct {
	raw []byte // for the fast paths
	buf bytes.Buffer
	enc *msgpack.Encoder
	dec *msgpack.Decoder
}

var buffers = sync.Pool{New: func() any {
	b := &buffer{}
	b.enc = msgpack.NewEncoder(&b.buf)
	b.enc.UseCompactInts(true)
	b.dec = msgpack.NewDecoder(&b.buf)
	return b
}}

// DecodeBytes decodes b, an array written by [EncodeSlice], appending its
// items to *ptr (see [DecodeSlice]).
func DecodeBytes(b []byte, ptr any) error {
	d := msgpack.NewDecoder(bytes.NewReader(b))
	return DecodeSlice(d, ptr)
}

// EncodeBytes encodes s, a slice, as EncodeSlice does, into new bytes.
func EncodeBytes(s any) ([]byte, error) {
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(true)
	if err := EncodeSlice(enc, s); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
