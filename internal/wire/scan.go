package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// maxDepth bounds how deeply arrays and maps may nest in a message.
const maxDepth = 10000

var (
	errTruncated = errors.New("a value is cut short")
	errNotMsgp   = errors.New("not msgpack (code 0xc1)")
	errTooDeep   = fmt.Errorf("arrays and maps nested more than %d deep", maxDepth)
)

// checkBody checks that b is a sequence of whole msgpack values nesting at
// most maxDepth deep, before anything decodes it. msgpack v5 trusts a
// length prefix and recurses into nested values, so without this a peer
// could make the process allocate gigabytes (an array32 header claiming
// 2³²-1 items, five bytes: msgpack#401), or overflow its stack (a few
// megabytes of 0x91), both fatal errors that no recover catches. After the
// check, every item an array or map claims is present in b, so what a
// decoder preallocates is bounded by the size of the frame.
func checkBody(b []byte) error {
	for len(b) > 0 {
		end, err := scanValue(b)
		if err != nil {
			return err
		}
		b = b[end:]
	}
	return nil
}

// scalarLen is, for each first byte of a msgpack value that neither opens
// an array or map nor has a length field, the bytes of payload that follow
// it; -1 for the others. It is the fast path of scanValue: a Map's
// arguments and results are mostly such values.
var scalarLen = func() (t [256]int8) {
	for c := range t {
		switch {
		case c <= 0x7f, c >= 0xe0, c == 0xc0, c == 0xc2, c == 0xc3: // fixint, nil, bool
			t[c] = 0
		case c >= 0xa0 && c <= 0xbf: // fixstr
			t[c] = int8(c & 0x1f)
		case c == 0xca:
			t[c] = 4
		case c == 0xcb:
			t[c] = 8
		case c >= 0xcc && c <= 0xcf: // uint 8…64
			t[c] = 1 << (c - 0xcc)
		case c >= 0xd0 && c <= 0xd3: // int 8…64
			t[c] = 1 << (c - 0xd0)
		case c >= 0xd4 && c <= 0xd8: // fixext 1…16
			t[c] = 1 + 1<<(c-0xd4)
		default:
			t[c] = -1
		}
	}
	return t
}()

// scanValue reads the msgpack value at the start of b without decoding it,
// and returns where it ends. It uses no recursion, and allocates only for
// values nesting more than 16 deep.
func scanValue(b []byte) (end int, err error) { return scanIn(b, 0) }

// scanIn is scanValue for a value inside outer arrays or maps, which count
// towards maxDepth.
func scanIn(b []byte, outer int) (end int, err error) {
	var open []uint64 // items still to read in each array or map not yet ended
	i := 0
	for {
		if i >= len(b) {
			return 0, errTruncated
		}
		c := b[i]
		i++
		if n := int(scalarLen[c]); n >= 0 {
			if n > len(b)-i {
				return 0, errTruncated
			}
			i += n
			if len(open) == 0 {
				return i, nil
			}
			// The scalars that follow in the same array or map (a Map's
			// items), in a tight loop.
			left := open[len(open)-1] - 1
			for left > 0 && i < len(b) {
				n := int(scalarLen[b[i]])
				if n < 0 {
					break
				}
				if n >= len(b)-i {
					return 0, errTruncated
				}
				i += 1 + n
				left--
			}
			open[len(open)-1] = left
			for len(open) > 0 && open[len(open)-1] == 0 {
				open = open[:len(open)-1]
			}
			if len(open) == 0 {
				return i, nil
			}
			continue
		}
		var (
			items  uint64 // items of the array or map this value opens
			length int    // bytes of a length field that follows
			fixed  int    // bytes of payload
			typ    int    // 1 for an ext's type byte
			kind   byte   // with a length field: 's' for bytes, 'a' array, 'm' map
		)
		switch {
		case c <= 0x7f, c >= 0xe0: // positive and negative fixint
		case c <= 0x8f: // fixmap
			items = 2 * uint64(c&0x0f)
		case c <= 0x9f: // fixarray
			items = uint64(c & 0x0f)
		case c <= 0xbf: // fixstr
			fixed = int(c & 0x1f)
		case c == 0xc0, c == 0xc2, c == 0xc3: // nil, false, true
		case c == 0xc1: // never used
			return 0, errNotMsgp
		case c <= 0xc6: // bin 8, 16, 32
			length, kind = 1<<(c-0xc4), 's'
		case c <= 0xc9: // ext 8, 16, 32
			length, kind, typ = 1<<(c-0xc7), 's', 1
		case c == 0xca: // float 32
			fixed = 4
		case c == 0xcb: // float 64
			fixed = 8
		case c <= 0xcf: // uint 8…64
			fixed = 1 << (c - 0xcc)
		case c <= 0xd3: // int 8…64
			fixed = 1 << (c - 0xd0)
		case c <= 0xd8: // fixext 1…16
			fixed = 1 + 1<<(c-0xd4)
		case c <= 0xdb: // str 8, 16, 32
			length, kind = 1<<(c-0xd9), 's'
		case c <= 0xdd: // array 16, 32
			length, kind = 2<<(c-0xdc), 'a'
		default: // map 16, 32
			length, kind = 2<<(c-0xde), 'm'
		}
		if length > 0 {
			if len(b)-i < length {
				return 0, errTruncated
			}
			var n uint64
			switch length {
			case 1:
				n = uint64(b[i])
			case 2:
				n = uint64(binary.BigEndian.Uint16(b[i:]))
			default:
				n = uint64(binary.BigEndian.Uint32(b[i:]))
			}
			i += length
			switch kind {
			case 's':
				if n+uint64(typ) > uint64(len(b)-i) {
					return 0, errTruncated
				}
				fixed = int(n) + typ
			case 'a':
				items = n
			case 'm':
				items = 2 * n
			}
		}
		if fixed > len(b)-i {
			return 0, errTruncated
		}
		i += fixed
		if len(open) > 0 {
			open[len(open)-1]--
		}
		if items > 0 {
			if items > uint64(len(b)-i) {
				return 0, errTruncated // each item takes a byte at least
			}
			if len(open)+outer >= maxDepth {
				return 0, errTooDeep
			}
			open = append(open, items)
		}
		for len(open) > 0 && open[len(open)-1] == 0 {
			open = open[:len(open)-1]
		}
		if len(open) == 0 {
			return i, nil
		}
	}
}
