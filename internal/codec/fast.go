package codec

import (
	"encoding/binary"
	"math"
	"reflect"
	"slices"
	"unsafe"
)

// The fast paths of this file encode and decode slices of scalars ([]int,
// []int64, []int32, []uint, []uint64, []float64, []string, []bool and
// [][]byte), and slices of structs of scalars (see plan), straight between
// the slice and a byte buffer: no msgpack
// Encoder or Decoder, no reflection, no call through a func value per item.
// The bytes are exactly those the general path writes (an Encoder with
// UseCompactInts); FuzzFast and TestFastEqualsGeneral hold them to it. The
// decoders take only the codes an Encoder writes for the type, and give up
// (leaving the slice as it was) on anything else, so that the general path
// decides what other input means, errors included.

// AppendItems appends to b the msgpack encoding of the items s[from:to] of
// s, a slice of one of the scalar types above or of a struct of scalars
// (see plan), as [EncodeSlice] encodes
// each item, stopping before the first item that would take len(b) past
// limit. It returns the extended b, how many items it appended, and true;
// or b unchanged, 0 and false if s is not such a slice (the caller then
// uses [ItemEncoder]). It costs a type switch per call (and for structs a
// cached plan's lookup) and a few instructions per byte written.
func AppendItems(b []byte, s any, from, to, limit int) ([]byte, int, bool) {
	switch s := s.(type) {
	case []int:
		return appendInts(b, s, from, to, limit)
	case []int64:
		return appendInts(b, s, from, to, limit)
	case []int32:
		return appendInts(b, s, from, to, limit)
	case []uint:
		return appendUints(b, s, from, to, limit)
	case []uint64:
		return appendUints(b, s, from, to, limit)
	case []float64:
		return appendEach(b, s, from, to, limit, appendFloat64)
	case []string:
		return appendEach(b, s, from, to, limit, appendString)
	case []bool:
		return appendEach(b, s, from, to, limit, appendBool)
	case [][]byte:
		return appendEach(b, s, from, to, limit, appendBytes)
	}
	if v := reflect.ValueOf(s); v.Kind() == reflect.Slice {
		if p := planFor(v.Type().Elem()); p != nil {
			b, n := p.appendStructs(b, v, from, to, limit)
			return b, n, true
		}
	}
	return b, 0, false
}

// appendInts and appendUints are AppendItems for integers. Items go out in
// blocks of intBlock: room for a block at 9 bytes an item is made once,
// and putInts writes the block without a check of limit or of capacity
// per item. Items past the last block that fits under limit at 9 bytes
// each are written one by one, with the check.
func appendInts[E int | int64 | int32](b []byte, s []E, from, to, limit int) ([]byte, int, bool) {
	to = min(to, len(s))
	if from >= to {
		return b, 0, true
	}
	s = s[from:to]
	n := 0
	for len(s) > 0 {
		k := min(len(s), intBlock)
		if len(b) > limit-9*k {
			break
		}
		b = slices.Grow(b, 9*k)
		for blk := s[:k]; len(blk) > 0; {
			// Room for 9 bytes an item of blk is there.
			j, m := putInts(b[len(b):len(b)+9*len(blk)], blk)
			b = b[:len(b)+j]
			if blk = blk[m:]; len(blk) > 0 {
				b = appendInt(b, int64(blk[0])) // from 2³², or under -32
				blk = blk[1:]
			}
		}
		s = s[k:]
		n += k
	}
	for _, x := range s {
		mark := len(b)
		b = appendInt(b, int64(x))
		if len(b) > limit {
			return b[:mark], n, true
		}
		n++
	}
	return b, n, true
}

// intBlock is how many integers appendInts writes between checks: at 9
// bytes an item, the room it makes stays under 10 KiB past the frame.
const intBlock = 1024

// putInts writes the items of s from the first on, as appendInt does, into
// w, which has room for 9 bytes an item, while they are from -32 to
// 2³²-1 (what a Map of small numbers sends). It returns the bytes written
// and the items they hold. A number is written with one 8-byte big-endian
// store of its code and payload (the bytes past the value are overwritten
// by the next one, or cut off): about 25 instructions an item, the loop
// and one bounds check included, and no call. Other numbers stop it, so
// that the loop holds its registers instead of saving them around a call.
func putInts[E int | int64 | int32](w []byte, s []E) (j, n int) {
	for ; n < len(s); n++ {
		x := int64(s[n])
		v := w[j : j+9 : j+9]
		switch u := uint64(x); {
		case uint64(x+32) < 160: // -32 to 127: a fixint
			v[0] = byte(x)
			j++
		case u <= math.MaxUint8:
			binary.BigEndian.PutUint64(v, 0xcc<<56|u<<48)
			j += 2
		case u <= math.MaxUint16:
			binary.BigEndian.PutUint64(v, 0xcd<<56|u<<40)
			j += 3
		case u <= math.MaxUint32:
			binary.BigEndian.PutUint64(v, 0xce<<56|u<<24)
			j += 5
		default:
			return j, n
		}
	}
	return j, n
}

func appendUints[E uint | uint64](b []byte, s []E, from, to, limit int) ([]byte, int, bool) {
	to = min(to, len(s))
	n := 0
	for i := from; i < to; i++ {
		mark := len(b)
		if x := uint64(s[i]); x <= math.MaxInt8 {
			b = append(b, byte(x))
		} else {
			b = appendUint(b, x)
		}
		if len(b) > limit {
			return b[:mark], n, true
		}
		n++
	}
	return b, n, true
}

// appendEach is AppendItems for the other types: put is called per item.
func appendEach[E any](b []byte, s []E, from, to, limit int, put func([]byte, E) []byte) ([]byte, int, bool) {
	to = min(to, len(s))
	n := 0
	for i := from; i < to; i++ {
		mark := len(b)
		b = put(b, s[i])
		if len(b) > limit {
			return b[:mark], n, true
		}
		n++
	}
	return b, n, true
}

// appendUint writes n as msgpack.Encoder.EncodeUint does: in 1, 2, 3, 5 or
// 9 bytes.
func appendUint(b []byte, n uint64) []byte {
	switch {
	case n <= math.MaxInt8:
		return append(b, byte(n))
	case n <= math.MaxUint8:
		return append(b, 0xcc, byte(n))
	case n <= math.MaxUint16:
		return append(b, 0xcd, byte(n>>8), byte(n))
	case n <= math.MaxUint32:
		return append(b, 0xce, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xcf), n)
}

// appendInt writes n as msgpack.Encoder.EncodeInt does.
func appendInt(b []byte, n int64) []byte {
	switch {
	case n >= 0:
		return appendUint(b, uint64(n))
	case n >= -32:
		return append(b, byte(n))
	case n >= math.MinInt8:
		return append(b, 0xd0, byte(n))
	case n >= math.MinInt16:
		return append(b, 0xd1, byte(n>>8), byte(n))
	case n >= math.MinInt32:
		return append(b, 0xd2, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xd3), uint64(n))
}

// appendFloat64 writes x as msgpack.Encoder.EncodeFloat64 does without
// UseCompactFloats: a double.
func appendFloat64(b []byte, x float64) []byte {
	return binary.BigEndian.AppendUint64(append(b, 0xcb), math.Float64bits(x))
}

func appendBool(b []byte, x bool) []byte {
	if x {
		return append(b, 0xc3)
	}
	return append(b, 0xc2)
}

// appendString writes s as msgpack.Encoder.EncodeString does.
func appendString(b []byte, s string) []byte {
	n := len(s)
	switch {
	case n < 32:
		b = append(b, 0xa0|byte(n))
	case n <= math.MaxUint8:
		b = append(b, 0xd9, byte(n))
	case n <= math.MaxUint16:
		b = binary.BigEndian.AppendUint16(append(b, 0xda), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, 0xdb), uint32(n))
	}
	return append(b, s...)
}

// appendBytes writes p as the general path's []byte codec does: nil as
// nil, otherwise msgpack.Encoder.EncodeBytes's bin 8, 16 or 32.
func appendBytes(b []byte, p []byte) []byte {
	n := len(p)
	switch {
	case p == nil:
		return append(b, 0xc0)
	case n <= math.MaxUint8:
		b = append(b, 0xc4, byte(n))
	case n <= math.MaxUint16:
		b = binary.BigEndian.AppendUint16(append(b, 0xc5), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, 0xc6), uint32(n))
	}
	return append(b, p...)
}

// DecodeFast decodes the array at the start of b into *ptr as [DecodeSlice]
// would, when ptr points to a slice of one of the scalar types above (or
// of a struct of scalars) and every item is written as an Encoder writes
// that type. It returns how many
// bytes of b the array took and true; or 0 and false, with *ptr as it was,
// when the caller must decode with DecodeSlice (another type, another
// encoding of an item, a value out of range, or bytes cut short). It
// never panics; it allocates the slice, when *ptr is nil, as DecodeSlice
// does, and a string or []byte per item of those types.
func DecodeFast(b []byte, ptr any) (int, bool) {
	switch p := ptr.(type) {
	case *[]int:
		return decodeInts(b, p, math.MinInt, math.MaxInt)
	case *[]int64:
		return decodeInts(b, p, math.MinInt64, math.MaxInt64)
	case *[]int32:
		return decodeInts(b, p, math.MinInt32, math.MaxInt32)
	case *[]uint:
		return decodeUints(b, p, math.MaxUint)
	case *[]uint64:
		return decodeUints(b, p, math.MaxUint64)
	case *[]float64:
		return decodeItems(b, p, readFloat64)
	case *[]string:
		return decodeItems(b, p, readString)
	case *[]bool:
		return decodeItems(b, p, readBool)
	case *[][]byte:
		return decodeItems(b, p, readBytes)
	}
	if pv := reflect.ValueOf(ptr); pv.Kind() == reflect.Pointer && !pv.IsNil() && pv.Elem().Kind() == reflect.Slice {
		if p := planFor(pv.Type().Elem().Elem()); p != nil {
			return p.decodeStructs(b, pv)
		}
	}
	return 0, false
}

// readArrayHeader reads the header of an array or nil at b[0]: the item
// count (-1 for nil) and where the items start.
func readArrayHeader(b []byte) (n, at int, ok bool) {
	if len(b) == 0 {
		return 0, 0, false
	}
	switch c := b[0]; {
	case c == 0xc0:
		return -1, 1, true
	case c >= 0x90 && c <= 0x9f:
		return int(c & 0x0f), 1, true
	case c == 0xdc && len(b) >= 3:
		return int(binary.BigEndian.Uint16(b[1:])), 3, true
	case c == 0xdd && len(b) >= 5:
		n := uint64(binary.BigEndian.Uint32(b[1:]))
		if n > uint64(len(b)) { // every item takes a byte at least
			return 0, 0, false
		}
		return int(n), 5, true
	}
	return 0, 0, false
}

// start reads the array header and makes room in *p as DecodeSlice does.
func start[E any](b []byte, p *[]E) (s []E, n, at int, ok bool) {
	n, at, ok = readArrayHeader(b)
	if !ok || n > len(b)-at {
		return nil, 0, 0, false
	}
	s = *p
	if s == nil && n >= 0 {
		var zero E
		s = make([]E, 0, min(n, max(1024, preallocBytes/max(int(unsafe.Sizeof(zero)), 1))))
	}
	return s, n, at, true
}

func decodeInts[E int | int64 | int32](b []byte, p *[]E, lo, hi int64) (int, bool) {
	s, n, i, ok := start(b, p)
	if !ok {
		return 0, false
	}
	if n < 0 {
		return i, true
	}
	base := len(s)
	s = slices.Grow(s, n)[:base+n] // n <= len(b): start checked
	out := s[base:]
	for k := 0; k < len(out); {
		// Runs of small numbers in a tight loop; the others, and the last
		// few bytes, one by one.
		m, next := getInts(b, i, out[k:], hi)
		k, i = k+m, next
		if k == len(out) {
			break
		}
		var x int64
		if x, i, ok = readInt(b, i); !ok || x < lo || x > hi {
			return 0, false
		}
		out[k] = E(x)
		k++
	}
	*p = s
	return i, true
}

// getInts reads numbers from b[i:] into out[0:], from the first on, while
// at least 9 bytes remain and each is a fixint or a uint 8, 16 or 32 (what
// an Encoder writes for the numbers from -32 to 2³²-1) no greater than hi.
// It returns how many it read and where they end. Each is read from one
// 8-byte big-endian load, with no call, so that the loop keeps its
// registers; the caller takes whatever stops it one by one.
func getInts[E int | int64 | int32](b []byte, i int, out []E, hi int64) (k, next int) {
	for ; k < len(out) && i <= len(b)-9; k++ {
		v := binary.BigEndian.Uint64(b[i:])
		var x int64
		var w int // bytes the number takes
		switch c := byte(v >> 56); {
		case c <= 0x7f:
			x, w = int64(c), 1
		case c >= 0xe0:
			x, w = int64(int8(c)), 1
		case c == 0xce:
			x, w = int64(uint32(v>>24)), 5
		case c == 0xcd:
			x, w = int64(uint16(v>>40)), 3
		case c == 0xcc:
			x, w = int64(uint8(v>>48)), 2
		default:
			return k, i
		}
		if x > hi {
			return k, i
		}
		out[k] = E(x)
		i += w
	}
	return k, i
}

func decodeUints[E uint | uint64](b []byte, p *[]E, hi uint64) (int, bool) {
	s, n, i, ok := start(b, p)
	if !ok {
		return 0, false
	}
	for range n {
		if i < len(b) && b[i] <= 0x7f {
			s = append(s, E(b[i]))
			i++
			continue
		}
		x, next, ok := readUint(b, i)
		if !ok || x > hi {
			return 0, false
		}
		s = append(s, E(x))
		i = next
	}
	if n >= 0 {
		*p = s
	}
	return i, true
}

func decodeItems[E any](b []byte, p *[]E, read func([]byte, int) (E, int, bool)) (int, bool) {
	s, n, i, ok := start(b, p)
	if !ok {
		return 0, false
	}
	for range n {
		x, next, ok := read(b, i)
		if !ok {
			return 0, false
		}
		s = append(s, x)
		i = next
	}
	if n >= 0 {
		*p = s
	}
	return i, true
}

// readInt reads an integer at b[i] as msgpack.Decoder.DecodeInt64 does for
// the codes an Encoder writes (a uint 64 above MaxInt64 is left to the
// general path, which the caller's range check ensures).
func readInt(b []byte, i int) (int64, int, bool) {
	if i >= len(b) {
		return 0, 0, false
	}
	c := b[i]
	if c <= 0x7f || c >= 0xe0 {
		return int64(int8(c)), i + 1, true
	}
	switch c {
	case 0xcc:
		if i+2 <= len(b) {
			return int64(b[i+1]), i + 2, true
		}
	case 0xcd:
		if i+3 <= len(b) {
			return int64(binary.BigEndian.Uint16(b[i+1:])), i + 3, true
		}
	case 0xce:
		if i+5 <= len(b) {
			return int64(binary.BigEndian.Uint32(b[i+1:])), i + 5, true
		}
	case 0xcf:
		if i+9 <= len(b) {
			if u := binary.BigEndian.Uint64(b[i+1:]); u <= math.MaxInt64 {
				return int64(u), i + 9, true
			}
		}
	case 0xd0:
		if i+2 <= len(b) {
			return int64(int8(b[i+1])), i + 2, true
		}
	case 0xd1:
		if i+3 <= len(b) {
			return int64(int16(binary.BigEndian.Uint16(b[i+1:]))), i + 3, true
		}
	case 0xd2:
		if i+5 <= len(b) {
			return int64(int32(binary.BigEndian.Uint32(b[i+1:]))), i + 5, true
		}
	case 0xd3:
		if i+9 <= len(b) {
			return int64(binary.BigEndian.Uint64(b[i+1:])), i + 9, true
		}
	}
	return 0, 0, false
}

// readUint reads a non-negative integer at b[i]: a positive fixint or a
// uint 8…64, the codes an Encoder writes for one.
func readUint(b []byte, i int) (uint64, int, bool) {
	if i >= len(b) {
		return 0, 0, false
	}
	c := b[i]
	if c <= 0x7f {
		return uint64(c), i + 1, true
	}
	switch c {
	case 0xcc:
		if i+2 <= len(b) {
			return uint64(b[i+1]), i + 2, true
		}
	case 0xcd:
		if i+3 <= len(b) {
			return uint64(binary.BigEndian.Uint16(b[i+1:])), i + 3, true
		}
	case 0xce:
		if i+5 <= len(b) {
			return uint64(binary.BigEndian.Uint32(b[i+1:])), i + 5, true
		}
	case 0xcf:
		if i+9 <= len(b) {
			return binary.BigEndian.Uint64(b[i+1:]), i + 9, true
		}
	}
	return 0, 0, false
}

func readFloat64(b []byte, i int) (float64, int, bool) {
	if i+9 <= len(b) && b[i] == 0xcb {
		return math.Float64frombits(binary.BigEndian.Uint64(b[i+1:])), i + 9, true
	}
	return 0, 0, false
}

func readBool(b []byte, i int) (bool, int, bool) {
	if i < len(b) {
		switch b[i] {
		case 0xc2:
			return false, i + 1, true
		case 0xc3:
			return true, i + 1, true
		}
	}
	return false, 0, false
}

// readLen reads the length of a str (kind 's') or bin (kind 'b') at b[i],
// and checks that its bytes are present.
func readLen(b []byte, i int, kind byte) (n, at int, ok bool) {
	if i >= len(b) {
		return 0, 0, false
	}
	c := b[i]
	switch {
	case kind == 's' && c >= 0xa0 && c <= 0xbf:
		n, at = int(c&0x1f), i+1
	case (kind == 's' && c == 0xd9 || kind == 'b' && c == 0xc4) && i+2 <= len(b):
		n, at = int(b[i+1]), i+2
	case (kind == 's' && c == 0xda || kind == 'b' && c == 0xc5) && i+3 <= len(b):
		n, at = int(binary.BigEndian.Uint16(b[i+1:])), i+3
	case (kind == 's' && c == 0xdb || kind == 'b' && c == 0xc6) && i+5 <= len(b):
		n, at = int(binary.BigEndian.Uint32(b[i+1:])), i+5
	default:
		return 0, 0, false
	}
	if n > len(b)-at {
		return 0, 0, false
	}
	return n, at, true
}

func readString(b []byte, i int) (string, int, bool) {
	n, at, ok := readLen(b, i, 's')
	if !ok {
		return "", 0, false
	}
	return string(b[at : at+n]), at + n, true
}

// readBytes reads a bin (a fresh copy, empty and not nil for a length of
// 0) or nil, as the general path's []byte codec does.
func readBytes(b []byte, i int) ([]byte, int, bool) {
	if i < len(b) && b[i] == 0xc0 {
		return nil, i + 1, true
	}
	n, at, ok := readLen(b, i, 'b')
	if !ok {
		return nil, 0, false
	}
	return append(make([]byte, 0, n), b[at:at+n]...), at + n, true
}
