package codec

import (
	"encoding/binary"
	"math"
	"reflect"
	"sync"
	"unsafe"
)

// A plan encodes and decodes a struct of scalars (every field that crosses
// a bool, an integer, a float64 or a string, of any named type that does
// not marshal itself) field by field at the fields' offsets, without
// reflection per item. It is made once per type, by reflection, and
// cached. Its bytes are the general path's: an array of the fields in
// declaration order.
type plan struct {
	size   uintptr
	header []byte // the array header of len(fields)
	fields []planField
}

type planField struct {
	off  uintptr
	kind reflect.Kind
}

var plans sync.Map // reflect.Type → *plan, nil for a type without one

// planFor returns t's plan, or nil if t is not a struct of scalars.
func planFor(t reflect.Type) *plan {
	if p, ok := plans.Load(t); ok {
		return p.(*plan)
	}
	p := makePlan(t)
	plans.Store(t, p)
	return p
}

func makePlan(t reflect.Type) *plan {
	if t.Kind() != reflect.Struct || t == timeType || marshalled(t) {
		return nil
	}
	p := &plan{size: t.Size()}
	for i := range t.NumField() {
		f := t.Field(i)
		if skipped(f) {
			continue
		}
		if !f.IsExported() || f.Type == timeType || marshalled(f.Type) {
			return nil
		}
		if k := f.Type.Kind(); (k == reflect.Int || k == reflect.Uint || k == reflect.Uintptr) && f.Type.Size() != 8 {
			return nil // read and written as 64 bits below
		}
		switch k := f.Type.Kind(); k {
		case reflect.Bool, reflect.String, reflect.Float64,
			reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
			p.fields = append(p.fields, planField{off: f.Offset, kind: k})
		default:
			return nil
		}
	}
	n := len(p.fields)
	switch {
	case n < 16:
		p.header = []byte{0x90 | byte(n)}
	case n <= math.MaxUint16:
		p.header = binary.BigEndian.AppendUint16([]byte{0xdc}, uint16(n))
	default:
		return nil
	}
	return p
}

// appendStructs is AppendItems for a slice whose items have a plan.
func (p *plan) appendStructs(b []byte, v reflect.Value, from, to, limit int) ([]byte, int) {
	to = min(to, v.Len())
	base := v.UnsafePointer()
	n := 0
	for i := from; i < to; i++ {
		mark := len(b)
		b = p.append(b, unsafe.Add(base, uintptr(i)*p.size))
		if len(b) > limit {
			return b[:mark], n
		}
		n++
	}
	return b, n
}

// append writes the struct at x.
func (p *plan) append(b []byte, x unsafe.Pointer) []byte {
	b = append(b, p.header...)
	for _, f := range p.fields {
		at := unsafe.Add(x, f.off)
		switch f.kind {
		case reflect.Bool:
			b = appendBool(b, *(*bool)(at))
		case reflect.String:
			b = appendString(b, *(*string)(at))
		case reflect.Float64:
			b = appendFloat64(b, *(*float64)(at))
		case reflect.Int, reflect.Int64:
			b = appendInt(b, *(*int64)(at))
		case reflect.Int8:
			b = appendInt(b, int64(*(*int8)(at)))
		case reflect.Int16:
			b = appendInt(b, int64(*(*int16)(at)))
		case reflect.Int32:
			b = appendInt(b, int64(*(*int32)(at)))
		case reflect.Uint, reflect.Uint64, reflect.Uintptr:
			b = appendUint(b, *(*uint64)(at))
		case reflect.Uint8:
			b = appendUint(b, uint64(*(*uint8)(at)))
		case reflect.Uint16:
			b = appendUint(b, uint64(*(*uint16)(at)))
		case reflect.Uint32:
			b = appendUint(b, uint64(*(*uint32)(at)))
		}
	}
	return b
}

// decodeStructs is DecodeFast for a pointer to a slice whose items have a
// plan. It decodes into a new slice, which replaces *ptr only when every
// item has decoded.
func (p *plan) decodeStructs(b []byte, pv reflect.Value) (int, bool) {
	n, i, ok := readArrayHeader(b)
	if !ok || n > len(b)-i {
		return 0, false
	}
	if n < 0 {
		return i, true
	}
	old := pv.Elem()
	s := reflect.MakeSlice(old.Type(), old.Len()+n, old.Len()+n)
	reflect.Copy(s, old)
	base := s.UnsafePointer()
	for k := range n {
		if i, ok = p.decode(b, i, unsafe.Add(base, uintptr(old.Len()+k)*p.size)); !ok {
			return 0, false
		}
	}
	pv.Elem().Set(s)
	return i, true
}

// decode reads the struct at b[i] into x, taking only what an Encoder
// writes for each field, in its range.
func (p *plan) decode(b []byte, i int, x unsafe.Pointer) (int, bool) {
	h := len(p.header)
	if i+h > len(b) || string(b[i:i+h]) != string(p.header) {
		return 0, false
	}
	i += h
	for _, f := range p.fields {
		at := unsafe.Add(x, f.off)
		var ok bool
		switch f.kind {
		case reflect.Bool:
			*(*bool)(at), i, ok = readBool(b, i)
		case reflect.String:
			*(*string)(at), i, ok = readString(b, i)
		case reflect.Float64:
			*(*float64)(at), i, ok = readFloat64(b, i)
		case reflect.Int, reflect.Int64, reflect.Int8, reflect.Int16, reflect.Int32:
			var v int64
			v, i, ok = readInt(b, i)
			switch f.kind {
			case reflect.Int, reflect.Int64:
				*(*int64)(at) = v
			case reflect.Int8:
				ok = ok && v == int64(int8(v))
				*(*int8)(at) = int8(v)
			case reflect.Int16:
				ok = ok && v == int64(int16(v))
				*(*int16)(at) = int16(v)
			case reflect.Int32:
				ok = ok && v == int64(int32(v))
				*(*int32)(at) = int32(v)
			}
		default: // the unsigned kinds
			var v uint64
			v, i, ok = readUint(b, i)
			switch f.kind {
			case reflect.Uint, reflect.Uint64, reflect.Uintptr:
				*(*uint64)(at) = v
			case reflect.Uint8:
				ok = ok && v == uint64(uint8(v))
				*(*uint8)(at) = uint8(v)
			case reflect.Uint16:
				ok = ok && v == uint64(uint16(v))
				*(*uint16)(at) = uint16(v)
			case reflect.Uint32:
				ok = ok && v == uint64(uint32(v))
				*(*uint32)(at) = uint32(v)
			}
		}
		if !ok {
			return 0, false
		}
	}
	return i, true
}
