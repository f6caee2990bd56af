package local_test

// Benchmarks of the local backend. Names are benchstat-friendly
// (BenchmarkMap/items=1000): compare two versions with
//
//	go test -run='^$' -bench=. -count=10 ./pool/local/ > old.txt
//	(change the library)
//	go test -run='^$' -bench=. -count=10 ./pool/local/ > new.txt
//	benchstat old.txt new.txt
//
// The cluster backend has the same set in pool/cluster/bench_test.go;
// bench/compare sets both against other Go pools and Python.

import (
	"context"
	"fmt"
	"iter"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/mpgo/mp/pool"
	"github.com/mpgo/mp/pool/local"
)

func init() {
	// Local pools ignore registration; it is here so that the functions are
	// the same as those of the cluster benchmarks.
	pool.MustRegister(benchTrivial)
	pool.MustRegister(benchSample)
}

// benchTrivial is the cheapest useful function: the benchmarks of it measure
// the pool's own cost per item.
func benchTrivial(x int) int { return x*2 + 1 }

// benchSample is the sample function of examples/approximate_pi: it draws n
// random points in the unit square and counts those inside the quarter
// circle.
func benchSample(n int) int {
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
	benchPiSamples = 10_000_000
	benchPiBatches = 100
)

func benchInts(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

func newBenchPool(b *testing.B, opts ...pool.Option) *local.Pool {
	b.Helper()
	p, err := local.New(opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		p.Close()
		p.Join(context.Background())
	})
	return p
}

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

// BenchmarkMap is one whole Map of x*2+1 per iteration, with the default
// chunking, for growing inputs: ns/item is the pool's cost per item.
func BenchmarkMap(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{1e3, 1e4, 1e5, 1e6, 1e7} {
		b.Run(fmt.Sprintf("items=%d", n), func(b *testing.B) {
			p := newBenchPool(b)
			items := benchInts(n)
			for b.Loop() {
				out, err := pool.Map(ctx, p, benchTrivial, items)
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

// BenchmarkImap ranges over Imap and ImapUnordered of x*2+1 over
// slices.Values of 1e6 items, with the default (growing) chunk size.
func BenchmarkImap(b *testing.B) {
	ctx := context.Background()
	const n = 1_000_000
	items := benchInts(n)
	for _, mode := range []struct {
		name string
		imap func(context.Context, pool.Pool, func(int) int, iter.Seq[int], ...pool.CallOption) iter.Seq2[int, error]
	}{
		{"ordered", pool.Imap[int, int]},
		{"unordered", pool.ImapUnordered[int, int]},
	} {
		b.Run(fmt.Sprintf("mode=%s/items=%d", mode.name, n), func(b *testing.B) {
			p := newBenchPool(b)
			for b.Loop() {
				count, sum := 0, 0
				for r, err := range mode.imap(ctx, p, benchTrivial, slices.Values(items)) {
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

// BenchmarkApply is the round trip of one Apply, one after the other:
// ns/op is the mean, p50-ns and p99-ns its percentiles.
func BenchmarkApply(b *testing.B) {
	ctx := context.Background()
	p := newBenchPool(b)
	d := make([]time.Duration, 0, 1<<16)
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		r, err := pool.Apply(ctx, p, benchTrivial, i)
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

// BenchmarkApplyAsync is the throughput of ApplyAsync with up to inflight
// tasks started and not yet collected: each iteration starts one task, and
// Gets the oldest result first once inflight are pending. ns/op is per task.
func BenchmarkApplyAsync(b *testing.B) {
	ctx := context.Background()
	p := newBenchPool(b)
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
				ring[i%inflight] = pool.ApplyAsync(ctx, p, benchTrivial, i)
			}
			for j := max(b.N-inflight, 0); j < b.N; j++ {
				get(j) // the last results are part of the work
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
		})
	}
}

// BenchmarkPi is the example's π estimate: 10M samples in 100 batches of
// 100k, one Map per iteration.
func BenchmarkPi(b *testing.B) {
	ctx := context.Background()
	p := newBenchPool(b)
	batches := make([]int, benchPiBatches)
	for i := range batches {
		batches[i] = benchPiSamples / benchPiBatches
	}
	for b.Loop() {
		counts, err := pool.Map(ctx, p, benchSample, batches)
		if err != nil {
			b.Fatal(err)
		}
		inside := 0
		for _, c := range counts {
			inside += c
		}
		if pi := 4 * float64(inside) / benchPiSamples; pi < 3.13 || pi > 3.15 {
			b.Fatalf("pi = %v", pi)
		}
	}
	b.ReportMetric(float64(b.N)*benchPiSamples/b.Elapsed().Seconds(), "samples/s")
}

// BenchmarkStartup is a pool's whole life with no work: New, Close, Join.
func BenchmarkStartup(b *testing.B) {
	ctx := context.Background()
	for b.Loop() {
		p, err := local.New()
		if err != nil {
			b.Fatal(err)
		}
		p.Close()
		if err := p.Join(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
