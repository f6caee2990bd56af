package main

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mpgo/mp/pool"
	"github.com/mpgo/mp/pool/cluster"
	"github.com/mpgo/mp/pool/local"
	"github.com/mpgo/mp/pool/pooltest"
)

// piCheck fails an estimate that is not π: every contender must do the
// work.
func piCheck(inside, n int) error {
	pi := 4 * float64(inside) / float64(n)
	tol := 0.01
	if n < 1_000_000 {
		tol = 0.05
	}
	if pi < 3.14159-tol || pi > 3.14159+tol {
		return fmt.Errorf("π estimate %v is off", pi)
	}
	return nil
}

func sum(s []int) int {
	t := 0
	for _, v := range s {
		t += v
	}
	return t
}

// piSerial runs the batches one after the other.
func piSerial(batches []int) (time.Duration, error) {
	start := time.Now()
	inside := 0
	for _, b := range batches {
		inside += pooltest.Sample(b)
	}
	d := time.Since(start)
	return d, piCheck(inside, sum(batches))
}

// piHand is the hand-written fan-out: workers goroutines pull batch indexes
// from an atomic counter; a WaitGroup waits for them.
func piHand(batches []int, workers int) (time.Duration, error) {
	start := time.Now()
	var next atomic.Int64
	var inside atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			n := 0
			for {
				i := int(next.Add(1) - 1)
				if i >= len(batches) {
					break
				}
				n += pooltest.Sample(batches[i])
			}
			inside.Add(int64(n))
		})
	}
	wg.Wait()
	d := time.Since(start)
	return d, piCheck(int(inside.Load()), sum(batches))
}

// piMap runs the batches with pool.Map on p, as the example does.
func piMap(p *pool.Pool, batches []int) (time.Duration, error) {
	start := time.Now()
	counts, err := pool.Map(context.Background(), p, pooltest.Sample, batches)
	d := time.Since(start)
	if err != nil {
		return 0, err
	}
	return d, piCheck(sum(counts), sum(batches))
}

// closeJoin closes p and waits for its workers to exit.
func closeJoin(p *pool.Pool) error {
	p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return p.Join(ctx)
}

// withNewPool starts a pool with newPool, timing the start-up, runs
// piMap on it, then closes it and waits for its workers (untimed).
func withNewPool(newPool func() (*pool.Pool, error), batches []int) (result, error) {
	start := time.Now()
	p, err := newPool()
	if err != nil {
		return result{}, err
	}
	startup := time.Since(start)
	d, err := piMap(p, batches)
	if cerr := closeJoin(p); err == nil {
		err = cerr
	}
	return result{d: d, extra: map[string]float64{"startup": startup.Seconds()}}, err
}

func newLocal(opts ...pool.Option) func() (*pool.Pool, error) {
	return func() (*pool.Pool, error) { return local.New(opts...) }
}

func newCluster(opts ...pool.Option) func() (*pool.Pool, error) {
	return func() (*pool.Pool, error) { return cluster.New(opts...) }
}

// speedupPoint is one point of the speed-up sweep.
type speedupPoint struct {
	workers int
	speedup map[string]float64 // by contender
	seconds map[string]float64
}

var sweepNames = []string{"mp local", "hand-written", "mp cluster"}

// speedupSweep measures π with 1..maxWorkers workers (and the given extra
// counts) on mp local, the hand-written fan-out and mp cluster; each point is
// the median of reps runs, interleaved. Pools are started outside the
// timing. It returns the serial time and the points.
func speedupSweep(batches []int, workers []int, reps int) (float64, []speedupPoint, error) {
	type key struct {
		name string
		w    int
	}
	samples := map[key][]float64{}
	var serial []float64
	locals := map[int]*pool.Pool{}
	clusters := map[int]*pool.Pool{}
	defer func() {
		for _, p := range locals {
			closeJoin(p)
		}
		for _, p := range clusters {
			closeJoin(p)
		}
	}()
	for _, w := range workers {
		lp, err := local.New(pool.Workers(w))
		if err != nil {
			return 0, nil, err
		}
		locals[w] = lp
		cp, err := cluster.New(pool.Workers(w))
		if err != nil {
			return 0, nil, err
		}
		clusters[w] = cp
	}
	for r := range reps {
		runtime.GC()
		d, err := piSerial(batches)
		if err != nil {
			return 0, nil, err
		}
		serial = append(serial, d.Seconds())
		for _, w := range workers {
			for i := range sweepNames {
				name := sweepNames[(i+r)%len(sweepNames)]
				runtime.GC()
				var d time.Duration
				var err error
				switch name {
				case "mp local":
					d, err = piMap(locals[w], batches)
				case "hand-written":
					d, err = piHand(batches, w)
				case "mp cluster":
					d, err = piMap(clusters[w], batches)
				}
				if err != nil {
					return 0, nil, fmt.Errorf("speed-up sweep, %s with %d workers: %w", name, w, err)
				}
				samples[key{name, w}] = append(samples[key{name, w}], d.Seconds())
			}
		}
	}
	ser := median(serial)
	var pts []speedupPoint
	for _, w := range workers {
		pt := speedupPoint{workers: w, speedup: map[string]float64{}, seconds: map[string]float64{}}
		for _, name := range sweepNames {
			m := median(samples[key{name, w}])
			pt.seconds[name] = m
			pt.speedup[name] = ser / m
		}
		pts = append(pts, pt)
	}
	return ser, pts, nil
}
