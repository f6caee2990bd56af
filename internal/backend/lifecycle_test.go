package backend_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mpgo/mp/internal/backend"
)

func TestLifecycle(t *testing.T) {
	drains := 0
	l := backend.NewLifecycle(func() { drains++ })
	if err := l.Join(context.Background()); !errors.Is(err, backend.ErrNotClosed) {
		t.Fatalf("Join before Close = %v", err)
	}
	if err := l.Begin(); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if drains != 0 {
		t.Fatal("drained while a call was admitted")
	}
	if err := l.Begin(); !errors.Is(err, backend.ErrClosed) {
		t.Fatalf("Begin after Close = %v", err)
	}
	l.End()
	l.Close()
	if drains != 1 {
		t.Fatalf("drained %d times, want once when the last call ended", drains)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := l.Join(ctx); err != context.DeadlineExceeded {
		t.Fatalf("Join before Exited = %v", err)
	}
	l.Exited()
	l.Exited()
	if err := l.Join(context.Background()); err != nil {
		t.Fatalf("Join after Exited = %v", err)
	}
}
