package codec_test

import (
	"bytes"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/mpgo/mp/internal/codec"
	"github.com/vmihailenco/msgpack/v5"
)

// general encodes s with the general path: an Encoder and ItemEncoder,
// item by item, as the wire did before the fast path.
func general(t testing.TB, s any) []byte {
	var buf bytes.Buffer
	e := msgpack.NewEncoder(&buf)
	e.UseCompactInts(true)
	n, item := codec.ItemEncoder(s)
	for i := range max(n, 0) {
		if err := item(e, i); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// generalDecode decodes b with DecodeSlice through a Decoder into a new
// slice of the type of ptr's element.
func generalDecode(b []byte, ptr any) (any, error) {
	p := reflect.New(reflect.TypeOf(ptr).Elem())
	err := codec.DecodeSlice(msgpack.NewDecoder(bytes.NewReader(b)), p.Interface())
	return p.Elem().Interface(), err
}

// scalars is a struct of every scalar kind, which takes a plan.
type scalars struct {
	I    int
	I8   int8
	I16  int16
	I32  int32
	I64  int64
	U    uint
	U8   uint8
	U16  uint16
	U32  uint32
	U64  uint64
	P    uintptr
	F    float64
	S    string
	B    bool
	C    celsius
	skip int `msgpack:"-"`
}

type celsius float64

// wide has more fields than a fixarray holds.
type wide struct{ A, B, C, D, E, F, G, H, I, J, K, L, M, N, O, P, Q int8 }

var fastCases = []any{
	[]scalars{{}, {I: -1, I8: -128, I16: math.MinInt16, I32: math.MinInt32, I64: math.MinInt64, U: math.MaxUint, U8: 255, U16: 65535,
		U32: math.MaxUint32, U64: math.MaxUint64, P: 7, F: -2.5, S: "héllo", B: true, C: 36.6, skip: 9}},
	[]wide{{}, {A: 1, Q: -1}},
	[]pt{{1, 2, "x"}, {-300, 70000, ""}},
	// Converted at run time: on 32-bit platforms the large ones wrap.
	conv[int]([]int64{0, 1, -1, 127, 128, -32, -33, -128, -129, 255, 256, 65535, 65536, -32768, -32769,
		math.MaxInt32, math.MaxInt32 + 1, math.MinInt32, math.MinInt32 - 1, math.MaxUint32, math.MaxUint32 + 1, math.MaxInt64, math.MinInt64}),
	[]int64{0, -5, 1 << 40, math.MinInt64},
	[]int32{0, -5, 1 << 20, math.MinInt32, math.MaxInt32},
	conv[uint]([]uint64{0, 127, 128, 255, 256, 65535, 65536, math.MaxUint32, math.MaxUint32 + 1, math.MaxUint64}),
	[]uint64{0, 1, math.MaxUint64},
	[]float64{0, math.Copysign(0, -1), 1.5, math.Inf(1), math.Inf(-1), math.MaxFloat64, math.SmallestNonzeroFloat64, 3},
	[]string{"", "a", string(make([]byte, 31)), string(make([]byte, 32)), string(make([]byte, 255)), string(make([]byte, 256)), string(make([]byte, 65535)), string(make([]byte, 65536)), "héllo"},
	[]bool{true, false, true},
	[][]byte{nil, {}, {1, 2, 3}, make([]byte, 255), make([]byte, 256), make([]byte, 65536)},
	[]int{},
	[]string(nil),
}

func conv[T, E int | uint | int64 | uint64](s []E) []T {
	out := make([]T, len(s))
	for i, x := range s {
		out[i] = T(x)
	}
	return out
}

// TestFastEqualsGeneral: for every scalar type with a fast path, the fast
// encoder writes the general path's bytes, and the fast decoder gives the
// general path's value.
func TestFastEqualsGeneral(t *testing.T) {
	for _, s := range fastCases {
		n := reflect.ValueOf(s).Len()
		want := general(t, s)
		got, w, ok := codec.AppendItems(nil, s, 0, n, math.MaxInt)
		if !ok || w != n {
			t.Fatalf("%T: AppendItems = %d items, %v", s, w, ok)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%T: fast bytes\n%x\ngeneral\n%x", s, got, want)
		}
		whole, err := codec.EncodeBytes(s)
		if err != nil {
			t.Fatal(err)
		}
		checkDecode(t, whole, s)
	}
}

// checkDecode compares DecodeFast with DecodeSlice on b, an array, for a
// slice of the type of like.
func checkDecode(t *testing.T, b []byte, like any) {
	t.Helper()
	ptr := reflect.New(reflect.TypeOf(like))
	used, ok := codec.DecodeFast(b, ptr.Interface())
	if !ok {
		if !ptr.Elem().IsZero() {
			t.Errorf("%T: DecodeFast gave up but changed the slice to %v", like, ptr.Elem())
		}
		return
	}
	// Only now is b known to be whole msgpack, which the general path
	// needs (the wire checks a frame's body before decoding it).
	want, werr := generalDecode(b, ptr.Interface())
	if werr != nil {
		t.Fatalf("%T %x: fast decoded %v, general failed: %v", like, b, ptr.Elem(), werr)
	}
	got := ptr.Elem().Interface()
	if !reflect.DeepEqual(got, want) && !sameEncoding(got, want) {
		t.Errorf("%T %x: fast %#v, general %#v", like, b, got, want)
	}
	if used > len(b) {
		t.Errorf("used %d of %d bytes", used, len(b))
	}
	// The array ends where a Decoder says it does.
	d := msgpack.NewDecoder(bytes.NewReader(b))
	if err := d.Skip(); err == nil {
		rest := d.Buffered().(*bytes.Reader).Len()
		if used != len(b)-rest {
			t.Errorf("%T %x: fast used %d bytes, the array is %d", like, b, used, len(b)-rest)
		}
	}
}

// sameEncoding reports whether a and b encode to the same bytes: equal
// values, NaNs included (DeepEqual finds a NaN unequal to itself, in a
// slice or in a struct's field, and the codec keeps a NaN's bits).
func sameEncoding(a, b any) bool {
	ea, erra := codec.EncodeBytes(a)
	eb, errb := codec.EncodeBytes(b)
	return erra == nil && errb == nil && bytes.Equal(ea, eb)
}

// TestFastLimit: AppendItems stops before the item that would pass the
// limit, and writes nothing of it.
func TestFastLimit(t *testing.T) {
	s := []int{1, 300, 70000, 2}
	b, n, _ := codec.AppendItems([]byte{0xff}, s, 0, 4, 1+1+3)
	if n != 2 || !bytes.Equal(b, []byte{0xff, 0x01, 0xcd, 0x01, 0x2c}) {
		t.Errorf("limit 5: %d items, %x", n, b)
	}
	b, n, _ = codec.AppendItems(nil, s, 2, 4, 100)
	if n != 2 || !bytes.Equal(b, []byte{0xce, 0, 1, 0x11, 0x70, 0x02}) {
		t.Errorf("from 2: %d items, %x", n, b)
	}
	if _, _, ok := codec.AppendItems(nil, []int8{1}, 0, 1, 100); ok {
		t.Error("[]int8 has no fast path, AppendItems said it had")
	}
	type withBytes struct{ B []byte }
	if _, _, ok := codec.AppendItems(nil, []withBytes{{}}, 0, 1, 100); ok {
		t.Error("a struct with a []byte has no plan, AppendItems said it had")
	}
	b, n, _ = codec.AppendItems(nil, []pt{{1, 2, "ab"}, {3, 4, "cd"}}, 0, 2, 7)
	if n != 1 || !bytes.Equal(b, []byte{0x93, 1, 2, 0xa2, 'a', 'b'}) {
		t.Errorf("structs, limit 7: %d items, %x", n, b)
	}
}

// TestFastGivesUp: on what an Encoder does not write for the type, the fast
// decoder leaves the input to the general path.
func TestFastGivesUp(t *testing.T) {
	for _, c := range []struct {
		b    []byte
		like any
	}{
		{[]byte{0x91, 0xc0}, []int{}},                            // nil as 0: the general path's choice
		{[]byte{0x91, 0xcb, 0, 0, 0, 0, 0, 0, 0, 0}, []int{}},    // a float
		{[]byte{0x91, 0xd2, 0x80, 0, 0, 0}, []uint{}},            // negative
		{[]byte{0x91, 0xcf, 0xff, 0, 0, 0, 0, 0, 0, 0}, []int{}}, // above MaxInt64
		{[]byte{0x91, 0xd3, 0, 0, 0, 1, 0, 0, 0, 0}, []int32{}},  // out of int32's range
		{[]byte{0x91, 0x05}, []float64{}},
		{[]byte{0x91, 0xc4, 0x01, 'x'}, []string{}}, // bin as a string
		{[]byte{0x91, 0xa1, 'x'}, [][]byte{}},       // str as bytes
		{[]byte{0x92, 0x01}, []int{}},               // cut short
		{[]byte{0xdd, 0xff, 0xff, 0xff, 0xff, 0x01}, []int{}},
		{[]byte{0x81, 0x01, 0x02}, []int{}}, // a map
		{[]byte{}, []bool{}},
		{[]byte{0x91, 0x92, 0x01, 0x02}, []pt{}},                     // two fields of three
		{[]byte{0x91, 0x93, 0x01, 0x02, 0xc0}, []pt{}},               // nil as a string
		{[]byte{0x91, 0xdc, 0x00, 0x03, 0x01, 0x02, 0xa0}, []pt{}},   // array 16 header
		{[]byte{0x91, 0xdc, 0x00, 0x11, 0xd1, 0x01, 0x00}, []wide{}}, // 256 in an int8
	} {
		ptr := reflect.New(reflect.TypeOf(c.like))
		if _, ok := codec.DecodeFast(c.b, ptr.Interface()); ok {
			t.Errorf("%T %x: DecodeFast took it as %v", c.like, c.b, ptr.Elem())
		}
		if !ptr.Elem().IsNil() {
			t.Errorf("%T %x: DecodeFast changed the slice", c.like, c.b)
		}
	}
}

// FuzzFast: on any bytes, for every fast type, DecodeFast either gives up
// or agrees with DecodeSlice; and what it decodes encodes back, by both
// paths, to the same bytes.
func FuzzFast(f *testing.F) {
	for _, s := range fastCases {
		b, err := codec.EncodeBytes(s)
		if err != nil {
			f.Fatal(err)
		}
		if len(b) < 1024 { // large seeds make the fuzzer's minimizing crawl
			f.Add(b)
		}
	}
	f.Add([]byte{0x93, 0xc0, 0xcc, 0x80, 0xd0, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, like := range []any{[]int{}, []int64{}, []int32{}, []uint{}, []uint64{}, []float64{}, []string{}, []bool{}, [][]byte{}, []scalars{}, []wide{}, []pt{}} {
			checkDecode(t, b, like)
			ptr := reflect.New(reflect.TypeOf(like))
			if _, ok := codec.DecodeFast(b, ptr.Interface()); !ok {
				continue
			}
			s := ptr.Elem().Interface()
			n := ptr.Elem().Len()
			fast, _, _ := codec.AppendItems(nil, s, 0, n, math.MaxInt)
			if want := general(t, s); !bytes.Equal(fast, want) {
				t.Fatalf("%T %v: fast bytes %x, general %x", s, s, fast, want)
			}
		}
	})
}

// mixedInts returns n integers drawn from every encoding's range, mostly
// the small ones that the tight loops take, some of the others in runs and
// alone, so that the loops stop and start again anywhere in a block.
func mixedInts(r *rand.Rand, n int) []int64 {
	edges := []int64{0, 127, 128, -32, -33, 255, 256, 65535, 65536, math.MaxUint32, math.MaxUint32 + 1,
		math.MinInt8, math.MinInt8 - 1, math.MinInt16, math.MinInt16 - 1, math.MinInt32, math.MinInt32 - 1,
		math.MaxInt32, math.MaxInt32 + 1, math.MaxInt64, math.MinInt64}
	s := make([]int64, n)
	for i := range s {
		switch r.IntN(10) {
		case 0:
			s[i] = edges[r.IntN(len(edges))]
		case 1:
			s[i] = r.Int64() >> r.IntN(64)
		case 2:
			s[i] = -r.Int64N(1 << 31)
		default:
			s[i] = r.Int64N(300_000) - 40
		}
	}
	return s
}

// TestFastIntsBlocks: the block-wise encoder and the tight decoding loop
// give the general path's bytes and values at every length around a
// block's, from any start, under any limit, for each integer type.
func TestFastIntsBlocks(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int{0, 1, 2, 8, 9, 10, 1023, 1024, 1025, 2049, 5000} {
		s64 := mixedInts(r, size)
		for _, s := range []any{s64, conv[int](s64), conv32(s64)} {
			v := reflect.ValueOf(s)
			n := v.Len()
			from := 0
			if n > 2 {
				from = r.IntN(n / 2)
			}
			want := general(t, v.Slice(from, n).Interface())
			got, w, ok := codec.AppendItems([]byte{0xaa}, s, from, n, math.MaxInt)
			if !ok || w != n-from || !bytes.Equal(got[1:], want) || got[0] != 0xaa {
				t.Fatalf("%T n=%d from %d: %d items, equal %v", s, n, from, w, bytes.Equal(got[1:], want))
			}
			// Under a limit: the items that fit, each whole, and no more.
			limit := 1 + r.IntN(len(want)+1)
			got, w, _ = codec.AppendItems([]byte{0xaa}, s, from, n, limit)
			if fit := general(t, v.Slice(from, from+w).Interface()); !bytes.Equal(got[1:], fit) || len(got) > limit {
				t.Fatalf("%T n=%d limit %d: %d items in %d bytes, not the general path's", s, n, limit, w, len(got))
			}
			if from+w < n {
				if next := general(t, v.Slice(from+w, from+w+1).Interface()); len(got)+len(next) <= limit {
					t.Fatalf("%T n=%d limit %d: stopped at %d items, with room for the next", s, n, limit, w)
				}
			}
			whole, err := codec.EncodeBytes(s)
			if err != nil {
				t.Fatal(err)
			}
			checkDecode(t, whole, s)
			// Appending to a slice that holds items already.
			ptr := reflect.New(v.Type())
			ptr.Elem().Set(reflect.AppendSlice(reflect.MakeSlice(v.Type(), 0, 1), v.Slice(0, min(n, 1))))
			if _, ok := codec.DecodeFast(whole, ptr.Interface()); !ok {
				t.Fatalf("%T n=%d: DecodeFast gave up on its own encoding", s, n)
			}
			if got := ptr.Elem().Slice(min(n, 1), ptr.Elem().Len()).Interface(); !reflect.DeepEqual(got, s) {
				t.Fatalf("%T n=%d: appended %v", s, n, got)
			}
		}
	}
}

// conv32 keeps the numbers of s that fit in an int32, so that []int32
// gets the same mix.
func conv32(s []int64) []int32 {
	out := make([]int32, 0, len(s))
	for _, x := range s {
		if x == int64(int32(x)) {
			out = append(out, int32(x))
		}
	}
	return out
}

// TestFastIntsOutOfRange: a number over an int32's range in the middle of
// small ones, where the tight loop reads it, makes DecodeFast give up.
func TestFastIntsOutOfRange(t *testing.T) {
	s := make([]int64, 40)
	for i := range s {
		s[i] = int64(i * 1000)
	}
	for _, bad := range []int64{math.MaxInt32 + 1, math.MinInt32 - 1, math.MaxUint32} {
		for _, at := range []int{0, 20, 39} {
			s[at] = bad
			b, err := codec.EncodeBytes(s)
			if err != nil {
				t.Fatal(err)
			}
			var got []int32
			if _, ok := codec.DecodeFast(b, &got); ok || got != nil {
				t.Errorf("%d at %d: DecodeFast into []int32 gave %v, %v", bad, at, got, ok)
			}
			s[at] = 1
		}
	}
}
