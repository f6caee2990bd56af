package pooltest

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mpgo/mp/pool"
)

// The round-trip section: values of ordinary Go types sent to a function
// and back. On every backend each either comes back exactly as it was sent,
// or the call fails the same way, with pool.ErrEncoding naming the item,
// or registration refuses the function. (A local pool checks this through
// pool.CheckEncoding, which the suite turns on.)

func init() {
	pool.MustRegister(EchoValues)
	pool.MustRegister(EchoAny)
	pool.MustRegister(Unregistered)
	pool.MustRegister(MeasureStats)
	pool.MustRegisterType[Point]()
}

// Values holds one of each kind of value the round-trip section sends.
type Values struct {
	Any        []any
	Stringer   fmt.Stringer
	Times      []time.Time
	NilSlice   []int
	EmptySlice []int
	NilMap     map[string]int
	EmptyMap   map[string]int
	Ptr        *Point
	NilPtr     *Point
	Nested     map[string]map[int][]string
	Bytes      []byte
	NilBytes   []byte
	Big        string
	Floats     []float64
	Err        error
	Array      [3]int8
	Complex    complex128
}

// EchoValues returns v.
func EchoValues(v Values) Values { return v }

// EchoAny returns v.
func EchoAny(v any) any { return v }

// Opaque is a type no one registers: in an interface it cannot cross.
type Opaque struct{ N int }

// Unregistered returns an Opaque for 3, and x itself otherwise.
func Unregistered(x int) any {
	if x == 3 {
		return Opaque{x}
	}
	return x
}

// Stats is a result with an interface-typed field, as users write them.
type Stats struct {
	Name string
	Took fmt.Stringer
}

// MeasureStats reports a duration in a fmt.Stringer field.
func MeasureStats(ms int) Stats {
	return Stats{Name: fmt.Sprint("job ", ms), Took: time.Duration(ms) * time.Millisecond}
}

// counter has an unexported field: it cannot cross, and registration says so.
type counter struct {
	N    int
	name string
}

func bump(c counter) counter { return counter{c.N + 1, c.name + "!"} }

func sampleValues() Values {
	est := time.FixedZone("EST", -5*3600)
	return Values{
		Any: []any{int8(-8), int16(-16), int32(-32), int64(-64), -1, uint8(8), uint16(16), uint32(32),
			uint64(math.MaxUint64), uint(1), float32(1.5), 2.5, math.Inf(1), "s", true, nil,
			Point{3, 4, "p"}, &Point{5, 6, "q"}, []byte("b"), time.Duration(7),
			map[string]any{"k": int64(1 << 40), "n": map[string]any{"x": []any{"y"}}}},
		Stringer:   time.Duration(90) * time.Second,
		Times:      []time.Time{{}, time.Date(2026, 11, 27, 1, 2, 3, 4, time.UTC), time.Date(2026, 6, 1, 12, 0, 0, 0, est), time.Now(), time.Now().In(time.FixedZone("", 5*3600+1800))},
		EmptySlice: []int{},
		EmptyMap:   map[string]int{},
		Ptr:        &Point{1, 2, "r"},
		Nested:     map[string]map[int][]string{"a": {1: {"x", ""}, 2: nil, 3: {}}, "b": nil},
		Bytes:      []byte{0, 1, 255},
		Big:        strings.Repeat("big ", 1<<18),
		Floats:     []float64{math.NaN(), math.Inf(1), math.Inf(-1), math.Copysign(0, -1), math.SmallestNonzeroFloat64},
		Err:        errors.New("a wrapped cause"),
		Array:      [3]int8{-1, 0, 1},
		Complex:    complex(1.5, -2),
	}
}

// diffValues says how got differs from want, or returns "".
func diffValues(want, got Values) string {
	var diffs []string
	for i := range max(len(want.Any), len(got.Any)) {
		if i >= len(want.Any) || i >= len(got.Any) {
			diffs = append(diffs, fmt.Sprintf("Any has %d items, want %d", len(got.Any), len(want.Any)))
			break
		}
		w, g := want.Any[i], got.Any[i]
		if reflect.TypeOf(w) != reflect.TypeOf(g) || !reflect.DeepEqual(w, g) {
			diffs = append(diffs, fmt.Sprintf("Any[%d] = %#v (%T), want %#v (%T)", i, g, g, w, w))
		}
	}
	if reflect.TypeOf(got.Stringer) != reflect.TypeOf(want.Stringer) || got.Stringer.String() != want.Stringer.String() {
		diffs = append(diffs, fmt.Sprintf("Stringer = %#v, want %#v", got.Stringer, want.Stringer))
	}
	for i := range want.Times {
		if i >= len(got.Times) {
			diffs = append(diffs, "Times is short")
			break
		}
		w, g := want.Times[i], got.Times[i]
		wn, wo := w.Zone()
		gn, goff := g.Zone()
		if !w.Equal(g) || wn != gn || wo != goff || w.IsZero() != g.IsZero() {
			diffs = append(diffs, fmt.Sprintf("Times[%d] = %v, want %v (the instant and the zone's name and offset)", i, g, w))
		}
	}
	if got.NilSlice != nil || got.EmptySlice == nil || len(got.EmptySlice) != 0 {
		diffs = append(diffs, fmt.Sprintf("nil and empty slices: %#v, %#v", got.NilSlice, got.EmptySlice))
	}
	if got.NilMap != nil || got.EmptyMap == nil || len(got.EmptyMap) != 0 {
		diffs = append(diffs, fmt.Sprintf("nil and empty maps: %#v, %#v", got.NilMap, got.EmptyMap))
	}
	if got.NilBytes != nil || got.Bytes == nil {
		diffs = append(diffs, fmt.Sprintf("nil and empty bytes: %#v, %#v", got.NilBytes, got.Bytes))
	}
	if got.NilPtr != nil || got.Ptr == nil || *got.Ptr != *want.Ptr {
		diffs = append(diffs, fmt.Sprintf("pointers: %v, %v", got.NilPtr, got.Ptr))
	}
	for _, f := range []struct {
		name      string
		want, got any
	}{
		{"Nested", want.Nested, got.Nested}, {"Bytes", want.Bytes, got.Bytes}, {"Big", want.Big, got.Big},
		{"Array", want.Array, got.Array}, {"Complex", want.Complex, got.Complex},
	} {
		if !reflect.DeepEqual(f.want, f.got) {
			diffs = append(diffs, fmt.Sprintf("%s = %.80v, want %.80v", f.name, f.got, f.want))
		}
	}
	for i := range want.Floats {
		if i >= len(got.Floats) || math.Float64bits(want.Floats[i]) != math.Float64bits(got.Floats[i]) {
			diffs = append(diffs, fmt.Sprintf("Floats = %v, want %v", got.Floats, want.Floats))
			break
		}
	}
	if got.Err == nil || got.Err.Error() != want.Err.Error() {
		diffs = append(diffs, fmt.Sprintf("Err = %v, want an error saying %q", got.Err, want.Err))
	}
	return strings.Join(diffs, "\n")
}

func (s *suite) roundTrip(t *testing.T) {
	p := s.open(t, pool.CheckEncoding(true))
	ctx := testCtx(t)
	want := sampleValues()
	got, err := pool.Apply(ctx, p, EchoValues, want)
	if err != nil {
		t.Fatal(err)
	}
	if d := diffValues(want, got); d != "" {
		t.Errorf("values changed on the way:\n%s", d)
	}
	// A struct result with an interface field, of a registered type.
	st, err := pool.Map(ctx, p, MeasureStats, []int{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := st[1].Took.(time.Duration); !ok || d != 2*time.Millisecond {
		t.Errorf("MeasureStats(2).Took = %#v", st[1].Took)
	}
}

func (s *suite) roundTripFailures(t *testing.T) {
	p := s.open(t, pool.CheckEncoding(true))
	ctx := testCtx(t)
	// An argument in an interface whose type is not registered.
	_, err := pool.Map(ctx, p, EchoAny, []any{1, Opaque{2}, 3}, pool.Chunksize(3))
	te := checkTaskError(t, err, "EchoAny", 1, "pooltest.Opaque")
	if !errors.Is(te, pool.ErrEncoding) || !strings.Contains(err.Error(), "RegisterType") {
		t.Errorf("unregistered argument type: %v, want ErrEncoding with the fix", err)
	}
	// A result likewise.
	_, err = pool.Map(ctx, p, Unregistered, ints(5), pool.Chunksize(5))
	te = checkTaskError(t, err, "Unregistered", 3, "pooltest.Opaque")
	if !errors.Is(te, pool.ErrEncoding) {
		t.Errorf("unregistered result type: %v, want ErrEncoding", err)
	}
	// A type with an unexported field is refused at registration, with the
	// field and the fix.
	err = pool.Register(bump)
	if err == nil || !strings.Contains(err.Error(), "unexported field name") || !strings.Contains(err.Error(), "msgpack:\"-\"") {
		t.Errorf("Register(bump) = %v, want the unexported field named", err)
	}
	// The pool still works.
	if got, err := pool.Apply(ctx, p, Square, 7); err != nil || got != 49 {
		t.Errorf("after encoding errors: %v, %v", got, err)
	}
}
