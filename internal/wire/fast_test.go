package wire

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

// Named types of scalars take the codec's general path (reflection); the
// same values in the plain types take its fast path.
type (
	slowInt    int
	slowString string
)

// TestSendItemsFastEqualsGeneral: a chunk of plain scalars goes out in the
// same frames as the same values in named types (the general path) do, at
// frame limits that split it into several, and is read back the same.
func TestSendItemsFastEqualsGeneral(t *testing.T) {
	big := int64(1) << 40 // wraps to 0 on 32-bit platforms
	ints := []int{0, 1, -1, 300, -300, 70000, int(big), int(-big)}
	strs := []string{"", "a", strings.Repeat("x", 40), strings.Repeat("y", 300)}
	for _, c := range []struct{ fast, slow any }{
		{ints, convert[slowInt](ints)},
		{strs, convert[slowString](strs)},
	} {
		for _, max := range []int{1 << 16, 40, 20} {
			fast, nf, errf := sendAll(c.fast, max)
			slow, ns, errs := sendAll(c.slow, max)
			if !bytes.Equal(fast, slow) || !reflect.DeepEqual(nf, ns) || (errf == nil) != (errs == nil) {
				t.Errorf("%T, limit %d: fast %x (%v, %v), general %x (%v, %v)", c.fast, max, fast, nf, errf, slow, ns, errs)
			}
			var tf, ts *TooLargeError
			if errors.As(errf, &tf) != errors.As(errs, &ts) || tf != nil && *tf != *ts {
				t.Errorf("%T, limit %d: fast %v, general %v", c.fast, max, errf, errs)
			}
			if errf != nil {
				continue
			}
			// Read back through DecodeItems, which takes the fast path for
			// the plain type.
			r := NewCodec(rw{bytes.NewReader(fast), io.Discard}, max)
			got := reflect.New(reflect.TypeOf(c.fast))
			for {
				_, body, err := r.Recv()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				dec := r.Decoder(body)
				if _, _, err := DecodeRunHeader(dec); err != nil {
					t.Fatal(err)
				}
				if err := r.DecodeItems(dec, got.Interface()); err != nil {
					t.Fatal(err)
				}
				if dec.Buffered().(interface{ Len() int }).Len() != 0 {
					t.Fatalf("bytes left after the items")
				}
			}
			if !reflect.DeepEqual(got.Elem().Interface(), c.fast) {
				t.Errorf("%T, limit %d: read back %v", c.fast, max, got.Elem())
			}
		}
	}
}

func convert[T any, E any](s []E) []T {
	out := make([]T, len(s))
	for i := range s {
		out[i] = reflect.ValueOf(s[i]).Convert(reflect.TypeFor[T]()).Interface().(T)
	}
	return out
}

// sendAll sends s as Runs, as the driver does, until every item is sent or
// one fails; it returns the bytes written and the items per Run.
func sendAll(s any, max int) ([]byte, []int, error) {
	var out bytes.Buffer
	c := NewCodec(rw{strings.NewReader(""), &out}, max)
	var counts []int
	n := SliceLen(s)
	for from := 0; from < n; {
		sent, err := c.SendRun(7, "f", s, from, n, nil)
		if err != nil {
			return out.Bytes(), counts, err
		}
		counts = append(counts, sent)
		from += sent
	}
	return out.Bytes(), counts, nil
}
