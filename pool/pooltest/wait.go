package pooltest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/mpgo/mp/pool"
)

// Wait returns the first n calls to finish, in the order they finished,
// whatever their result types; ctx bounds it; n out of range is an error.
func (s *suite) wait(t *testing.T) {
	p := s.open(t, pool.Workers(3))
	ctx := testCtx(t)
	callCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	// quick finishes first, then slow; blocked waits for its context. (One
	// call at a time until then, for backends with two slots.)
	quick := pool.ApplyAsync(ctx, p, Pair, Point{1, 2, "w"})
	if err := quick.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	slow := pool.ApplyAsyncCtx(ctx, p, Sleep, 200*time.Millisecond)
	blocked := pool.ApplyAsyncCtx(callCtx, p, BlockOnNegative, -1)
	done, pending, err := pool.Wait(ctx, 2, blocked, slow, quick)
	if err != nil || !slices.Equal(done, []int{2, 1}) || !slices.Equal(pending, []int{0}) {
		t.Fatalf("Wait(2) = %v, %v, %v; want [2 1] [0] nil", done, pending, err)
	}
	if v, err := quick.Get(ctx); err != nil || v != "1,2,W" {
		t.Fatalf("Get after Wait: %q, %v", v, err)
	}
	short, cancelShort := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancelShort()
	done, pending, err = pool.Wait(short, 3, blocked, slow, quick)
	if err != context.DeadlineExceeded || len(done) != 2 || !slices.Equal(pending, []int{0}) {
		t.Fatalf("Wait(3) past its deadline = %v, %v, %v; want 2 done, [0], DeadlineExceeded", done, pending, err)
	}
	if _, _, err := pool.Wait(ctx, 4, blocked, slow, quick); err == nil {
		t.Fatal("Wait with n over the number of results: no error")
	}
	cancel()
	if done, _, err := pool.Wait(ctx, 3, blocked, slow, quick); err != nil || len(done) != 3 || done[2] != 0 {
		t.Fatalf("Wait after the blocked call was cancelled: %v, %v", done, err)
	}
}
