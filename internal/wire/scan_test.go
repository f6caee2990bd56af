package wire

import (
	"bytes"
	"errors"
	"math"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

func nested(open byte, depth int, inner []byte) []byte {
	return append(bytes.Repeat([]byte{open}, depth), inner...)
}

// nestedMaps is {"k": {"k": … nil}}, depth deep.
func nestedMaps(depth int) []byte {
	return append(bytes.Repeat([]byte{0x81, 0xa1, 'k'}, depth), 0xc0)
}

func mustMarshal(t testing.TB, v any) []byte {
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCheckBody(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, nil},
		{"two values", []byte{0x01, 0xc0}, nil},
		{"arrays at the limit", nested(0x91, maxDepth, []byte{0x01}), nil},
		{"arrays over the limit", nested(0x91, maxDepth+1, []byte{0x01}), errTooDeep},
		{"an empty array at the limit", nested(0x91, maxDepth, []byte{0x90}), nil},
		{"maps at the limit", nestedMaps(maxDepth), nil},
		{"maps over the limit", nestedMaps(maxDepth + 1), errTooDeep},
		{"array16 over the limit", append(bytes.Repeat([]byte{0xdc, 0, 1}, maxDepth+1), 0xc0), errTooDeep},
		{"array32 over the limit", append(bytes.Repeat([]byte{0xdd, 0, 0, 0, 1}, maxDepth+1), 0xc0), errTooDeep},
		{"map16 over the limit", append(bytes.Repeat([]byte{0xde, 0, 1, 0xc0}, maxDepth+1), 0xc0), errTooDeep},
		{"truncated, over the limit", nested(0x91, 2*maxDepth, nil), errTooDeep},
		{"truncated nested", nested(0x91, 100, nil), errTruncated},
		{"wide, not deep", mustMarshal(t, make([][]int, 3*maxDepth)), nil},
		{"deep in the second value", append(mustMarshal(t, "first"), nested(0x91, maxDepth+1, []byte{0x01})...), errTooDeep},
		{"0x91 inside a string", mustMarshal(t, strings.Repeat("\x91", 3*maxDepth)), nil},
		{"0x91 inside bin", mustMarshal(t, bytes.Repeat([]byte{0x91}, 3*maxDepth)), nil},
		{"0x91 inside ext", append([]byte{0xc8, 0x75, 0x30, 0x05}, bytes.Repeat([]byte{0x91}, 30000)...), nil},
		{"0x91 inside fixext", bytes.Repeat(append([]byte{0xd8, 0x05}, bytes.Repeat([]byte{0x91}, 16)...), maxDepth+1), nil},
		{"0xc1", []byte{0x91, 0xc1}, errNotMsgp},
		{"0xc1 before depth", nested(0x91, 100, append([]byte{0xc1}, nested(0x91, maxDepth+1, nil)...)), errNotMsgp},
		// Lengths claimed beyond the body, as in msgpack#401.
		{"array32 of 2³²-1", []byte{0xdd, 0xff, 0xff, 0xff, 0xff, 0x01}, errTruncated},
		{"array32 header alone", []byte{0xdd, 0xff, 0xff, 0xff, 0xff}, errTruncated},
		{"map32 of 2³²-1", []byte{0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 'x', 0x01}, errTruncated},
		{"str32 of 2³²-1", []byte{0xdb, 0xff, 0xff, 0xff, 0xff, 'x'}, errTruncated},
		{"bin32 of 2³²-1", []byte{0xc6, 0xff, 0xff, 0xff, 0xff, 'x'}, errTruncated},
		{"ext32 of 2³²-1", []byte{0xc9, 0xff, 0xff, 0xff, 0xff, 1, 'x'}, errTruncated},
		{"array16 one short", append([]byte{0xdc, 0, 3}, 1, 2), errTruncated},
		{"map one value short", []byte{0x82, 1, 2, 3}, errTruncated},
		{"nested claims", bytes.Repeat([]byte{0xdc, 0xff, 0xff}, 1000), errTruncated},
		{"uint64 cut", []byte{0xcf, 0, 0, 0}, errTruncated},
		{"fixstr cut", []byte{0xa5, 'a', 'b'}, errTruncated},
		{"fixext16 cut", []byte{0xd8, 1, 0}, errTruncated},
		{"str8 length cut", []byte{0xd9}, errTruncated},
	}
	for k := Kind(1); k <= maxKind; k++ {
		tests = append(tests, struct {
			name string
			b    []byte
			want error
		}{"sample " + k.String(), mustMarshal(t, sample[k]), nil})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := checkBody(tt.b); err != tt.want {
				t.Fatalf("checkBody = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestScanValueMatchesMsgpack: scanValue ends every value where msgpack's
// own Skip does.
func TestScanValueMatchesMsgpack(t *testing.T) {
	values := []any{
		nil, true, false, 0, 1, -1, -33, 127, 128, 255, 256, 65535, 65536, int64(math.MaxInt64), int64(math.MinInt64), uint64(math.MaxUint64),
		float32(1.5), 2.5, "", "x", strings.Repeat("y", 31), strings.Repeat("y", 32), strings.Repeat("z", 300), strings.Repeat("z", 70000),
		[]byte{}, []byte("ab"), make([]byte, 300), make([]byte, 70000),
		[]int{}, make([]int, 15), make([]int, 16), make([]int, 70000),
		map[string]int{}, map[string]int{"a": 1}, map[int]string{1: "a", 2: "b"},
		time.Unix(1, 0), time.Unix(1<<40, 5), time.Unix(1<<35, 1).UTC(),
		sample[KindSetup], sample[KindReady], sample[KindConfig], sample[KindRun], sample[KindResult],
		RemoteError{Kind: ErrKindPanic, Stack: strings.Repeat("s", 1000)},
		[]any{[]any{map[string]any{"a": []any{nil, 1.0}}}},
	}
	for _, v := range values {
		b := mustMarshal(t, v)
		for _, extra := range [][]byte{nil, {0x01, 0x02}} {
			in := append(bytes.Clone(b), extra...)
			if end, err := scanValue(in); err != nil || end != len(b) {
				t.Errorf("scanValue(%T % .20x…) = %d, %v; want %d", v, b, end, err, len(b))
			}
		}
		// Inside arrays, first and last (scalars take a fast path that
		// must count them in their container), and cut short.
		in := mustMarshal(t, []any{v, []any{1, v}, v})
		if end, err := scanValue(append(in, 0x01)); err != nil || end != len(in) {
			t.Errorf("scanValue([%T…]) = %d, %v; want %d", v, end, err, len(in))
		}
		if _, err := scanValue(in[:len(in)-1]); err != errTruncated {
			t.Errorf("scanValue([%T…] cut short) = %v, want errTruncated", v, err)
		}
		if len(b) > 1 {
			if _, err := scanValue(b[:len(b)-1]); err != errTruncated {
				t.Errorf("scanValue(%T cut short) = %v, want errTruncated", v, err)
			}
		}
	}
	// Exts of every size, which msgpack writes only for registered types.
	for _, b := range [][]byte{
		{0xd4, 1, 0}, {0xd5, 1, 0, 0}, {0xd6, 1, 0, 0, 0, 0}, {0xd7, 1, 0, 0, 0, 0, 0, 0, 0, 0},
		append([]byte{0xd8, 1}, make([]byte, 16)...),
		{0xc7, 0, 1}, {0xc7, 2, 1, 0, 0}, {0xc8, 0, 2, 1, 0, 0}, {0xc9, 0, 0, 0, 1, 1, 0},
	} {
		if err := msgpack.NewDecoder(bytes.NewReader(b)).Skip(); err != nil {
			t.Fatalf("msgpack Skip(% x): %v", b, err)
		}
		if end, err := scanValue(b); err != nil || end != len(b) {
			t.Errorf("scanValue(% x) = %d, %v", b, end, err)
		}
	}
}

// TestRecvHostileBodies: bodies that would crash the process inside msgpack
// (fatal errors, which no recover catches) are refused by Recv. Either end
// of a connection meets them only from a peer that passed the handshake.
func TestRecvHostileBodies(t *testing.T) {
	const huge = 20 << 20 // overflows the stack in msgpack v5.4.1
	bodies := []struct {
		name string
		k    Kind
		body []byte
	}{
		{"deep arrays", KindRun, nested(0x91, huge, []byte{0x01})},
		{"deep maps", KindConfig, nestedMaps(huge / 3)},
		// An unknown field of a Result's RemoteError, which msgpack skips.
		{"deep in a skipped field", KindResult, append([]byte{0x93, 0x01, 0x81, 0xa1, 'x'}, nested(0x91, huge, []byte{0xc0})...)},
		// msgpack#401: decoded into a []T or an any, msgpack v5.4.1
		// preallocates the claimed length: 64 GiB here.
		{"array32 args", KindRun, []byte{0x93, 0x01, 0xa1, 'f', 0xdd, 0xff, 0xff, 0xff, 0xff, 0x01}},
		{"array32 results", KindResult, []byte{0x93, 0x01, 0xc0, 0xdd, 0xff, 0xff, 0xff, 0xff}},
		{"map32", KindReady, []byte{0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 'x', 0x01}},
		{"claims at every level", KindResult, append([]byte{0x93, 0x01, 0xc0}, bytes.Repeat([]byte{0xdc, 0xff, 0xff}, 30000)...)},
	}
	for _, b := range bodies {
		t.Run(b.name, func(t *testing.T) {
			var buf bytes.Buffer
			c := NewCodec(&buf, 0)
			if err := c.SendRaw(b.k, b.body); err != nil {
				t.Fatal(err)
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, _, err := c.Recv()
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Recv: %v; want ErrMalformed", err)
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > uint64(len(b.body))+1<<20 {
				t.Errorf("Recv allocated %d bytes for a %d-byte frame", n, len(b.body))
			}
		})
	}
	t.Run("binary", func(t *testing.T) {
		var buf bytes.Buffer
		c := NewCodec(&buf, 0)
		c.SendRaw(KindBinary, []byte{0xdd, 0xff, 0xff, 0xff, 0xff})
		if _, body, err := c.Recv(); err != nil || len(body) != 5 {
			t.Fatalf("Recv of a Binary frame: %v", err)
		}
	})
	t.Run("at the limit", func(t *testing.T) {
		var buf bytes.Buffer
		c := NewCodec(&buf, 0)
		c.SendRaw(KindResult, append([]byte{0x93, 0x01, 0xc0}, nested(0x91, maxDepth-1, []byte{0x01})...))
		_, body, err := c.Recv()
		if err != nil {
			t.Fatal(err)
		}
		dec := c.Decoder(body)
		if _, _, err := DecodeResultHeader(dec); err != nil {
			t.Fatal(err)
		}
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		for range maxDepth - 1 {
			v = v.([]any)[0]
		}
		if v != int8(1) {
			t.Fatalf("innermost %#v", v)
		}
	})
}

// BenchmarkCheckBody measures the check on a large Run of small numbers,
// its worst case per byte, against decoding it.
func BenchmarkCheckBody(b *testing.B) {
	args := make([]int, 1<<20)
	for i := range args {
		args[i] = i % 100
	}
	body := mustMarshal(b, []any{1, "f", args})
	b.Run("check", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if err := checkBody(body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			var v any
			if err := msgpack.Unmarshal(body, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
}
