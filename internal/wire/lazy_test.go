package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"testing"

	"github.com/mpgo/mp/internal/codec"
)

// items returns a Run body as SendRun writes it, with the given items'
// bytes after an array32 header claiming n items.
func runBody(n uint32, items ...byte) []byte {
	b := []byte{0x93, 0x07, 0xa1, 'f', 0xdd, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[5:], n)
	return append(b, items...)
}

// recvRun sends body as a Run and reads it back up to its items.
func recvRun(t *testing.T, body []byte) (*Codec, []byte) {
	t.Helper()
	var buf bytes.Buffer
	c := NewCodec(rw{&buf, &buf}, 0)
	if err := c.SendRaw(KindRun, body); err != nil {
		t.Fatal(err)
	}
	_, got, err := c.Recv()
	if err != nil {
		t.Fatalf("Recv: %v", err)
	}
	return c, got
}

// Bodies whose items are not whole msgpack: Recv leaves them to the read
// of the items, which fails with ErrMalformed whichever way it reads them
// (the fast decoder, the general one through DecodeItems, or the Decoder
// alone), without allocating past the frame's worth; and every later Recv
// fails too.
func TestLazyItemsMalformed(t *testing.T) {
	const huge = 20 << 20
	for _, c := range []struct {
		name string
		body []byte
	}{
		{"deep in an item", runBody(2, append([]byte{0x01}, nested(0x91, huge, []byte{0x01})...)...)},
		{"array32 in an item", runBody(2, 0x01, 0xdd, 0xff, 0xff, 0xff, 0xff, 0x01)},
		{"cut short", runBody(3, 0x01, 0x02, 0xcd, 0x01)},
		{"0xc1", runBody(2, 0x01, 0xc1)},
		{"garbage after the items", runBody(1, 0x01, 0xdc, 0xff, 0xff)},
		{"too deep after the items", runBody(1, append([]byte{0x01}, nested(0x91, maxDepth+1, []byte{0x01})...)...)},
	} {
		t.Run(c.name, func(t *testing.T) {
			if checkBody(c.body) == nil {
				t.Fatal("checkBody passes the body")
			}
			for _, read := range []struct {
				name string
				read func(cd *Codec, body []byte) error
			}{
				{"DecodeItems fast", func(cd *Codec, body []byte) error {
					dec := cd.Decoder(body)
					if _, _, err := DecodeRunHeader(dec); err != nil {
						return err
					}
					var ints []int
					return cd.DecodeItems(dec, &ints)
				}},
				{"DecodeItems general", func(cd *Codec, body []byte) error {
					dec := cd.Decoder(body)
					if _, _, err := DecodeRunHeader(dec); err != nil {
						return err
					}
					var vs []any
					return cd.DecodeItems(dec, &vs)
				}},
				{"Decoder", func(cd *Codec, body []byte) error {
					dec := cd.Decoder(body)
					if _, _, err := DecodeRunHeader(dec); err != nil {
						return err
					}
					return codec.DecodeSlice(dec, new([]any))
				}},
				{"Decode", func(cd *Codec, body []byte) error {
					var v any
					return cd.Decode(body, &v)
				}},
			} {
				cd, body := recvRun(t, c.body)
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				err := read.read(cd, body)
				runtime.ReadMemStats(&after)
				if !errors.Is(err, ErrMalformed) {
					t.Errorf("%s: %v; want ErrMalformed", read.name, err)
				}
				if n := after.TotalAlloc - before.TotalAlloc; n > uint64(len(c.body))+1<<20 {
					t.Errorf("%s allocated %d bytes for a %d-byte body", read.name, n, len(c.body))
				}
				if _, _, err := cd.Recv(); !errors.Is(err, ErrMalformed) {
					t.Errorf("%s: the next Recv: %v; want ErrMalformed", read.name, err)
				}
			}
		})
	}
}

// The items of a Run that Recv leaves unchecked, when whole, decode by
// either path and leave the stream usable; what is not an int is an
// encoding error, not a malformed frame.
func TestLazyItemsWhole(t *testing.T) {
	for _, c := range []struct {
		body []byte
		ints []int
		enc  bool // an encoding error
	}{
		{runBody(3, 0x01, 0xcd, 0x01, 0x00, 0xd0, 0x80), []int{1, 256, -128}, false},
		{runBody(2, 0x01, 0xcb, 0, 0, 0, 0, 0, 0, 0, 0), nil, true}, // a float
		{runBody(1, 0xc0), []int{0}, false},                         // nil as 0: the general path's choice
	} {
		cd, body := recvRun(t, c.body)
		dec := cd.Decoder(body)
		if _, _, err := DecodeRunHeader(dec); err != nil {
			t.Fatal(err)
		}
		var got []int
		err := cd.DecodeItems(dec, &got)
		switch {
		case c.enc && (!errors.Is(err, codec.ErrEncoding) || errors.Is(err, ErrMalformed)):
			t.Errorf("%x: %v; want an encoding error", c.body, err)
		case !c.enc && (err != nil || !equalInts(got, c.ints)):
			t.Errorf("%x: %v, %v; want %v", c.body, got, err, c.ints)
		}
		var buf bytes.Buffer
		cd.r = &buf
		NewCodec(rw{nil, &buf}, 0).SendRaw(KindCancel, []byte{0x91, 0x01})
		if k, _, err := cd.Recv(); err != nil || k != KindCancel {
			t.Errorf("%x: the next Recv: %v %v", c.body, k, err)
		}
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// At the depth limit: the items of a Run are inside the body's array and
// their own, as checkBody counts them on the whole body.
func TestLazyItemsDepth(t *testing.T) {
	for _, depth := range []int{maxDepth - 3, maxDepth - 2, maxDepth - 1} {
		body := runBody(1, nested(0x91, depth, []byte{0x01})...)
		want := checkBody(body)
		cd, got := recvRun(t, body)
		dec := cd.Decoder(got)
		if _, _, err := DecodeRunHeader(dec); err != nil {
			t.Fatal(err)
		}
		err := cd.DecodeItems(dec, new([]any)) // an encoding error: not a 2-array of type and value
		if (want == nil) == errors.Is(err, ErrMalformed) {
			t.Errorf("depth %d: checkBody %v, lazy %v", depth, want, err)
		}
	}
	if checkBody(runBody(1, nested(0x91, maxDepth-2, []byte{0x01})...)) != nil {
		t.Error("the limit moved: maxDepth-2 inside a Run's items should pass")
	}
	// The header's values are checked by Recv, at the same depth as before.
	for _, depth := range []int{maxDepth - 1, maxDepth} {
		body := append([]byte{0x93, 0x01}, nested(0x91, depth, []byte{0xc0})...)
		body = append(body, 0xdd, 0, 0, 0, 0)
		var buf bytes.Buffer
		c := NewCodec(rw{&buf, &buf}, 0)
		c.SendRaw(KindResult, body)
		_, _, err := c.Recv()
		if want := checkBody(body); (want == nil) != (err == nil) {
			t.Errorf("error value %d deep: checkBody %v, Recv %v", depth, want, err)
		}
	}
}

// FuzzLazyItems: for any items after a Run's header, Recv and a read of
// the items together refuse exactly what checkBody refuses of the body,
// whichever type the items are read as.
func FuzzLazyItems(f *testing.F) {
	f.Add(uint32(3), []byte{0x01, 0xcd, 0x01, 0x00, 0xd0, 0x80})
	f.Add(uint32(2), []byte{0x01, 0xc1})
	f.Add(uint32(1), []byte{0x91, 0x91, 0x01})
	f.Add(uint32(2), []byte{0xa1, 'x', 0xc4, 0x01, 'y'})
	f.Fuzz(func(t *testing.T, n uint32, items []byte) {
		body := runBody(n, items...)
		want := checkBody(body)
		for _, ptr := range []func() any{
			func() any { return new([]int) },
			func() any { return new([]int32) },
			func() any { return new([]string) },
			func() any { return new([]any) },
		} {
			var buf bytes.Buffer
			c := NewCodec(rw{&buf, io.Discard}, 0)
			buf.Write(frame(KindRun, body))
			_, got, err := c.Recv()
			if err == nil {
				dec := c.Decoder(got)
				if _, _, err = DecodeRunHeader(dec); err != nil {
					t.Fatalf("header of %x: %v", body, err)
				}
				err = c.DecodeItems(dec, ptr())
				if err != nil && !errors.Is(err, ErrMalformed) {
					err = nil // an encoding error: whole msgpack of another type
				}
				if err == nil {
					err = c.checked() // what follows the items
				}
			}
			if (want == nil) != (err == nil) {
				t.Fatalf("%x as %T: checkBody %v, Recv and DecodeItems %v", body, ptr(), want, err)
			}
		}
	})
}
