package wire

import (
	"bytes"
	"math"
	"reflect"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// The fast paths write exactly what msgpack's own Encode writes, and read
// back what it reads.
func TestSliceFastPaths(t *testing.T) {
	values := []any{
		[]int{0, 1, -1, 127, 128, -33, 1 << 40, math.MinInt64, math.MaxInt64},
		[]int{}, []int(nil),
		[]int64{5, -5, 1 << 33}, []int32{-1, 1 << 20}, []uint64{0, 1 << 63},
		[]float64{0, -1.5, math.Inf(1)}, []float64(nil),
		[]string{"", "héllo", string(make([]byte, 300))}, []string(nil),
		[]bool{true, false},
	}
	for _, v := range values {
		var fast, slow bytes.Buffer
		ef, es := msgpack.NewEncoder(&fast), msgpack.NewEncoder(&slow)
		ef.UseCompactInts(true)
		es.UseCompactInts(true)
		if err := EncodeSlice(ef, v); err != nil {
			t.Fatal(err)
		}
		if err := es.Encode(v); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(fast.Bytes(), slow.Bytes()) {
			t.Errorf("%T %v: fast path wrote %x, msgpack %x", v, v, fast.Bytes(), slow.Bytes())
		}
		ptr := reflect.New(reflect.TypeOf(v))
		if err := DecodeSlice(msgpack.NewDecoder(bytes.NewReader(slow.Bytes())), ptr.Interface()); err != nil {
			t.Fatalf("%T: %v", v, err)
		}
		want := reflect.New(reflect.TypeOf(v))
		msgpack.NewDecoder(bytes.NewReader(slow.Bytes())).Decode(want.Interface())
		if !reflect.DeepEqual(ptr.Elem().Interface(), want.Elem().Interface()) {
			t.Errorf("%T: fast path read %v, msgpack %v", v, ptr.Elem(), want.Elem())
		}
	}
}
