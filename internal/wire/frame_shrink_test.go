package wire

import (
	"bytes"
	"testing"
)

// Issue 11: a 60 MiB result made the driver's read buffer grow for good.
// After a large frame, the next small one shrinks it back.
func TestRecvShrinksAfterLargeFrame(t *testing.T) {
	var stream bytes.Buffer
	w := NewCodec(&stream, 0)
	big := bytes.Repeat([]byte{1}, 60<<20)
	if err := w.SendRaw(KindBinary, big); err != nil {
		t.Fatal(err)
	}
	if err := w.SendRaw(KindBinary, []byte("small")); err != nil {
		t.Fatal(err)
	}
	r := NewCodec(&stream, 0)
	if _, body, err := r.Recv(); err != nil || len(body) != len(big) {
		t.Fatalf("Recv: %d bytes, %v", len(body), err)
	}
	if _, body, err := r.Recv(); err != nil || string(body) != "small" {
		t.Fatalf("Recv: %q, %v", body, err)
	}
	if c := cap(r.rbuf); c > keptReadBuffer {
		t.Fatalf("after a small frame the read buffer holds %d bytes, want at most %d", c, keptReadBuffer)
	}
}
