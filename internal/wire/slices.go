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
		return encodeInts(enc, s)
	case []int64:
		return encodeInts(enc, s)
	case []int32:
		return encodeInts(enc, s)
	case []uint64:
		if s == nil {
			return enc.EncodeNil()
		}
		if err := enc.EncodeArrayLen(len(s)); err != nil {
			return err
		}
		for _, x := range s {
			if err := enc.EncodeUint(x); err != nil {
				return err
			}
		}
		return nil
	case []float64:
		if s == nil {
			return enc.EncodeNil()
		}
		if err := enc.EncodeArrayLen(len(s)); err != nil {
			return err
		}
		for _, x := range s {
			if err := enc.EncodeFloat64(x); err != nil {
				return err
			}
		}
		return nil
	case []string:
		if s == nil {
			return enc.EncodeNil()
		}
		if err := enc.EncodeArrayLen(len(s)); err != nil {
			return err
		}
		for _, x := range s {
			if err := enc.EncodeString(x); err != nil {
				return err
			}
		}
		return nil
	case []bool:
		if s == nil {
			return enc.EncodeNil()
		}
		if err := enc.EncodeArrayLen(len(s)); err != nil {
			return err
		}
		for _, x := range s {
			if err := enc.EncodeBool(x); err != nil {
				return err
			}
		}
		return nil
	}
	return enc.Encode(v)
}

func encodeInts[I int | int64 | int32](enc *msgpack.Encoder, s []I) error {
	if s == nil {
		return enc.EncodeNil()
	}
	if err := enc.EncodeArrayLen(len(s)); err != nil {
		return err
	}
	for _, x := range s {
		if err := enc.EncodeInt(int64(x)); err != nil {
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
		return decodeInts(dec, p)
	case *[]int64:
		return decodeInts(dec, p)
	case *[]float64:
		n, err := dec.DecodeArrayLen()
		if err != nil || n < 0 {
			*p = nil
			return err
		}
		s := make([]float64, n)
		for i := range s {
			if s[i], err = dec.DecodeFloat64(); err != nil {
				return err
			}
		}
		*p = s
		return nil
	case *[]string:
		n, err := dec.DecodeArrayLen()
		if err != nil || n < 0 {
			*p = nil
			return err
		}
		s := make([]string, n)
		for i := range s {
			if s[i], err = dec.DecodeString(); err != nil {
				return err
			}
		}
		*p = s
		return nil
	}
	return dec.Decode(ptr)
}

func decodeInts[I int | int64](dec *msgpack.Decoder, p *[]I) error {
	n, err := dec.DecodeArrayLen()
	if err != nil || n < 0 {
		*p = nil
		return err
	}
	s := make([]I, n)
	for i := range s {
		x, err := dec.DecodeInt64()
		if err != nil {
			return err
		}
		s[i] = I(x)
	}
	*p = s
	return nil
}
