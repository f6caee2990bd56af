package wire

import (
	"github.com/vmihailenco/msgpack/v5"
)

// EncodeSlice encodes a slice of arguments or results. Slices of the common
// scalar types take a fast path that writes the same bytes msgpack's own
// Encode would (with UseCompactInts), without its per-element type lookup,
// which costs more than the encoding itself; other values go to Encode.
func EncodeSlice(enc *msgpack.Encoder, v any) error {
	switch s := v.(type) {
	case []int:
		return encodeEach(enc, s, func(e *msgpack.Encoder, x int) error { return e.EncodeInt(int64(x)) })
	case []int64:
		return encodeEach(enc, s, (*msgpack.Encoder).EncodeInt)
	case []int32:
		return encodeEach(enc, s, func(e *msgpack.Encoder, x int32) error { return e.EncodeInt(int64(x)) })
	case []uint64:
		return encodeEach(enc, s, (*msgpack.Encoder).EncodeUint)
	case []float64:
		return encodeEach(enc, s, (*msgpack.Encoder).EncodeFloat64)
	case []string:
		return encodeEach(enc, s, (*msgpack.Encoder).EncodeString)
	case []bool:
		return encodeEach(enc, s, (*msgpack.Encoder).EncodeBool)
	}
	return enc.Encode(v)
}

// encodeEach writes s as msgpack does a slice: nil, or a length and each
// element written by put.
func encodeEach[E any](enc *msgpack.Encoder, s []E, put func(*msgpack.Encoder, E) error) error {
	if s == nil {
		return enc.EncodeNil()
	}
	if err := enc.EncodeArrayLen(len(s)); err != nil {
		return err
	}
	for _, x := range s {
		if err := put(enc, x); err != nil {
			return err
		}
	}
	return nil
}

// DecodeSlice decodes into ptr, a pointer to a slice, with the fast paths
// of EncodeSlice; it accepts whatever msgpack's Decode would.
func DecodeSlice(dec *msgpack.Decoder, ptr any) error {
	switch p := ptr.(type) {
	case *[]int:
		return decodeEach(dec, p, func(d *msgpack.Decoder) (int, error) {
			x, err := d.DecodeInt64()
			return int(x), err
		})
	case *[]int64:
		return decodeEach(dec, p, (*msgpack.Decoder).DecodeInt64)
	case *[]float64:
		return decodeEach(dec, p, (*msgpack.Decoder).DecodeFloat64)
	case *[]string:
		return decodeEach(dec, p, (*msgpack.Decoder).DecodeString)
	}
	return dec.Decode(ptr)
}

// decodeEach reads a slice written by encodeEach (or msgpack) into p, each
// element read by get.
func decodeEach[E any](dec *msgpack.Decoder, p *[]E, get func(*msgpack.Decoder) (E, error)) error {
	n, err := dec.DecodeArrayLen()
	if err != nil || n < 0 {
		*p = nil
		return err
	}
	s := make([]E, n)
	for i := range s {
		if s[i], err = get(dec); err != nil {
			return err
		}
	}
	*p = s
	return nil
}
