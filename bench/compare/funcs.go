package main

import (
	"time"

	"github.com/mpgo/mp/pool"
)

// The functions run on cluster workers: worker processes re-execute this
// binary and find them by name. The trivial function and π's sample are
// pooltest.Trivial and pooltest.Sample, registered by pooltest, the same the
// library's own benchmarks run.
func init() {
	pool.MustRegister(nap)
}

// nap stands for an I/O-bound item: it sleeps d and returns it.
func nap(d time.Duration) time.Duration {
	time.Sleep(d)
	return d
}

// batchSizes splits n samples into b equal batches (the remainder goes to
// the last).
func batchSizes(n, b int) []int {
	s := make([]int, b)
	for i := range s {
		s[i] = n / b
	}
	s[b-1] += n % b
	return s
}

func ints(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}
