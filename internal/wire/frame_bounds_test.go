package wire

import (
	"bytes"
	"sync"
	"testing"
	"time"
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

// blockedWriter holds its first Write until release is closed, and records
// the size of every Write.
type blockedWriter struct {
	release chan struct{}
	mu      sync.Mutex
	sizes   []int
}

func (w *blockedWriter) Write(p []byte) (int, error) {
	<-w.release
	w.mu.Lock()
	w.sizes = append(w.sizes, len(p))
	w.mu.Unlock()
	return len(p), nil
}

// Issue 11: a driver that never reads let a worker queue results without
// bound: behind a write that does not return, every Send queued its frame
// and returned. Now senders wait once maxQueued bytes are queued, so no
// write carries more than that plus one frame.
func TestSendQueueBounded(t *testing.T) {
	w := &blockedWriter{release: make(chan struct{})}
	c := newCodec(bytes.NewReader(nil), w, DefaultMaxFrame)
	piece := bytes.Repeat([]byte{7}, 1<<20)
	const senders = 16
	returned := make(chan struct{}, senders+1)
	var wg sync.WaitGroup
	for range senders + 1 { // the first becomes the writer, held in Write
		wg.Go(func() {
			if err := c.SendRaw(KindBinary, piece); err != nil {
				t.Error(err)
			}
			returned <- struct{}{}
		})
	}
	// Give the senders the time to queue: without the bound, all but the
	// writer return; with it, those over the bound wait. Either way, go on.
	timeout := time.After(time.Second)
	for n := 0; n < senders; n++ {
		select {
		case <-returned:
			continue
		case <-timeout:
		}
		break
	}
	close(w.release)
	wg.Wait()
	total := 0
	for _, n := range w.sizes {
		if n > maxQueued+len(piece)+5 {
			t.Errorf("a write of %d bytes: the queue behind a blocked write exceeded %d bytes plus one frame", n, maxQueued)
		}
		total += n
	}
	if want := (senders + 1) * (len(piece) + 5); total != want {
		t.Errorf("%d bytes written, want %d", total, want)
	}
}
