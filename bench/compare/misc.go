package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mpgo/mp/pool"
	"github.com/mpgo/mp/pool/cluster"
	"github.com/mpgo/mp/pool/pooltest"
)

// applyLatency times calls Applies of pooltest.Trivial on p, one after the other,
// and reports their p50 and p99 (ns).
func applyLatency(p *pool.Pool, calls int) (result, error) {
	ctx := context.Background()
	d := make([]time.Duration, calls)
	start := time.Now()
	for i := range calls {
		t := time.Now()
		r, err := pool.Apply(ctx, p, pooltest.Trivial, i)
		d[i] = time.Since(t)
		if err != nil {
			return result{}, err
		}
		if r != pooltest.Trivial(i) {
			return result{}, fmt.Errorf("Apply(%d) = %d", i, r)
		}
	}
	return latencies(d, time.Since(start)), nil
}

// latencies is the result of timed round trips d taking total in all:
// their p50 and p99 (ns) as extras. It sorts d.
func latencies(d []time.Duration, total time.Duration) result {
	slices.Sort(d)
	return result{d: total, extra: map[string]float64{
		"p50": float64(percentile(d, 0.50).Nanoseconds()),
		"p99": float64(percentile(d, 0.99).Nanoseconds()),
	}}
}

// applyAsync starts tasks ApplyAsyncs of pooltest.Trivial on p, at most window at a
// time (0: all at once, as a Python loop of apply_async does), and Gets
// every result. It reports tasks/s.
func applyAsync(p *pool.Pool, tasks, window int) (result, error) {
	ctx := context.Background()
	if window <= 0 || window > tasks {
		window = tasks
	}
	rs := make([]*pool.AsyncResult[int], tasks)
	get := func(i int) error {
		v, err := rs[i].Get(ctx)
		if err != nil {
			return err
		}
		if v != pooltest.Trivial(i) {
			return fmt.Errorf("ApplyAsync(%d) = %d", i, v)
		}
		return nil
	}
	start := time.Now()
	for i := range tasks {
		if i >= window {
			if err := get(i - window); err != nil {
				return result{}, err
			}
		}
		rs[i] = pool.ApplyAsync(ctx, p, pooltest.Trivial, i)
	}
	for i := max(tasks-window, 0); i < tasks; i++ {
		if err := get(i); err != nil {
			return result{}, err
		}
	}
	d := time.Since(start)
	return result{d: d, extra: map[string]float64{"rate": float64(tasks) / d.Seconds()}}, nil
}

// memPeak samples the Go heap every interval until stopped, keeping the
// peaks of HeapInuse (live objects and garbage not yet swept, so it swings
// with the GC's pacing: GOGC lets garbage grow as large as the live heap),
// Sys (memory obtained from the OS) and the live heap (/gc/heap/live:bytes:
// what the last GC marked, that is what the program retains).
type memPeak struct {
	stop                        chan struct{}
	done                        chan struct{}
	peakHeap, peakSys, peakLive uint64
}

// memNow returns HeapInuse, Sys and the live heap, after a GC if gc is set.
func memNow(gc bool) (heap, sys, live uint64) {
	if gc {
		runtime.GC()
	}
	var s runtime.MemStats
	runtime.ReadMemStats(&s)
	m := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(m)
	if m[0].Value.Kind() == metrics.KindUint64 {
		live = m[0].Value.Uint64()
	}
	return s.HeapInuse, s.Sys, live
}

func startMemPeak(interval time.Duration) *memPeak {
	m := &memPeak{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			heap, sys, live := memNow(false)
			m.peakHeap = max(m.peakHeap, heap)
			m.peakSys = max(m.peakSys, sys)
			m.peakLive = max(m.peakLive, live)
			select {
			case <-m.stop:
				return
			case <-t.C:
			}
		}
	}()
	return m
}

func (m *memPeak) finish() (heap, sys, live uint64) {
	close(m.stop)
	<-m.done
	return m.peakHeap, m.peakSys, m.peakLive
}

// imapMemory ranges over Imap of pooltest.Trivial over n generated items (the input
// is never held in memory) and reports the growth of the heap (HeapInuse)
// and of the memory obtained from the OS (Sys), from before the call to their
// peaks during it, sampled every 10ms.
func imapMemory(p *pool.Pool, n int) (result, error) {
	heap0, sys0, live0 := memNow(true)
	mp := startMemPeak(10 * time.Millisecond)
	seq := func(yield func(int) bool) {
		for i := range n {
			if !yield(i) {
				return
			}
		}
	}
	start := time.Now()
	count := 0
	var ierr error
	var midLive uint64
	var midGC time.Duration
	for r, err := range pool.Imap(context.Background(), p, pooltest.Trivial, seq) {
		if err != nil {
			ierr = err
			break
		}
		if r != pooltest.Trivial(count) {
			ierr = fmt.Errorf("imap yielded %d for item %d", r, count)
			break
		}
		count++
		if count == n/2 {
			// An exact snapshot of what is retained mid-stream (the GC's
			// time is taken off the timing).
			t := time.Now()
			_, _, midLive = memNow(true)
			midGC = time.Since(t)
		}
	}
	d := time.Since(start) - midGC
	heap, sys, live := mp.finish()
	live = max(live, midLive)
	if ierr != nil {
		return result{}, ierr
	}
	if count != n {
		return result{}, fmt.Errorf("imap yielded %d results for %d items", count, n)
	}
	return result{d: d, extra: map[string]float64{
		"heapBefore": float64(heap0),
		"heapGrowth": float64(heap) - float64(heap0),
		"sysGrowth":  float64(sys) - float64(sys0),
		"liveBefore": float64(live0),
		"liveGrowth": float64(live) - float64(live0),
	}}, nil
}

// scaleResult is one run of the scale simulation.
type scaleResult struct {
	workers    int
	items      int
	startup    time.Duration
	elapsed    time.Duration
	rate       float64 // items/s achieved
	ideal      float64 // workers / nap
	liveGrowth float64 // driver live heap peak − before the pool, bytes
	heapGrowth float64 // driver HeapInuse peak − before the pool, bytes
	inflight   int     // items in flight at once at most
	rssIdle    float64 // worker processes' mean RSS after start-up, bytes; NaN: unknown
	rssPeak    float64 // their total RSS at its peak during the run, per process
	cpuWorkers float64 // CPU seconds the worker processes used during the Map
	cpuDriver  float64 // CPU seconds this process used during the Map
}

// scaleSim starts a cluster of workers worker processes and maps nap(d) over
// enough items, one per chunk, to keep them busy for about target at the
// ideal rate (workers/d).
func scaleSim(workers int, d, target time.Duration) (scaleResult, error) {
	res := scaleResult{workers: workers}
	heap0, _, live0 := memNow(true)
	start := time.Now()
	p, err := cluster.New(pool.Workers(workers))
	if err != nil {
		return res, err
	}
	defer closeJoin(p)
	res.startup = time.Since(start)
	pids := children() // the worker processes: the only children while it runs
	res.rssIdle = rss(pids) / float64(workers)
	res.ideal = float64(workers) / d.Seconds()
	res.items = max(int(res.ideal*target.Seconds()), workers)
	res.inflight = 2 * workers
	in := make([]time.Duration, res.items)
	for i := range in {
		in[i] = d
	}
	// Sample the workers' RSS while they run.
	var rssMu sync.Mutex
	var rssPeak float64
	stopRSS := make(chan struct{})
	rssDone := make(chan struct{})
	go func() {
		defer close(rssDone)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stopRSS:
				return
			case <-t.C:
				r := rss(pids)
				rssMu.Lock()
				rssPeak = max(rssPeak, r)
				rssMu.Unlock()
			}
		}
	}()
	cpuW0, cpuD0 := cpuSeconds(pids), selfCPU()
	mp := startMemPeak(10 * time.Millisecond)
	t0 := time.Now()
	out, err := pool.Map(context.Background(), p, nap, in, pool.Chunksize(1))
	res.elapsed = time.Since(t0)
	heap, _, live := mp.finish()
	// What the driver retains with the pool open: its connections' state.
	_, _, liveAfter := memNow(true)
	live = max(live, liveAfter)
	close(stopRSS)
	<-rssDone
	res.cpuWorkers = cpuSeconds(pids) - cpuW0
	res.cpuDriver = selfCPU() - cpuD0
	if err != nil {
		return res, err
	}
	if len(out) != len(in) || out[len(out)-1] != d {
		return res, fmt.Errorf("bad results")
	}
	res.rate = float64(res.items) / res.elapsed.Seconds()
	res.heapGrowth = float64(heap) - float64(heap0)
	res.liveGrowth = float64(live) - float64(live0)
	res.rssPeak = rssPeak / float64(workers)
	return res, nil
}

// children returns the process IDs of this process's children, from /proc
// (nil where there is none).
func children() []int {
	self := os.Getpid()
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var pids []int
	for _, st := range stats {
		f := procStat(st)
		if len(f) < 2 {
			continue
		}
		if ppid, _ := strconv.Atoi(f[1]); ppid == self {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(st)))
			pids = append(pids, pid)
		}
	}
	return pids
}

// procStat returns the fields of a /proc/PID/stat file after the command
// name: state, ppid, … (field 3 onwards of proc(5)).
func procStat(path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')') // the command may hold spaces and parentheses
	if i < 0 {
		return nil
	}
	return strings.Fields(s[i+1:])
}

// rss sums the resident memory of the processes, in bytes; NaN if none can
// be read.
func rss(pids []int) float64 {
	total, n := 0.0, 0
	for _, pid := range pids {
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(status), "\n") {
			if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
				total += float64(kb) * 1024
				n++
			}
		}
	}
	if n == 0 {
		return math.NaN()
	}
	return total
}

// cpuSeconds sums the user and system CPU time of the processes, in seconds
// (clock ticks of 1/100 s, the Linux USER_HZ).
func cpuSeconds(pids []int) float64 {
	ticks := 0
	for _, pid := range pids {
		f := procStat(fmt.Sprintf("/proc/%d/stat", pid))
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.Atoi(f[11]) // utime, field 14
		s, _ := strconv.Atoi(f[12]) // stime, field 15
		ticks += u + s
	}
	return float64(ticks) / 100
}

// selfCPU returns this process's user and system CPU time, in seconds.
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return math.NaN()
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
