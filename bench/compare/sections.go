package main

import (
	"fmt"
	"math"
	"runtime"
	"strconv"
	"strings"
)

// The report's sections, in markdown.

func reportPi(b *strings.Builder, sz sizes, cs []*contender, pyPi map[string]any) {
	ncpu := runtime.NumCPU()
	ser, hand, mpl := cs[0].median(), cs[1].median(), cs[2].median()
	pySer, pyPool := cs[4].median(), cs[5].median()
	fmt.Fprintf(b, "\n## π: %s samples in %d batches of %s\n\n", fmtCount(sz.piSamples), sz.piBatches, fmtCount(sz.piSamples/sz.piBatches))
	b.WriteString("Time of the work only; a pool's start-up (until every worker is ready) is timed apart, as in the article.\n\n")
	t := table{head: []string{"contender", "workers", "time", "start-up", "speed-up vs serial Go", "Go/Python time", "what runs"}}
	for i, c := range cs {
		if !c.ok() {
			t.add(c.name, "", "skipped", "", "", "", c.note)
			continue
		}
		workers := strconv.Itoa(ncpu)
		if i == 0 || i == 4 {
			workers = "1"
		}
		startup := ""
		if su := c.medianExtra("startup"); !math.IsNaN(su) {
			startup = fmtDur(su)
		}
		goPy := ""
		switch i {
		case 0:
			goPy = fmtGoPy(c.median(), pySer)
		case 1, 2, 3:
			goPy = fmtGoPy(c.median(), pyPool)
		}
		su := fmtRatio(ser / c.median())
		if i == 5 && !math.IsNaN(pySer) {
			su += fmt.Sprintf(" (vs Python serial: %s)", fmtRatio(pySer/c.median()))
		}
		t.add(c.name, workers, fmtDur(c.median()), startup, su, goPy, c.note)
	}
	b.WriteString(t.String())
	fmt.Fprintf(b, "\nmp local ÷ hand-written fan-out: %s of its time", fmtRatio(mpl/hand))
	if d := mpl - hand; d > 0 {
		fmt.Fprintf(b, " (%s slower)", fmtDur(d))
	}
	b.WriteString(".\n")
	if !math.IsNaN(pyPool) {
		b.WriteString("Go/Python time: serial Go ÷ Python serial; the parallel Go rows ÷ Python Pool.")
		if pyPi != nil {
			fmt.Fprintf(b, " Python's start method: %v.", pyPi["start_method"])
		}
		b.WriteString("\n")
	}
}

func reportMap(b *strings.Builder, sz sizes, cs []*contender) {
	mpLocal := cs[0].median()
	fmt.Fprintf(b, "\n## Map of x*2+1 over %s ints\n\n", fmtCount(sz.mapItems))
	fmt.Fprintf(b, "Each Go sample is the mean of as many whole Maps as fit in %v (at least one); pools are started once, outside the timing. Items are ints; every contender returns the results in order.\n\n", sz.minTime)
	t := table{head: []string{"contender", "time per Map", "ns/item", "items/s", "time ÷ mp local", "what runs"}}
	var cluster, py *contender
	for _, c := range cs {
		switch c.name {
		case "mp cluster":
			cluster = c
		case "Python Pool.map":
			py = c
		}
		if !c.ok() {
			t.add(c.name, "skipped", "", "", "", c.note)
			continue
		}
		m := c.median()
		t.add(c.name, fmtDur(m), fmt.Sprintf("%.1f", m*1e9/float64(sz.mapItems)), fmtRate(float64(sz.mapItems)/m), fmtRatio(m/mpLocal), c.note)
	}
	b.WriteString(t.String())
	if py != nil && py.ok() && cluster != nil {
		fmt.Fprintf(b, "\nGo/Python time: mp local ÷ Python Pool.map %s; mp cluster ÷ Python Pool.map %s.\n",
			fmtGoPy(mpLocal, py.median()), fmtGoPy(cluster.median(), py.median()))
	}
}

func reportApply(b *strings.Builder, sz sizes, cs []*contender, py *contender) {
	ncpu := runtime.NumCPU()
	fmt.Fprintf(b, "\n## Apply round trip, %s calls one after the other\n\n", fmtCount(sz.applyCalls))
	t := table{head: []string{"contender", "p50", "p99", "Go/Python p50"}}
	for _, c := range cs {
		goPy := ""
		if py != nil && !isLimit(c) {
			goPy = fmtGoPy(c.medianExtra("p50"), py.medianExtra("apply_p50_ns"))
		}
		t.add(c.name, fmtNs(c.medianExtra("p50")), fmtNs(c.medianExtra("p99")), goPy)
	}
	if py != nil {
		t.add(fmt.Sprintf("Python Pool(%d).apply", ncpu), fmtNs(py.medianExtra("apply_p50_ns")), fmtNs(py.medianExtra("apply_p99_ns")), "")
	} else {
		t.add("Python Pool.apply", "skipped", "", "")
	}
	b.WriteString(t.String())
	b.WriteString("\np50 and p99: medians over the rounds of each round's percentiles. The cluster's round trip is a chunk of one item to a worker process and back over loopback TCP. The limit rows send 64 bytes to an echo process (this binary re-executed) and wait for them, over the same kind of connection: a round trip with nothing but the transport.\n")
}

func reportAsync(b *strings.Builder, sz sizes, cs []*contender, py *contender) {
	ncpu := runtime.NumCPU()
	b.WriteString("\n## ApplyAsync throughput\n\n")
	t := table{head: []string{"contender", "tasks/s", "Go/Python time"}}
	pyRate := math.NaN()
	if py != nil {
		pyRate = py.medianExtra("apply_async_tasks_per_s")
	}
	for _, c := range cs {
		goPy := ""
		if !isLimit(c) {
			goPy = fmtGoPy(pyRate, c.medianExtra("rate"))
		}
		t.add(c.name, fmtRate(c.medianExtra("rate")), goPy)
	}
	if py != nil {
		t.add(fmt.Sprintf("Python Pool(%d).apply_async, all at once, %s tasks", ncpu, fmtCount(sz.asyncTasks)), fmtRate(pyRate), "")
	} else {
		t.add("Python Pool.apply_async", "skipped", "")
	}
	b.WriteString(t.String())
	fmt.Fprintf(b, "\n\"All at once\" starts every task, then Gets every result, as a Python loop of apply_async then get does; \"%d in flight\" Gets the oldest result before starting a task past %d. Go/Python time is Python tasks/s ÷ Go tasks/s.\n", sz.asyncWindow, sz.asyncWindow)
}

func reportImap(b *strings.Builder, sz sizes, c *contender) {
	fmt.Fprintf(b, "\n## Imap over %s items, local\n\n", fmtCount(sz.imapItems))
	b.WriteString("The input is a generated iter.Seq (never held in memory) and results are consumed as they come, so a bounded Imap keeps memory flat however many items pass. Sampled every 10 ms; growth is the peak during the call minus the value before it (after a GC). The live heap (runtime/metrics /gc/heap/live:bytes, what the last GC marked; also read after a GC forced half-way through the items, whose time is not counted) is what the program retains and is held to the bound; HeapInuse also counts garbage not yet collected, which the GC lets grow as large as the live heap (GOGC=100), so it follows the rest of the program.\n\n")
	t := table{head: []string{"time", "ns/item", "live heap before", "live heap growth (max over rounds)", "HeapInuse before", "HeapInuse growth (max)", "Sys growth (max)", "bound 16 MiB"}}
	verdict := "within"
	if c.maxExtra("liveGrowth") > imapBound {
		verdict = "**exceeded**"
	}
	t.add(fmtDur(c.median()), fmt.Sprintf("%.1f", c.median()*1e9/float64(sz.imapItems)),
		fmtMiB(c.medianExtra("liveBefore")), fmtMiB(c.maxExtra("liveGrowth")),
		fmtMiB(c.medianExtra("heapBefore")), fmtMiB(c.maxExtra("heapGrowth")), fmtMiB(c.maxExtra("sysGrowth")), verdict)
	b.WriteString(t.String())
	fmt.Fprintf(b, "\nFor scale: holding the %s inputs or results would take %s each.\n", fmtCount(sz.imapItems), fmtMiB(float64(sz.imapItems)*8))
}

func reportScale(b *strings.Builder, sz sizes, o options, scales []scaleResult) {
	fmt.Fprintf(b, "\n## Scale simulation: mp cluster with many worker processes, items that sleep %v\n\n", o.nap)
	if len(scales) == 0 {
		b.WriteString("Skipped (-scale is empty).\n")
		return
	}
	fmt.Fprintf(b, "One run each, after the rounds: pool.Map(nap, items, Chunksize(1)) with enough items for ~%v at the ideal rate, worker processes ÷ nap. Each worker holds up to 2 chunks (here items): items of 5ms come back too slowly to deepen the scheduler's pipeline past its minimum. Driver memory: its peak during the Map (for the live heap, the larger of the samples and a GC right after the Map, the pool still open) minus its value before the pool started, so it includes each connection's buffers. Worker RSS: VmRSS of the worker processes (/proc), per process. Cores busy: CPU time used during the Map ÷ its wall time, for the driver and for all the workers together (other programs on the machine are not counted); CPU per item: the same CPU time ÷ the items, what an item that only sleeps costs the machine in round trips, wake-ups and timers. The ideal rate needs that many cores: items/s × CPU per item.\n\n", sz.scaleTarget)
	t := table{head: []string{"worker processes", "start-up", "items", "time", "items/s", "ideal items/s", "% of ideal", "driver live heap growth", "per worker", "per in-flight item", "driver HeapInuse growth", "worker RSS idle / peak", "cores busy: driver + workers", "CPU per item: driver + workers"}}
	for _, s := range scales {
		t.add(strconv.Itoa(s.workers), fmtDur(s.startup.Seconds()), fmtCount(s.items), fmtDur(s.elapsed.Seconds()),
			fmtRate(s.rate), fmtRate(s.ideal), fmt.Sprintf("%.1f%%", 100*s.rate/s.ideal),
			fmtMiB(s.liveGrowth), fmtKiB(s.liveGrowth/float64(s.workers)), fmtKiB(s.liveGrowth/float64(s.inflight)),
			fmtMiB(s.heapGrowth), fmtMiB(s.rssIdle)+" / "+fmtMiB(s.rssPeak),
			fmt.Sprintf("%.2f + %.2f of %d", s.cpuDriver/s.elapsed.Seconds(), s.cpuWorkers/s.elapsed.Seconds(), runtime.NumCPU()),
			fmtDur(s.cpuDriver/float64(s.items))+" + "+fmtDur(s.cpuWorkers/float64(s.items)))
	}
	b.WriteString(t.String())
}

func reportSweeps(b *strings.Builder, sz sizes, o options, serial float64, speed []speedupPoint, items []perItemPoint, ms []mapper) {
	fmt.Fprintf(b, "\n## π speed-up by workers (%s)\n\n", "speedup.png")
	fmt.Fprintf(b, "Speed-up over serial Go (time in brackets); medians of %d interleaved reps; pools started outside the timing. Serial Go: %s.\n\n", o.rounds, fmtDur(serial))
	head := []string{"workers"}
	head = append(head, sweepNames...)
	t := table{head: head}
	for _, pt := range speed {
		row := []string{strconv.Itoa(pt.workers)}
		for _, n := range sweepNames {
			row = append(row, fmt.Sprintf("%s (%s)", fmtRatio(pt.speedup[n]), fmtDur(pt.seconds[n])))
		}
		t.add(row...)
	}
	b.WriteString(t.String())

	fmt.Fprintf(b, "\n## Map cost per item by size, ns/item (%s)\n\n", "per_item.png")
	fmt.Fprintf(b, "Medians of %d interleaved reps, each the mean of the Maps that fit in %v. mp cluster up to %s items.\n\n", sz.sweepReps, sz.minTime, fmtCount(sz.clusterMax))
	head = []string{"items"}
	for _, m := range ms {
		head = append(head, m.name)
	}
	t = table{head: head}
	for _, pt := range items {
		row := []string{fmtCount(pt.size)}
		for _, m := range ms {
			if v, ok := pt.ns[m.name]; ok {
				row = append(row, fmt.Sprintf("%.3g", v))
			} else {
				row = append(row, "–")
			}
		}
		t.add(row...)
	}
	b.WriteString(t.String())
}

func fmtKiB(b float64) string {
	if math.IsNaN(b) {
		return "–"
	}
	return fmt.Sprintf("%.0f KiB", b/1024)
}

// isLimit reports whether c is a limit row: the transport alone.
func isLimit(c *contender) bool { return strings.HasPrefix(c.name, "limit: ") }

// byPrefix returns the first contender of cs whose name starts with
// prefix and that ran, or nil.
func byPrefix(cs []*contender, prefix string) *contender {
	for _, c := range cs {
		if strings.HasPrefix(c.name, prefix) && c.ok() {
			return c
		}
	}
	return nil
}

// The figures of bench/results/compare.md when issue 13 set the targets
// (the run of 2026-11-25), printed beside this run's.
const (
	was13Pi         = 1.68   // π cluster ÷ serial
	was13MapNs      = 53.0   // cluster Map of ints, ns/item
	was13ApplyP50   = 98.1e3 // cluster Apply p50, ns
	was13Async64    = 73.8e3 // cluster ApplyAsync, 64 in flight, tasks/s
	was13AsyncAll   = 61.5e3 // cluster ApplyAsync, all at once, tasks/s
	was13Scale64Pct = 86.0   // 64 worker processes, % of ideal
)

// reportTargets gives issue 13's figures: this run's, the figure when the
// targets were set, the target, and the limit this run measured beside it.
func reportTargets(b *strings.Builder, sz sizes, piCs, mapCs, applyCs, asyncCs []*contender, scales []scaleResult) {
	b.WriteString("\n## The round-trip targets (issue 13)\n\n")
	b.WriteString("This run's figure beside the one bench/results held when the targets were set (2026-11-25) and the limit measured in this run: the transport alone, between this process and another over loopback (the limit rows of the sections above), or the local pool.\n\n")
	t := table{head: []string{"figure", "this run", "when set", "target", "met", "the limit, this run"}}
	met := func(ok bool) string {
		if ok {
			return "yes"
		}
		return "no"
	}
	perItem := func(c *contender) string {
		if c == nil {
			return "?"
		}
		return fmt.Sprintf("%.1f ns/item", c.median()*1e9/float64(sz.mapItems))
	}
	p50 := func(c *contender) string {
		if c == nil {
			return "?"
		}
		return fmtNs(c.medianExtra("p50"))
	}
	if len(piCs) >= 4 && piCs[0].ok() && piCs[3].ok() {
		ser := piCs[0].median()
		su := ser / piCs[3].median()
		t.add(fmt.Sprintf("π %s samples, cluster ÷ serial", fmtCount(sz.piSamples)), fmtRatio(su), fmtRatio(was13Pi), "≥ 1.85×", met(su >= 1.85),
			fmt.Sprintf("mp local %s, hand-written fan-out %s", fmtRatio(ser/piCs[2].median()), fmtRatio(ser/piCs[1].median())))
	}
	if c := byPrefix(mapCs, "mp cluster"); c != nil {
		ns := c.median() * 1e9 / float64(sz.mapItems)
		t.add(fmt.Sprintf("cluster Map of %s ints", fmtCount(sz.mapItems)), fmt.Sprintf("%.1f ns/item", ns), fmt.Sprintf("%.1f ns/item", was13MapNs), "≤ 25 ns/item", met(ns <= 25),
			fmt.Sprintf("5 bytes an item each way: TCP %s, yamux %s; mp local %s", perItem(byPrefix(mapCs, "limit: "+limitTCP)), perItem(byPrefix(mapCs, "limit: "+limitYamux)), perItem(byPrefix(mapCs, "mp local"))))
	}
	if c := byPrefix(applyCs, "mp cluster Apply"); c != nil {
		v := c.medianExtra("p50")
		t.add("cluster Apply p50", fmtNs(v), fmtNs(was13ApplyP50), "≤ 50 µs", met(v <= 50e3),
			fmt.Sprintf("64-byte echo p50: TCP %s, yamux %s", p50(byPrefix(applyCs, "limit: 64-byte echo, "+limitTCP)), p50(byPrefix(applyCs, "limit: 64-byte echo, "+limitYamux))))
	}
	limRate := "?"
	if c := byPrefix(asyncCs, "limit: "); c != nil {
		limRate = fmt.Sprintf("64-byte echoes over yamux, %d in flight: %s/s", sz.asyncWindow, fmtRate(c.medianExtra("rate")))
	}
	if c := byPrefix(asyncCs, fmt.Sprintf("mp cluster ApplyAsync, %d in flight", sz.asyncWindow)); c != nil {
		v := c.medianExtra("rate")
		t.add(fmt.Sprintf("cluster ApplyAsync, %d in flight", sz.asyncWindow), fmtRate(v)+"/s", fmtRate(was13Async64)+"/s", "≥ 200k/s", met(v >= 200e3), limRate)
	}
	if c := byPrefix(asyncCs, "mp cluster ApplyAsync, all at once"); c != nil {
		v := c.medianExtra("rate")
		t.add("cluster ApplyAsync, all at once", fmtRate(v)+"/s", fmtRate(was13AsyncAll)+"/s", "≥ 200k/s", met(v >= 200e3), limRate)
	}
	for _, s := range scales {
		if s.workers != 64 {
			continue
		}
		pct := 100 * s.rate / s.ideal
		t.add("64 worker processes, items sleeping 5 ms", fmt.Sprintf("%.1f%% of ideal", pct), fmt.Sprintf("%.0f%%", was13Scale64Pct), "≥ 90%", met(pct >= 90),
			fmt.Sprintf("ideal: 64 ÷ 5 ms; cores busy during it: driver %.2f + workers %.2f of %d; at %s of CPU an item, the ideal rate needs %.2f cores", s.cpuDriver/s.elapsed.Seconds(), s.cpuWorkers/s.elapsed.Seconds(), runtime.NumCPU(),
				fmtDur((s.cpuDriver+s.cpuWorkers)/float64(s.items)), s.ideal*(s.cpuDriver+s.cpuWorkers)/float64(s.items)))
	}
	b.WriteString(t.String())
}
