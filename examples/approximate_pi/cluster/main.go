// This program approximates π as the Python article on multiprocessing does:
// it samples random points in the unit square, in batches run by a pool of
// workers, and counts those that fall inside the quarter circle.
//
// The parallel and cluster programs differ in one line, the import of mp:
// pool/local runs the batches on goroutines in this process, pool/cluster on
// worker processes.
//
//	go run ./parallel -n 100000000
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"time"

	"github.com/mpgo/mp/pool"
	mp "github.com/mpgo/mp/pool/cluster"
)

const batchSize = 100_000

// Worker processes of the cluster find sample by name; local pools ignore
// the registration.
func init() {
	pool.MustRegister(sample)
}

// sample draws numSamples random points in the unit square and returns how
// many fall inside the quarter circle. Each call has its own generator, so
// that calls may run concurrently.
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
	if err := run(*n); err != nil {
		log.Fatal(err)
	}
}

func run(n int) error {
	if n < 1 {
		return fmt.Errorf("-n must be at least 1, got %d", n)
	}
	ctx := context.Background()

	start := time.Now()
	p, err := mp.New()
	if err != nil {
		return err
	}
	defer p.Close()
	fmt.Printf("Pool start-up: %.3fs\n", time.Since(start).Seconds())

	start = time.Now()
	counts, err := pool.Map(ctx, p, sample, batches(n))
	if err != nil {
		return err
	}
	inside := 0
	for _, c := range counts {
		inside += c
	}
	fmt.Printf("pi ~= %.6f\n", 4*float64(inside)/float64(n))
	fmt.Printf("Finished in: %.3fs\n", time.Since(start).Seconds())
	return nil
}
