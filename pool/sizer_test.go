package pool

import (
	"math/bits"
	"slices"
	"testing"
)

// sizes returns the default chunk sizes of a Map of n items on workers
// workers whose chunks never come back quickly.
func sizes(n, workers int) []int {
	s := newSizer(n, workers)
	var out []int
	for lo := 0; lo < n; {
		size := min(s.next(n-lo, false), n-lo)
		out = append(out, size)
		lo += size
	}
	return out
}

func TestSizerPi(t *testing.T) {
	// The π example: 100 batches on 2 workers. Per-chunk shrinking,
	// ⌈remaining/8⌉, made 24 chunks; rounds halving what is left make 14,
	// ending in single items.
	got := sizes(100, 2)
	want := []int{13, 13, 13, 13, 12, 12, 6, 6, 3, 3, 2, 2, 1, 1}
	if !slices.Equal(got, want) {
		t.Fatalf("sizes(100, 2) = %v, want %v", got, want)
	}
}

func TestSizerProperties(t *testing.T) {
	for _, w := range []int{1, 2, 3, 4, 16, 64} {
		for _, n := range []int{1, 2, 5, 7, 31, 100, 1000, 12345, 1_000_000} {
			got := sizes(n, w)
			sum := 0
			for _, s := range got {
				sum += s
			}
			first := (n + 4*w - 1) / (4 * w)
			switch {
			case sum != n:
				t.Errorf("n=%d w=%d: sizes sum to %d", n, w, sum)
			case got[0] != first:
				t.Errorf("n=%d w=%d: first chunk %d, want Python's %d", n, w, got[0], first)
			case got[len(got)-1] != 1:
				t.Errorf("n=%d w=%d: last chunk %d, want a single item", n, w, got[len(got)-1])
			case !slices.IsSortedFunc(got, func(a, b int) int { return b - a }):
				t.Errorf("n=%d w=%d: sizes grow: %v", n, w, got)
			}
			// Each round hands out about half of what is left, so
			// there are about workers × log2(n) chunks.
			if limit := w * (bits.Len(uint(n)) + 2); len(got) > limit {
				t.Errorf("n=%d w=%d: %d chunks, more than %d", n, w, len(got), limit)
			}
		}
	}
}

func TestSizerQuick(t *testing.T) {
	s := newSizer(1000, 2)
	for range 5 {
		if got := s.next(1000, true); got != 125 {
			t.Fatalf("quick chunk %d, want the first size 125", got)
		}
	}
}
