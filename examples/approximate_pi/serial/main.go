// This program approximates π as the Python article on multiprocessing does,
// without a pool: it samples random points in the unit square, one batch
// after the other, and counts those that fall inside the quarter circle.
// Compare it with the parallel program.
//
//	go run ./serial -n 100000000
package main

import (
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"time"
)

const batchSize = 100_000

// sample draws numSamples random points in the unit square and returns how
// many fall inside the quarter circle.
func sample(numSamples int) int {
	r := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	inside := 0
	for range numSamples {
		x, y := r.Float64(), r.Float64()
		if x*x+y*y <= 1 {
			inside++
		}
	}
	return inside
}

// batches splits n samples into batches of batchSize and a last, smaller
// one for the remainder.
func batches(n int) []int {
	b := make([]int, n/batchSize, n/batchSize+1)
	for i := range b {
		b[i] = batchSize
	}
	if r := n % batchSize; r > 0 {
		b = append(b, r)
	}
	return b
}

func main() {
	n := flag.Int("n", 10_000_000, "total number of samples")
	flag.Parse()
	if *n < 1 {
		log.Fatalf("-n must be at least 1, got %d", *n)
	}

	start := time.Now()
	inside := 0
	for _, b := range batches(*n) {
		inside += sample(b)
	}
	fmt.Printf("pi ~= %.6f\n", 4*float64(inside)/float64(*n))
	fmt.Printf("Finished in: %.3fs\n", time.Since(start).Seconds())
}
