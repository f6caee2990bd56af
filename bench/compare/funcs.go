package main

import (
	"math/rand/v2"
	"time"

	"github.com/mpgo/mp/pool"
)

// The functions run on cluster workers: worker processes re-execute this
// binary and find them by name.
func init() {
	pool.MustRegister(trivial)
	pool.MustRegister(sample)
	pool.MustRegister(nap)
}

// trivial is the cheapest useful function: Maps of it measure each pool's
// own cost per item.
func trivial(x int) int { return x*2 + 1 }

// sample is the sample function of examples/approximate_pi: it draws n random
// points in the unit square and counts those inside the quarter circle. Each
// call has its own generator, so that calls may run concurrently.
func sample(n int) int {
	r := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	inside := 0
	for range n {
		x, y := r.Float64(), r.Float64()
		if x*x+y*y <= 1 {
			inside++
		}
	}
	return inside
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
