package main

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/alitto/pond/v2"
	"github.com/sourcegraph/conc/iter"
	"golang.org/x/sync/errgroup"

	"github.com/mpgo/mp/pool"
	"github.com/mpgo/mp/pool/pooltest"
)

// mapFn is pooltest.Trivial, called through a variable by every contender, so that
// none gets it inlined where the others call a func value.
var mapFn = pooltest.Trivial

// A mapper maps pooltest.Trivial over items and returns the results in order.
type mapper struct {
	name    string
	note    string
	maxSize int // largest input it is run on in the sweep; 0: no limit
	mapf    func(items []int) ([]int, error)
}

// mappers returns the contenders of the Map rows. lp and cp are long-lived
// local and cluster pools, pp a pond pool; all have NumCPU workers (the
// cluster: NumCPU worker processes).
func mappers(lp, cp *pool.Pool, pp pond.Pool, clusterMax int) []mapper {
	ctx := context.Background()
	n := runtime.NumCPU()
	return []mapper{
		{
			name: "mp local",
			note: "pool.Map on local.New(), default (guided) chunks, the first ⌈len/(4×workers)⌉",
			mapf: func(items []int) ([]int, error) { return pool.Map(ctx, lp, mapFn, items) },
		},
		{
			name: "conc iter.Map",
			note: "sourcegraph/conc v0.3.0 iter.Map: GOMAXPROCS goroutines, one atomic increment per item",
			mapf: func(items []int) ([]int, error) {
				return iter.Map(items, func(x *int) int { return mapFn(*x) }), nil
			},
		},
		{
			name: "errgroup, goroutine per item",
			note: fmt.Sprintf("x/sync errgroup with SetLimit(%d): one g.Go (a new goroutine) per item", n),
			mapf: func(items []int) ([]int, error) {
				out := make([]int, len(items))
				var g errgroup.Group
				g.SetLimit(n)
				for i := range items {
					g.Go(func() error {
						out[i] = mapFn(items[i])
						return nil
					})
				}
				return out, g.Wait()
			},
		},
		{
			name: "errgroup, chunked",
			note: fmt.Sprintf("errgroup with SetLimit(%d): one g.Go per chunk of ⌈len/(4×%d)⌉ items, Python's default", n, n),
			mapf: func(items []int) ([]int, error) {
				out := make([]int, len(items))
				var g errgroup.Group
				g.SetLimit(n)
				cs := max((len(items)+4*n-1)/(4*n), 1)
				for lo := 0; lo < len(items); lo += cs {
					hi := min(lo+cs, len(items))
					g.Go(func() error {
						for i := lo; i < hi; i++ {
							out[i] = mapFn(items[i])
						}
						return nil
					})
				}
				return out, g.Wait()
			},
		},
		{
			name: "pond",
			note: fmt.Sprintf("alitto/pond v2 NewPool(%d), started once: one pool.Go per item, a WaitGroup", n),
			mapf: func(items []int) ([]int, error) {
				out := make([]int, len(items))
				var wg sync.WaitGroup
				wg.Add(len(items))
				for i := range items {
					if err := pp.Go(func() {
						out[i] = mapFn(items[i])
						wg.Done()
					}); err != nil {
						return nil, err
					}
				}
				wg.Wait()
				return out, nil
			},
		},
		{
			name:    "mp cluster",
			note:    fmt.Sprintf("pool.Map on cluster.New() (%d worker processes, msgpack over loopback TCP), default chunks", cp.Workers()),
			maxSize: clusterMax,
			mapf:    func(items []int) ([]int, error) { return pool.Map(ctx, cp, mapFn, items) },
		},
	}
}

// timeMap times m on items: the mean of as many Maps as fit in minTime (at
// least one). It checks the results.
func timeMap(m mapper, items []int, minTime time.Duration) (time.Duration, error) {
	return repeatFor(minTime, func() error {
		out, err := m.mapf(items)
		if err != nil {
			return err
		}
		if len(out) != len(items) {
			return fmt.Errorf("%d results for %d items", len(out), len(items))
		}
		for _, i := range []int{0, len(items) / 2, len(items) - 1} {
			if out[i] != pooltest.Trivial(items[i]) {
				return fmt.Errorf("out[%d] = %d, want %d", i, out[i], pooltest.Trivial(items[i]))
			}
		}
		return nil
	})
}

// perItemPoint is the per-item cost of each mapper at one input size.
type perItemPoint struct {
	size int
	ns   map[string]float64 // ns per item by mapper; missing: not run
}

// perItemSweep times every mapper on each size: the median of reps
// interleaved samples, each the mean of the Maps that fit in minTime.
func perItemSweep(ms []mapper, sizes []int, reps int, minTime time.Duration) ([]perItemPoint, error) {
	var pts []perItemPoint
	for _, n := range sizes {
		items := ints(n)
		samples := map[string][]float64{}
		for r := range reps {
			for i := range ms {
				m := ms[(i+r)%len(ms)]
				if m.maxSize > 0 && n > m.maxSize {
					continue
				}
				runtime.GC()
				d, err := timeMap(m, items, minTime)
				if err != nil {
					return nil, fmt.Errorf("per-item sweep, %s on %d items: %w", m.name, n, err)
				}
				samples[m.name] = append(samples[m.name], float64(d.Nanoseconds())/float64(n))
			}
		}
		pt := perItemPoint{size: n, ns: map[string]float64{}}
		for k, v := range samples {
			pt.ns[k] = median(v)
		}
		pts = append(pts, pt)
	}
	return pts, nil
}
