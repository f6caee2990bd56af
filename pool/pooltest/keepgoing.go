package pooltest

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/mpgo/mp/pool"
)

// KeepGoing runs every item however many fail: all results, the zero value
// where an item failed, and every item's error, joined in input order.
func (s *suite) keepGoing(t *testing.T) {
	p := s.open(t, pool.Workers(2))
	ctx := testCtx(t)
	items := ints(300)
	bad := []int{0, 7, 8, 99, 100, 299}
	for _, i := range bad {
		items[i] = -i - 1
	}
	isBad := map[int]bool{}
	for _, i := range bad {
		isBad[i] = true
	}
	for _, cs := range []int{0, 1, 8, 300} {
		t.Run(fmt.Sprint("Chunksize", cs), func(t *testing.T) {
			got, err := pool.MapErr(ctx, p, FailOnNegative, items, pool.Chunksize(cs), pool.KeepGoing())
			if len(got) != len(items) {
				t.Fatalf("%d results for %d items (%v)", len(got), len(items), err)
			}
			for i, r := range got {
				if want := items[i]; isBad[i] && r != 0 || !isBad[i] && r != want {
					t.Fatalf("result %d = %d", i, r)
				}
			}
			joined, ok := err.(interface{ Unwrap() []error })
			if !ok {
				t.Fatalf("error %v (%T) is not a join of the items' errors", err, err)
			}
			errs := joined.Unwrap()
			if len(errs) != len(bad) {
				t.Fatalf("%d errors, want %d: %v", len(errs), len(bad), err)
			}
			for k, e := range errs {
				var te *pool.TaskError
				if !errors.As(e, &te) || te.Index != bad[k] {
					t.Errorf("error %d: %v, want item %d's", k, e, bad[k])
				}
			}
		})
	}
	// Imap yields one pair per item: the results in order, each failed
	// item's error at its place; ImapUnordered the same pairs in any order.
	for _, cs := range []int{0, 1, 8, 300} {
		t.Run(fmt.Sprint("ImapChunksize", cs), func(t *testing.T) {
			i := 0
			for r, err := range pool.ImapErr(ctx, p, FailOnNegative, slices.Values(items), pool.Chunksize(cs), pool.KeepGoing()) {
				if i >= len(items) {
					t.Fatalf("more than %d pairs", len(items))
				}
				var te *pool.TaskError
				switch {
				case isBad[i] && (!errors.As(err, &te) || te.Index != i):
					t.Fatalf("pair %d = %d, %v; want item %d's error", i, r, err, i)
				case !isBad[i] && (err != nil || r != items[i]):
					t.Fatalf("pair %d = %d, %v; want %d", i, r, err, items[i])
				}
				i++
			}
			if i != len(items) {
				t.Fatalf("%d pairs for %d items", i, len(items))
			}
			seen := map[int]bool{}
			errs := 0
			for r, err := range pool.ImapUnorderedErr(ctx, p, FailOnNegative, slices.Values(items), pool.Chunksize(cs), pool.KeepGoing()) {
				var te *pool.TaskError
				switch {
				case errors.As(err, &te):
					if !isBad[te.Index] {
						t.Fatalf("an error for item %d: %v", te.Index, err)
					}
					errs++
				case err != nil:
					t.Fatal(err)
				case seen[r]:
					t.Fatalf("result %d twice", r)
				default:
					seen[r] = true
				}
			}
			if errs != len(bad) || len(seen) != len(items)-len(bad) {
				t.Fatalf("ImapUnordered: %d errors and %d results, want %d and %d", errs, len(seen), len(bad), len(items)-len(bad))
			}
		})
	}
	// Panics too; ForEach too.
	got, err := pool.Map(ctx, p, PanicOnNegative, items, pool.Chunksize(16), pool.KeepGoing())
	var pe *pool.PanicError
	if len(got) != len(items) || got[150] != 150 || !errors.As(err, &pe) {
		t.Errorf("KeepGoing past panics: %d results, %v", len(got), err)
	}
	err = pool.ForEachErr(ctx, p, CheckPositive, []int{1, -1, 2, -2, 3}, pool.Chunksize(5), pool.KeepGoing())
	if joined, ok := err.(interface{ Unwrap() []error }); !ok || len(joined.Unwrap()) != 2 {
		t.Errorf("ForEachErr with KeepGoing: %v", err)
	}
}
