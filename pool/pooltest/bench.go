package pooltest

import (
	"context"
	"fmt"
	"iter"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/mpgo/mp/pool"
)

// Benchmarks is the benchmark set every backend runs, as Run is the test
// suite. A backend's bench_test.go names each method as a benchmark, so that
// the names are the same for every backend and benchstat-friendly
// (BenchmarkMap/items=1000):
//
//	var bench = pooltest.Benchmarks{New: newPool, MaxItems: 1e7}
//
//	func BenchmarkMap(b *testing.B) { bench.Map(b) }
//
// Compare two versions with
//
//	go test -run='^$' -bench=. -count=10 ./pool/local/ > old.txt
//	(change the library)
//	go test -run='^$' -bench=. -count=10 ./pool/local/ > new.txt
//	benchstat old.txt new.txt
//
// bench/compare sets the backends against other Go pools and Python.
type Benchmarks struct {
	// New makes a pool with the given options; the benchmark closes and
	// joins it.
	New func(b *testing.B, opts ...pool.Option) *pool.Pool
	// MaxItems is the largest input of Map: 1e3, 1e4, … up to it.
	MaxItems int
}

// open makes a pool that is closed and joined when the benchmark ends.
func (bm Benchmarks) open(b *testing.B, opts ...pool.Option) *pool.Pool {
	b.Helper()
	p := bm.New(b, opts...)
	b.Cleanup(func() {
		p.Close()
		p.Join(context.Background())
	})
	return p
}

// Trivial is the cheapest useful function: benchmarks of it measure a pool's
// own cost per item.
func Trivial(x int) int { return x*2 + 1 }

// Sample is the sample function of examples/approximate_pi: it draws n
// random points in the unit square and counts those inside the quarter
// circle. Each call has its own generator, so calls may run concurrently.
func Sample(n int) int {
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

const (
	piSamples = 10_000_000
	piBatches = 100
)

// reportPerItem adds ns/item and items/s to a benchmark whose every
// iteration handled items items.
func reportPerItem(b *testing.B, items int) {
	total := float64(b.N) * float64(items)
	if total == 0 || b.Elapsed() <= 0 {
		return
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/total, "ns/item")
	b.ReportMetric(total/b.Elapsed().Seconds(), "items/s")
}

// reportLatency adds the p50 and p99 of the sampled durations.
func reportLatency(b *testing.B, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	pct := func(p float64) float64 {
		return float64(d[min(int(p*float64(len(d))), len(d)-1)].Nanoseconds())
	}
	b.ReportMetric(pct(0.50), "p50-ns")
	b.ReportMetric(pct(0.99), "p99-ns")
}

// Map is one whole Map of x*2+1 per iteration, with the default
// chunking, for growing inputs: ns/item is the pool's cost per item.
func (bm Benchmarks) Map(b *testing.B) {
	ctx := context.Background()
	for n := 1000; n <= bm.MaxItems; n *= 10 {
		b.Run(fmt.Sprintf("items=%d", n), func(b *testing.B) {
			p := bm.open(b)
			items := ints(n)
			for b.Loop() {
				out, err := pool.Map(ctx, p, Trivial, items)
				if err != nil {
					b.Fatal(err)
				}
				if out[n-1] != 2*(n-1)+1 {
					b.Fatalf("out[%d] = %d", n-1, out[n-1])
				}
			}
			reportPerItem(b, n)
		})
	}
}

// Imap ranges over Imap and ImapUnordered of x*2+1 over
// slices.Values of 1e6 items, with the default (growing) chunk size.
func (bm Benchmarks) Imap(b *testing.B) {
	ctx := context.Background()
	const n = 1_000_000
	items := ints(n)
	for _, mode := range []struct {
		name string
		imap func(context.Context, *pool.Pool, func(int) int, iter.Seq[int], ...pool.CallOption) iter.Seq2[int, error]
	}{
		{"ordered", pool.Imap[int, int]},
		{"unordered", pool.ImapUnordered[int, int]},
	} {
		b.Run(fmt.Sprintf("mode=%s/items=%d", mode.name, n), func(b *testing.B) {
			p := bm.open(b)
			for b.Loop() {
				count, sum := 0, 0
				for r, err := range mode.imap(ctx, p, Trivial, slices.Values(items)) {
					if err != nil {
						b.Fatal(err)
					}
					count++
					sum += r
				}
				if count != n || sum != n*n {
					b.Fatalf("got %d results summing to %d", count, sum)
				}
			}
			reportPerItem(b, n)
		})
	}
}

// Apply is the round trip of one Apply, one after the other:
// ns/op is the mean, p50-ns and p99-ns its percentiles.
func (bm Benchmarks) Apply(b *testing.B) {
	ctx := context.Background()
	p := bm.open(b)
	d := make([]time.Duration, 0, 1<<16)
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		r, err := pool.Apply(ctx, p, Trivial, i)
		el := time.Since(start)
		if err != nil || r != 2*i+1 {
			b.Fatal(r, err)
		}
		if len(d) < cap(d) {
			d = append(d, el)
		}
	}
	reportLatency(b, d)
}

// ApplyAsync is the throughput of ApplyAsync with up to inflight
// tasks started and not yet collected: each iteration starts one task, and
// Gets the oldest result first once inflight are pending. ns/op is per task.
func (bm Benchmarks) ApplyAsync(b *testing.B) {
	ctx := context.Background()
	p := bm.open(b)
	for _, inflight := range []int{64, 1000} {
		b.Run(fmt.Sprintf("inflight=%d", inflight), func(b *testing.B) {
			ring := make([]*pool.AsyncResult[int], inflight)
			get := func(i int) {
				v, err := ring[i%inflight].Get(ctx)
				if err != nil || v != 2*i+1 {
					b.Fatal(v, err)
				}
			}
			b.ResetTimer()
			for i := range b.N {
				if i >= inflight {
					get(i - inflight)
				}
				ring[i%inflight] = pool.ApplyAsync(ctx, p, Trivial, i)
			}
			for j := max(b.N-inflight, 0); j < b.N; j++ {
				get(j) // the last results are part of the work
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
		})
	}
}

// Pi is the example's π estimate: 10M samples in 100 batches of
// 100k, one Map per iteration.
func (bm Benchmarks) Pi(b *testing.B) {
	ctx := context.Background()
	p := bm.open(b)
	batches := make([]int, piBatches)
	for i := range batches {
		batches[i] = piSamples / piBatches
	}
	for b.Loop() {
		counts, err := pool.Map(ctx, p, Sample, batches)
		if err != nil {
			b.Fatal(err)
		}
		inside := 0
		for _, c := range counts {
			inside += c
		}
		if pi := 4 * float64(inside) / piSamples; pi < 3.13 || pi > 3.15 {
			b.Fatalf("pi = %v", pi)
		}
	}
	b.ReportMetric(float64(b.N)*piSamples/b.Elapsed().Seconds(), "samples/s")
}

// Startup is a pool's whole life with no work: New (for the cluster, start
// the worker processes and wait until all are ready), Close, Join.
func (bm Benchmarks) Startup(b *testing.B) {
	ctx := context.Background()
	for b.Loop() {
		p := bm.New(b)
		p.Close()
		if err := p.Join(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
