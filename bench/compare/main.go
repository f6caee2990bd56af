// Command compare measures mp against serial Go, a hand-written goroutine
// fan-out, other Go worker pools and Python's multiprocessing.Pool, and
// prints a markdown report of medians and ratios. Run it from bench/:
//
//	go run ./compare -out results/compare.md -plots results
//	go run ./compare -quick        # a smoke test with tiny sizes
//
// Every section is measured in -rounds rounds; each round runs every
// contender of every section once, starting at a different contender
// (rotated order), so that slow drifts of a shared machine spread over all
// contenders. The tables give medians. See ../README.md for what each row
// measures.
//
// The mp cluster rows start worker processes by re-executing this binary,
// so main calls cluster.WorkerMain first.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/alitto/pond/v2"

	"github.com/mpgo/mp/pool/cluster"
	"github.com/mpgo/mp/pool/local"
)

// sizes of the work, full or -quick.
type sizes struct {
	piSamples, piBatches int
	mapItems             int
	applyCalls           int
	asyncTasks           int
	asyncWindow          int
	imapItems            int
	minTime              time.Duration // each Map sample: as many Maps as fit
	scaleTarget          time.Duration
	sweepSizes           []int
	clusterMax           int // largest Map input for mp cluster in the sweep
	sweepReps            int // reps of the per-item sweep; the speed-up sweep uses -rounds
}

var full = sizes{
	piSamples: 10_000_000, piBatches: 100,
	mapItems:    1_000_000,
	applyCalls:  2000,
	asyncTasks:  20000,
	asyncWindow: 64,
	imapItems:   10_000_000,
	minTime:     100 * time.Millisecond,
	scaleTarget: 2500 * time.Millisecond,
	sweepSizes:  []int{1e3, 1e4, 1e5, 1e6, 1e7},
	clusterMax:  1e6,
	sweepReps:   3,
}

var quick = sizes{
	piSamples: 1_000_000, piBatches: 100,
	mapItems:    100_000,
	applyCalls:  200,
	asyncTasks:  2000,
	asyncWindow: 64,
	imapItems:   1_000_000,
	minTime:     10 * time.Millisecond,
	scaleTarget: 300 * time.Millisecond,
	sweepSizes:  []int{1e3, 1e4, 1e5},
	clusterMax:  1e5,
	sweepReps:   1,
}

const imapBound = 16 << 20 // the Imap memory target

var allSections = []string{"pi", "map", "apply", "async", "imap", "scale", "sched", "put", "wordfreq"}

type options struct {
	sz           sizes
	rounds       int
	quick        bool
	python       string
	plotDir      string
	scaleWorkers []int
	asyncAll     []int
	nap          time.Duration
	sections     map[string]bool
}

func main() {
	cluster.WorkerMain() // worker processes of the mp cluster rows serve here
	echoMain()           // the echo processes of the limit rows too

	rounds := flag.Int("rounds", 5, "rounds of every section (medians are over rounds); -quick makes the default 2")
	quickFlag := flag.Bool("quick", false, "tiny sizes, for a smoke test: the numbers mean little")
	out := flag.String("out", "", "write the markdown report also to this file")
	plots := flag.String("plots", "", "also run the sweeps and write speedup.png and per_item.png to this directory")
	python := flag.String("python", "python3", `Python interpreter for the Python rows; "" skips them`)
	scale := flag.String("scale", "16,64", `worker processes of each scale-simulation run, comma-separated; "" skips it`)
	asyncAll := flag.String("async-all", "20000", "task counts of the mp cluster \"ApplyAsync, all at once\" rows")
	napD := flag.Duration("nap", 5*time.Millisecond, "sleep of each item in the scale simulation")
	only := flag.String("only", strings.Join(allSections, ","), "sections to run, comma-separated, of "+strings.Join(allSections, ","))
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the driver to this file")
	flag.Parse()

	o := options{sz: full, rounds: *rounds, quick: *quickFlag, python: *python, plotDir: *plots, nap: *napD, sections: map[string]bool{}}
	if o.quick {
		o.sz = quick
		rset := false
		flag.Visit(func(f *flag.Flag) { rset = rset || f.Name == "rounds" })
		if !rset {
			o.rounds = 2
		}
	}
	if o.rounds < 1 {
		fatal(fmt.Errorf("-rounds must be at least 1"))
	}
	var err error
	if o.scaleWorkers, err = intList("-scale", *scale); err != nil {
		fatal(err)
	}
	if o.asyncAll, err = intList("-async-all", *asyncAll); err != nil {
		fatal(err)
	}
	for _, s := range strings.Split(*only, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if !slices.Contains(allSections, s) {
			fatal(fmt.Errorf("-only: unknown section %q (want some of %s)", s, strings.Join(allSections, ",")))
		}
		o.sections[s] = true
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fatal(err)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}

	start := time.Now()
	report, err := run(o)
	if err != nil {
		fatal(err)
	}
	report += fmt.Sprintf("\nThe whole run took %s.\n", time.Since(start).Round(time.Second))
	fmt.Print(report)
	if *out != "" {
		if err := ensureDir(filepath.Dir(*out)); err != nil {
			fatal(err)
		}
		if err := os.WriteFile(*out, []byte(report), 0o644); err != nil {
			fatal(err)
		}
		logf("wrote %s", *out)
	}
}

func intList(name, s string) ([]int, error) {
	var v []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%s: bad count %q", name, f)
		}
		v = append(v, n)
	}
	return v, nil
}

func fatal(err error) {
	pprof.StopCPUProfile()
	fmt.Fprintln(os.Stderr, "compare:", err)
	os.Exit(1)
}

// logf reports progress on stderr; the report goes to stdout.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// section is a part of the report measured in rounds.
type section struct {
	key string
	cs  []*contender
	// reps is how many times a round runs the section (at least once): the
	// π runs take some 50ms each, short enough that a noisy neighbour moves
	// a median of five, so they run piReps times per round.
	reps int
}

const piReps = 4

func run(o options) (string, error) {
	sz := o.sz
	ncpu := runtime.NumCPU()

	// Python, if there is one.
	var pyDir, pyVersion, pySkip string
	python := o.python
	if python == "" {
		pySkip = "Python rows skipped: -python is empty."
	} else if py, err := exec.LookPath(python); err != nil {
		pySkip = fmt.Sprintf("Python rows skipped: %s is not on PATH.", python)
	} else if pyDir, err = pythonScripts(); err != nil {
		pySkip = "Python rows skipped: " + err.Error()
	} else {
		python = py
		pyVersion = pythonVersion(py)
	}
	if pySkip != "" {
		logf("%s", pySkip)
	}

	// Long-lived pools for the Map, Apply and Imap sections and the sweeps;
	// started once, outside every timing.
	lp, err := local.New()
	if err != nil {
		return "", err
	}
	defer closeJoin(lp)
	logf("starting the shared mp cluster pool (%d worker processes)", ncpu)
	cp, err := cluster.New()
	if err != nil {
		return "", err
	}
	defer closeJoin(cp)
	pp := pond.NewPool(ncpu)
	defer pp.StopAndWait()
	var lim *limits
	if o.sections["map"] || o.sections["apply"] || o.sections["async"] {
		logf("starting the echo processes of the limit rows")
		if lim, err = startLimits(); err != nil {
			return "", fmt.Errorf("the limit rows: %w", err)
		}
		defer lim.close()
	}

	batches := batchSizes(sz.piSamples, sz.piBatches)

	// π.
	var pyPi map[string]any // the last pi_pool.py output, for its details
	piCs := []*contender{
		{name: "serial Go", note: "the batches one after the other", run: func() (result, error) {
			d, err := piSerial(batches)
			return result{d: d}, err
		}},
		{name: "hand-written fan-out", note: fmt.Sprintf("%d goroutines pull batch indexes from an atomic counter; a WaitGroup", ncpu), run: func() (result, error) {
			d, err := piHand(batches, ncpu)
			return result{d: d}, err
		}},
		{name: "mp local", note: "pool.Map on local.New(), started in each round", run: func() (result, error) {
			return withNewPool(newLocal(), batches)
		}},
		{name: "mp cluster", note: "pool.Map on cluster.New(), started in each round: worker processes, embedded (this binary re-executed)", run: func() (result, error) {
			return withNewPool(newCluster(), batches)
		}},
		{name: "Python serial", note: "python/pi_serial.py", skip: pySkip, run: func() (result, error) {
			m, err := runPython(python, pyDir, "pi_serial.py", sz.piSamples, sz.piBatches)
			if err != nil {
				return result{}, err
			}
			s, err := num(m, "seconds")
			return result{d: secs(s)}, err
		}},
		{name: "Python Pool", note: fmt.Sprintf("python/pi_pool.py: multiprocessing.Pool(%d).map", ncpu), skip: pySkip, run: func() (result, error) {
			m, err := runPython(python, pyDir, "pi_pool.py", sz.piSamples, sz.piBatches, ncpu)
			if err != nil {
				return result{}, err
			}
			pyPi = m
			s, err := num(m, "seconds")
			if err != nil {
				return result{}, err
			}
			su, err := num(m, "startup_seconds")
			return result{d: secs(s), extra: map[string]float64{"startup": su}}, err
		}},
	}

	// Map of trivial, and the Python process that also measures apply and
	// apply_async.
	items := ints(sz.mapItems)
	ms := mappers(lp, cp, pp, 0)
	var mapCs []*contender
	for _, m := range ms {
		mapCs = append(mapCs, &contender{name: m.name, note: m.note, run: func() (result, error) {
			d, err := timeMap(m, items, sz.minTime)
			return result{d: d}, err
		}})
	}
	if lim != nil {
		for _, c := range []struct {
			name string
			conn net.Conn
		}{{limitTCP, lim.tcp}, {limitYamux, lim.ymx}} {
			mapCs = append(mapCs, &contender{name: "limit: " + c.name + ", 5 bytes an item each way", note: "the transport alone, in 64 KiB writes: the bytes of the items and of their results, with no encoding and no function", run: func() (result, error) {
				d, err := repeatFor(sz.minTime, func() error { return stream(c.conn, sz.mapItems) })
				return result{d: d}, err
			}})
		}
	}
	pyTrivial := &contender{
		name: "Python Pool.map",
		note: fmt.Sprintf("python/trivial.py: multiprocessing.Pool(%d).map(f, range(n)), default chunksize; one map per round", ncpu),
		skip: pySkip,
		run: func() (result, error) {
			m, err := runPython(python, pyDir, "trivial.py", sz.mapItems, sz.applyCalls, sz.asyncTasks, ncpu)
			if err != nil {
				return result{}, err
			}
			r := result{extra: map[string]float64{}}
			for _, k := range []string{"map_seconds", "apply_p50_ns", "apply_p99_ns", "apply_async_tasks_per_s"} {
				v, err := num(m, k)
				if err != nil {
					return result{}, err
				}
				r.extra[k] = v
			}
			r.d = secs(r.extra["map_seconds"])
			return r, nil
		},
	}
	if !o.sections["map"] && (o.sections["apply"] || o.sections["async"]) {
		// The Python apply rows come from the same script: run it alone.
		mapCs = nil
	}
	mapCs = append(mapCs, pyTrivial)

	applyCs := []*contender{
		{name: "mp local Apply", run: func() (result, error) { return applyLatency(lp, sz.applyCalls) }},
		{name: "mp cluster Apply", run: func() (result, error) { return applyLatency(cp, sz.applyCalls) }},
		{name: "limit: 64-byte echo, " + limitTCP, run: func() (result, error) { return roundTrips(lim.tcp, sz.applyCalls) }},
		{name: "limit: 64-byte echo, " + limitYamux, run: func() (result, error) { return roundTrips(lim.ymx, sz.applyCalls) }},
	}
	asyncCs := []*contender{
		{name: fmt.Sprintf("mp local ApplyAsync, all at once, %s tasks", fmtCount(sz.asyncTasks)), run: func() (result, error) {
			return applyAsync(lp, sz.asyncTasks, 0)
		}},
		{name: fmt.Sprintf("mp cluster ApplyAsync, %d in flight, %s tasks", sz.asyncWindow, fmtCount(sz.asyncTasks)), run: func() (result, error) {
			return applyAsync(cp, sz.asyncTasks, sz.asyncWindow)
		}},
	}
	for _, n := range o.asyncAll {
		asyncCs = append(asyncCs, &contender{name: fmt.Sprintf("mp cluster ApplyAsync, all at once, %s tasks", fmtCount(n)), run: func() (result, error) {
			return applyAsync(cp, n, 0)
		}})
	}
	asyncCs = append(asyncCs, &contender{name: fmt.Sprintf("limit: 64-byte echoes, %s, %d in flight, %s messages", limitYamux, sz.asyncWindow, fmtCount(sz.asyncTasks)), run: func() (result, error) {
		return pipelined(lim.ymx, sz.asyncTasks, sz.asyncWindow)
	}})
	imapCs := []*contender{
		{name: "mp local Imap", run: func() (result, error) { return imapMemory(lp, sz.imapItems) }},
	}

	var sections []section
	for _, s := range []section{{"pi", piCs, piReps}, {"map", mapCs, 1}, {"apply", applyCs, 1}, {"async", asyncCs, 1}, {"imap", imapCs, 1}} {
		if o.sections[s.key] || (s.key == "map" && (o.sections["apply"] || o.sections["async"])) {
			sections = append(sections, s)
		}
	}
	for r := range o.rounds {
		for _, s := range sections {
			logf("round %d/%d: %s", r+1, o.rounds, s.key)
			for k := range max(s.reps, 1) {
				if err := runRound(r*max(s.reps, 1)+k, s.cs); err != nil {
					return "", fmt.Errorf("round %d, %s: %w", r+1, s.key, err)
				}
			}
		}
	}

	// The scale simulation: one run per size.
	var scales []scaleResult
	if o.sections["scale"] {
		for _, w := range o.scaleWorkers {
			logf("scale simulation: %d worker processes, nap %v", w, o.nap)
			res, err := scaleSim(w, o.nap, sz.scaleTarget)
			if err != nil {
				return "", fmt.Errorf("scale simulation with %d workers: %w", w, err)
			}
			scales = append(scales, res)
		}
	}

	// The scheduler scenarios: one run each.
	var bal balanceResult
	var stop stopResult
	if o.sections["sched"] {
		logf("scheduler: balance after 100 Applies")
		if bal, err = schedBalance(); err != nil {
			return "", fmt.Errorf("scheduler balance: %w", err)
		}
		logf("scheduler: a stopped worker")
		if stop, err = schedStop(); err != nil {
			return "", fmt.Errorf("scheduler, stopped worker: %w", err)
		}
	}

	// Shared values and the wordfreq example: one run each.
	var puts []putRow
	ps := putSizesFor(o.quick)
	if o.sections["put"] {
		logf("put: a %d MiB table by Ref and by value", ps.table>>20)
		if puts, err = putBench(ps); err != nil {
			return "", fmt.Errorf("put: %w", err)
		}
	}
	var words []wordfreqRow
	if o.sections["wordfreq"] {
		limit := 0
		if o.quick {
			limit = 500
		}
		logf("wordfreq: Go's sources, local and cluster")
		if words, err = wordfreqBench(limit); err != nil {
			return "", fmt.Errorf("wordfreq: %w", err)
		}
	}

	machineLine := fmt.Sprintf("%d CPUs, %s, %s/%s", ncpu, runtime.Version(), runtime.GOOS, runtime.GOARCH)

	// Sweeps and plots.
	var serialSweep float64
	var speedPts []speedupPoint
	var itemPts []perItemPoint
	if o.plotDir != "" {
		if err := ensureDir(o.plotDir); err != nil {
			return "", err
		}
		ws := make([]int, 0, ncpu+1)
		for w := 1; w <= ncpu; w++ {
			ws = append(ws, w)
		}
		ws = append(ws, 2*ncpu)
		logf("speed-up sweep: workers %v, %d reps", ws, o.rounds)
		serialSweep, speedPts, err = speedupSweep(batches, ws, o.rounds)
		if err != nil {
			return "", err
		}
		if _, err := plotSpeedup(o.plotDir, speedPts, sz.piSamples, sz.piBatches, machineLine); err != nil {
			return "", err
		}
		logf("per-item sweep: sizes %v, %d reps", sz.sweepSizes, sz.sweepReps)
		sweepMs := mappers(lp, cp, pp, sz.clusterMax)
		itemPts, err = perItemSweep(sweepMs, sz.sweepSizes, sz.sweepReps, sz.minTime)
		if err != nil {
			return "", err
		}
		var names []string
		for _, m := range sweepMs {
			names = append(names, m.name)
		}
		if _, err := plotPerItem(o.plotDir, itemPts, names, machineLine); err != nil {
			return "", err
		}
	}

	// The report.
	var b strings.Builder
	b.WriteString("# mp benchmarks (bench/compare)\n\n")
	b.WriteString(machine(pyVersion))
	fmt.Fprintf(&b, "- Medians of %d rounds (π: %d runs per round); each round runs every contender of a section once, in rotated order.\n", o.rounds, piReps)
	if o.quick {
		b.WriteString("- **-quick: tiny sizes for a smoke test; the numbers mean little.**\n")
	}
	if pySkip != "" {
		b.WriteString("- " + pySkip + "\n")
	}
	if !pyTrivial.ok() {
		pyTrivial = nil
	}
	if o.sections["pi"] {
		reportPi(&b, sz, piCs, pyPi)
	}
	if o.sections["map"] {
		reportMap(&b, sz, mapCs)
	}
	if o.sections["apply"] {
		reportApply(&b, sz, applyCs, pyTrivial)
	}
	if o.sections["async"] {
		reportAsync(&b, sz, asyncCs, pyTrivial)
	}
	if o.sections["imap"] {
		reportImap(&b, sz, imapCs[0])
	}
	if o.sections["scale"] {
		reportScale(&b, sz, o, scales)
	}
	if o.sections["sched"] {
		reportSched(&b, bal, stop)
	}
	reportTargets(&b, sz, piCs, mapCs, applyCs, asyncCs, scales)
	if o.sections["put"] {
		reportPut(&b, ps, puts)
	}
	if o.sections["wordfreq"] {
		reportWordfreq(&b, words)
	}
	if o.plotDir != "" {
		reportSweeps(&b, sz, o, serialSweep, speedPts, itemPts, ms)
	}
	return b.String(), nil
}

func secs(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
