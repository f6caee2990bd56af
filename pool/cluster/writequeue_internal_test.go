package cluster

import (
	"bytes"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// recorder is an io.Writer that keeps each write apart.
type recorder struct {
	mu     sync.Mutex
	writes [][]byte
	err    error
	got    chan struct{} // receives after each write
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	r.writes = append(r.writes, bytes.Clone(p))
	err := r.err
	r.mu.Unlock()
	select {
	case r.got <- struct{}{}:
	default:
	}
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

func (r *recorder) all() (n int, b []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.writes), bytes.Join(r.writes, nil)
}

func TestWriteQueue(t *testing.T) {
	var more atomic.Bool
	t.Run("alone", func(t *testing.T) {
		r := &recorder{got: make(chan struct{}, 1)}
		q := newWriteQueue(r, more.Load, nil)
		defer q.close()
		q.Write([]byte("a"))
		q.Write([]byte("b"))
		if n, b := r.all(); n != 2 || string(b) != "ab" {
			t.Fatalf("%d writes of %q, want each frame written at once", n, b)
		}
	})
	t.Run("held until flush", func(t *testing.T) {
		r := &recorder{got: make(chan struct{}, 1)}
		q := newWriteQueue(r, func() bool { return true }, nil)
		defer q.close()
		q.hold = time.Hour // only flush writes here; the timer is the next test
		for _, s := range []string{"a", "b", "c"} {
			q.Write([]byte(s))
		}
		q.flush()
		if n, b := r.all(); n != 1 || string(b) != "abc" {
			t.Fatalf("%d writes of %q, want 1 of \"abc\"", n, b)
		}
	})
	t.Run("held at most maxHold", func(t *testing.T) {
		r := &recorder{got: make(chan struct{}, 1)}
		q := newWriteQueue(r, func() bool { return true }, nil)
		defer q.close()
		q.Write([]byte("a"))
		<-r.got // the timer wrote it: no flush, no more writes
		if n, b := r.all(); n != 1 || string(b) != "a" {
			t.Fatalf("%d writes of %q", n, b)
		}
	})
	t.Run("large", func(t *testing.T) {
		r := &recorder{got: make(chan struct{}, 1)}
		q := newWriteQueue(r, func() bool { return true }, nil)
		q.hold = time.Hour
		defer q.close()
		big := bytes.Repeat([]byte("x"), maxHeldFrame)
		q.Write(big)
		if n, b := r.all(); n != 1 || len(b) != len(big) {
			t.Fatalf("%d writes of %d bytes, want a large frame written at once", n, len(b))
		}
	})
	t.Run("order", func(t *testing.T) {
		r := &recorder{got: make(chan struct{}, 1)}
		q := newWriteQueue(r, more.Load, nil)
		q.hold = time.Hour
		defer q.close()
		more.Store(true)
		q.Write([]byte("a"))
		more.Store(false)
		q.Write([]byte("b")) // alone, but after a: both go now, in order
		if n, b := r.all(); n != 1 || string(b) != "ab" {
			t.Fatalf("%d writes of %q, want 1 of \"ab\"", n, b)
		}
	})
	t.Run("error", func(t *testing.T) {
		broken := errors.New("broken")
		r := &recorder{got: make(chan struct{}, 1), err: broken}
		got := make(chan error, 1)
		q := newWriteQueue(r, func() bool { return true }, func(err error) { got <- err })
		defer q.close()
		q.Write([]byte("a"))
		q.flush()
		if err := <-got; err != broken {
			t.Fatalf("onErr got %v", err)
		}
		if _, err := q.Write([]byte("b")); err != broken {
			t.Fatalf("Write after a failed write = %v, want %v", err, broken)
		}
	})
	t.Run("close", func(t *testing.T) {
		r := &recorder{got: make(chan struct{}, 1)}
		q := newWriteQueue(r, func() bool { return true }, nil)
		q.hold = time.Hour
		q.Write([]byte("a"))
		q.close()
		if n, b := r.all(); n != 1 || string(b) != "a" {
			t.Fatalf("close: %d writes of %q, want what was queued", n, b)
		}
		if _, err := q.Write([]byte("b")); err == nil {
			t.Fatal("Write after close: no error")
		}
	})
}
