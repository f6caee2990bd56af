package wire

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
	"time"

	"github.com/mpgo/mp/internal/codec"
	"github.com/vmihailenco/msgpack/v5"
)

type fuzzPoint struct{ X, Y int }

func (p fuzzPoint) String() string { return "" }

func init() {
	if err := codec.RegisterType(reflect.TypeFor[fuzzPoint]()); err != nil {
		panic(err)
	}
}

// Fuzzed is a type with every kind of field the decoder handles.
type Fuzzed struct {
	I   int8
	U   uint32
	F   float32
	S   string
	B   []byte
	A   any
	St  interface{ String() string }
	T   time.Time
	M   map[string]*Fuzzed
	Arr [2]complex64
	E   error
}

// FuzzItems: whatever the bytes of a Result's items, as the driver reads
// them (Recv checks the body, then the codec decodes the items into the
// chunk's type), decoding never panics or allocates past the frame's
// worth, fails only with ErrEncoding, and what decodes encodes again to
// a value that decodes the same.
func FuzzItems(f *testing.F) {
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(true)
	seed := []Fuzzed{{I: -1, U: 7, S: "x", B: []byte{1}, A: fuzzPoint{1, 2}, St: time.Duration(3), T: time.Unix(5, 6).In(time.FixedZone("Z", 60)),
		M: map[string]*Fuzzed{"k": {E: errors.New("e")}}, Arr: [2]complex64{1, 2i}}, {}}
	if err := codec.EncodeSlice(enc, seed); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte{0x91, 0x9b, 0xff})
	f.Add([]byte{0x91, 0x92, 0xa3, 'i', 'n', 't', 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		c := NewCodec(rw{bytes.NewReader(frame(KindResult, append([]byte{0x93, 0x01, 0xc0}, b...))), io.Discard}, 1<<16)
		k, body, err := c.Recv()
		if err != nil {
			return // not whole msgpack: never decoded
		}
		dec := c.Decoder(body)
		if _, _, err := DecodeResultHeader(dec); err != nil || k != KindResult {
			t.Fatalf("header: %v %v", k, err)
		}
		var out []Fuzzed
		if err := codec.DecodeSlice(dec, &out); err != nil {
			if !errors.Is(err, codec.ErrEncoding) {
				t.Fatalf("error %v does not wrap ErrEncoding", err)
			}
			return
		}
		var again bytes.Buffer
		e := msgpack.NewEncoder(&again)
		e.UseCompactInts(true)
		if err := codec.EncodeSlice(e, out); err != nil {
			return // e.g. a NaN-free check is not the point; only panics are
		}
		var back []Fuzzed
		if err := codec.DecodeBytes(again.Bytes(), &back); err != nil {
			t.Fatalf("re-encoded value does not decode: %v", err)
		}
		if len(back) != len(out) || (len(out) > 0 && reflect.TypeOf(back[0]) != reflect.TypeOf(out[0])) {
			t.Fatalf("re-decoded %d items, want %d", len(back), len(out))
		}
	})
}
