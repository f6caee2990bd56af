package codec_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand"
	"reflect"
	"strings"
	"testing"
	"testing/quick"
	"time"

	"github.com/mpgo/mp/internal/codec"
)

type Point struct{ X, Y int }

func (p Point) String() string { return fmt.Sprintf("(%d,%d)", p.X, p.Y) }

type Holder struct {
	S   fmt.Stringer
	A   any
	E   error
	Ptr *Point
}

type withSkip struct {
	Kept   int
	hidden int `msgpack:"-"`
}

type Node struct {
	V    int
	Next *Node
}

func init() {
	if err := codec.RegisterType(reflect.TypeFor[Point]()); err != nil {
		panic(err)
	}
}

func roundTrip[T any](t *testing.T, in []T) []T {
	t.Helper()
	var out []T
	if err := codec.RoundTrip(in, &out); err != nil {
		t.Fatalf("RoundTrip(%#v): %v", in, err)
	}
	return out
}

func TestRoundTripExact(t *testing.T) {
	check := func(name string, in, out any) {
		t.Helper()
		if !reflect.DeepEqual(in, out) {
			t.Errorf("%s: sent %#v, got %#v", name, in, out)
		}
	}
	anys := []any{int8(-3), int16(300), int32(-70000), int64(1 << 40), 7, uint8(200), uint16(60000),
		uint32(1 << 31), uint64(math.MaxUint64), uint(5), float32(1.5), 2.25, "s", true, nil,
		Point{3, 4}, &Point{5, 6}, []byte("b"), time.Duration(7), complex(1, 2),
		map[string]any{"k": int64(1)}, []any{uint16(1), "x"}}
	check("any", anys, roundTrip(t, anys))
	h := []Holder{{S: time.Duration(5), A: Point{1, 2}, Ptr: &Point{7, 8}}, {}, {E: errors.New("boom")}}
	check("interfaces", h, roundTrip(t, h))
	nils := []struct {
		S []int
		M map[string]int
		B []byte
	}{{}, {S: []int{}, M: map[string]int{}, B: []byte{}}}
	check("nil and empty", nils, roundTrip(t, nils))
	if got := roundTrip(t, nils); got[0].S != nil || got[1].S == nil || got[0].B != nil || got[1].B == nil || got[0].M != nil || got[1].M == nil {
		t.Errorf("nil and empty not kept apart: %#v", got)
	}
	nested := []map[string]map[int][]string{{"a": {1: {"x"}, 2: nil}}, nil}
	check("nested maps", nested, roundTrip(t, nested))
	big := []string{strings.Repeat("x", 1<<20)}
	check("large string", big, roundTrip(t, big))
	list := []*Node{{1, &Node{2, &Node{3, nil}}}, nil}
	check("pointers", list, roundTrip(t, list))
	arr := [][3]complex64{{1, 2i, 3}}
	check("arrays", arr, roundTrip(t, arr))
	skip := roundTrip(t, []withSkip{{Kept: 1, hidden: 2}})
	check("skipped field", []withSkip{{Kept: 1}}, skip)
}

func TestFloats(t *testing.T) {
	in := []float64{math.NaN(), math.Inf(1), math.Inf(-1), math.Copysign(0, -1), math.SmallestNonzeroFloat64}
	out := roundTrip(t, in)
	for i := range in {
		if math.Float64bits(in[i]) != math.Float64bits(out[i]) {
			t.Errorf("float %d: sent %v (%x), got %v (%x)", i, in[i], math.Float64bits(in[i]), out[i], math.Float64bits(out[i]))
		}
	}
	in32 := []any{float32(math.NaN()), float32(math.Inf(-1))}
	out32 := roundTrip(t, in32)
	if f, ok := out32[0].(float32); !ok || !math.IsNaN(float64(f)) {
		t.Errorf("float32 NaN in any: got %#v", out32[0])
	}
}

func TestTimeKeepsInstantAndZone(t *testing.T) {
	ny := time.FixedZone("EST", -5*3600)
	in := []time.Time{
		{}, time.Date(2026, 11, 27, 1, 2, 3, 4, time.UTC), time.Date(2026, 11, 27, 1, 2, 3, 4, ny),
		time.Now(), time.Date(1, 1, 1, 0, 0, 0, 0, time.FixedZone("X", 3600)),
	}
	out := roundTrip(t, in)
	for i := range in {
		n1, o1 := in[i].Zone()
		n2, o2 := out[i].Zone()
		if !in[i].Equal(out[i]) || n1 != n2 || o1 != o2 || in[i].String() != out[i].Round(-1).String() && in[i].Round(0).String() != out[i].String() {
			t.Errorf("time %d: sent %v, got %v", i, in[i], out[i])
		}
	}
	if !out[0].IsZero() || out[1].Location() != time.UTC {
		t.Errorf("zero or UTC time changed: %#v, %v", out[0], out[1].Location())
	}
}

type unexported struct {
	N int
	//lint:ignore U1000 never set or read: the codec must reject a type with an unexported field
	name string
}

type withChan struct{ C chan int }

type stringer struct{ V int }

func (s stringer) String() string { return "" }

func TestCheckRejects(t *testing.T) {
	for _, tc := range []struct {
		t    reflect.Type
		want string
	}{
		{reflect.TypeFor[unexported](), "unexported field name"},
		{reflect.TypeFor[[]withChan](), "at [i].C"},
		{reflect.TypeFor[func()](), "func"},
		{reflect.TypeFor[map[string]*unexported](), "at [value](*).name"},
	} {
		err := codec.Check(tc.t)
		if err == nil || !errors.Is(err, codec.ErrEncoding) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Check(%v) = %v, want an ErrEncoding naming %q", tc.t, err, tc.want)
		}
	}
	if err := codec.Check(reflect.TypeFor[Holder]()); err != nil {
		t.Errorf("Check(Holder) = %v", err)
	}
	type onlyStringer struct{ S interface{ Weird() } }
	if err := codec.CheckInterfaces(reflect.TypeFor[onlyStringer]()); err == nil || !strings.Contains(err.Error(), "RegisterType") {
		t.Errorf("CheckInterfaces with an interface nothing implements = %v", err)
	}
}

func TestUnregisteredInInterfaceFails(t *testing.T) {
	var out []Holder
	err := codec.RoundTrip([]Holder{{}, {S: stringer{1}}}, &out)
	var ie *codec.ItemError
	if !errors.As(err, &ie) || ie.Index != 1 || !errors.Is(err, codec.ErrEncoding) || !strings.Contains(err.Error(), "at .S") || !strings.Contains(err.Error(), "RegisterType[codec_test.stringer]") {
		t.Fatalf("got %v, want item 1's field .S named, with the fix", err)
	}
}

func TestCycleFails(t *testing.T) {
	n := &Node{V: 1}
	n.Next = n
	var out []*Node
	if err := codec.RoundTrip([]*Node{n}, &out); !errors.Is(err, codec.ErrEncoding) || !strings.Contains(err.Error(), "deep") {
		t.Fatalf("a cycle gave %v", err)
	}
}

// Rich is what the property test generates: every kind testing/quick makes.
type Rich struct {
	I   int
	I8  int8
	U64 uint64
	F   float32
	S   string
	B   []byte
	M   map[string][]int16
	P   *Point
	A   [2]uint16
	N   []Rich
	C   complex128
	Ok  bool
	T   map[int64]string
	Arr []*[3]bool
}

func TestPropertyRoundTrip(t *testing.T) {
	cfg := &quick.Config{MaxCount: 300, Rand: rand.New(rand.NewSource(1))}
	f := func(in []Rich) bool {
		var out []Rich
		if err := codec.RoundTrip(in, &out); err != nil {
			t.Log(err)
			return false
		}
		return reflect.DeepEqual(in, out)
	}
	if err := quick.Check(f, cfg); err != nil {
		t.Fatal(err)
	}
}

func TestDecodeGarbageNeverPanics(t *testing.T) {
	var out []Holder
	for _, b := range [][]byte{{0x91, 0x94, 0xc0}, {0x92, 0x92, 0xa3, 'i', 'n', 't'}, {0x91, 0x94, 0x92, 0xa1, 'x', 1}} {
		if err := codec.DecodeBytes(b, &out); err == nil {
			t.Errorf("% x decoded without error", b)
		}
	}
}

// pt is a small struct, as a task argument often is.
type pt struct {
	X, Y int
	Tag  string
}

// The cost pool.CheckEncoding adds per item (see its doc).
func BenchmarkRoundTripInts(b *testing.B) {
	in := make([]int, 1000)
	for b.Loop() {
		var out []int
		codec.RoundTrip(in, &out)
	}
}

func BenchmarkRoundTripStructs(b *testing.B) {
	in := make([]pt, 1000)
	for b.Loop() {
		var out []pt
		codec.RoundTrip(in, &out)
	}
}

// tally unmarshals by adding to what it holds, as a type may that expects
// to be decoded into its zero value.
type tally struct{ N []byte }

func (t tally) MarshalBinary() ([]byte, error) { return t.N, nil }
func (t *tally) UnmarshalBinary(b []byte) error {
	t.N = append(t.N, b...)
	return nil
}

// TestDecodeIntoRoomHoldingValues: DecodeSlice appending within a slice's
// capacity, over items that hold values already (a lost attempt's results
// in the caller's slice), decodes each into a zero item, as into a fresh
// slice.
func TestDecodeIntoRoomHoldingValues(t *testing.T) {
	src := []tally{{N: []byte("ab")}, {N: []byte("c")}}
	b, err := codec.EncodeBytes(src)
	if err != nil {
		t.Fatal(err)
	}
	room := []tally{{N: []byte("old")}, {N: []byte("old")}}
	dst := room[:0:2]
	if err := codec.DecodeBytes(b, &dst); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(dst, src) || &dst[0] != &room[0] {
		t.Errorf("decoded %q (in place: %v), want %q", dst, &dst[0] == &room[0], src)
	}
}
