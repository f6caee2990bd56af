package pooltest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/mpgo/mp/pool"
)

func init() {
	pool.MustRegisterEach(MustBePositive)
	pool.MustRegisterEachErr(CheckPositive)
	pool.MustRegisterEachCtx(WaitOnNegative)
}

// MustBePositive panics for x <= 0.
func MustBePositive(x int) {
	if x <= 0 {
		panic(fmt.Sprintf("not positive: %d", x))
	}
}

// CheckPositive fails for x <= 0.
func CheckPositive(x int) error {
	if x <= 0 {
		return fmt.Errorf("not positive: %d", x)
	}
	return nil
}

// WaitOnNegative waits for its context for a negative x.
func WaitOnNegative(ctx context.Context, x int) error {
	if x < 0 {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

// ForEach runs functions with no result, with the errors of Map.
func (s *suite) forEach(t *testing.T) {
	p := s.open(t)
	ctx := testCtx(t)
	items := ints(500)
	for i := range items {
		items[i]++
	}
	if err := pool.ForEach(ctx, p, MustBePositive, items); err != nil {
		t.Fatalf("ForEach: %v", err)
	}
	if err := pool.ForEachErr(ctx, p, CheckPositive, items); err != nil {
		t.Fatalf("ForEachErr: %v", err)
	}
	items[321] = -4
	err := pool.ForEach(ctx, p, MustBePositive, items)
	te := checkTaskError(t, err, "MustBePositive", 321, "not positive: -4")
	var pe *pool.PanicError
	if !errors.As(te, &pe) {
		t.Errorf("a panic in ForEach: %v is not a PanicError", err)
	}
	err = pool.ForEachErr(ctx, p, CheckPositive, items)
	checkTaskError(t, err, "CheckPositive", 321, "not positive: -4")
	short, cancel := context.WithCancel(ctx)
	cancel()
	if err := pool.ForEachCtx(short, p, WaitOnNegative, []int{1, -1}); err != context.Canceled {
		t.Errorf("ForEachCtx with a cancelled context: %v", err)
	}
}
