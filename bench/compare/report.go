package main

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

// A result is what one run of a contender measured: a duration and, if the
// contender has more to say, named values (latencies, memory, …).
type result struct {
	d     time.Duration
	extra map[string]float64
}

// A contender is one way of doing the work of a section.
type contender struct {
	name string
	note string // what exactly it runs, for the table
	run  func() (result, error)
	// skip, if set, says why the contender is not run.
	skip string

	results []result
}

func (c *contender) durations() []float64 {
	v := make([]float64, len(c.results))
	for i, r := range c.results {
		v[i] = r.d.Seconds()
	}
	return v
}

// median of the durations, in seconds.
func (c *contender) median() float64 { return median(c.durations()) }

// medianExtra is the median of a named value over the runs that have it.
func (c *contender) medianExtra(k string) float64 {
	var v []float64
	for _, r := range c.results {
		if x, ok := r.extra[k]; ok {
			v = append(v, x)
		}
	}
	return median(v)
}

// maxExtra is the largest of a named value over the runs that have it.
func (c *contender) maxExtra(k string) float64 {
	m := math.NaN()
	for _, r := range c.results {
		if x, ok := r.extra[k]; ok && (math.IsNaN(m) || x > m) {
			m = x
		}
	}
	return m
}

func (c *contender) ok() bool { return c.skip == "" && len(c.results) > 0 }

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// percentile of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(int(p*float64(len(sorted))), len(sorted)-1)]
}

// repeatFor runs f until at least minTime has passed (at least once) and
// returns the mean duration of one run.
func repeatFor(minTime time.Duration, f func() error) (time.Duration, error) {
	start := time.Now()
	n := 0
	for {
		if err := f(); err != nil {
			return 0, err
		}
		n++
		if el := time.Since(start); el >= minTime {
			return el / time.Duration(n), nil
		}
	}
}

// runRound runs every contender of cs once, starting at the one after the
// previous round's first, and records the results.
func runRound(round int, cs []*contender) error {
	n := len(cs)
	for i := range n {
		c := cs[(i+round)%n]
		if c.skip != "" {
			continue
		}
		runtime.GC()
		r, err := c.run()
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		c.results = append(c.results, r)
	}
	return nil
}

// table is a markdown table.
type table struct {
	head []string
	rows [][]string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) String() string {
	var b strings.Builder
	line := func(cells []string) {
		b.WriteString("|")
		for _, c := range cells {
			b.WriteString(" " + c + " |")
		}
		b.WriteString("\n")
	}
	line(t.head)
	sep := make([]string, len(t.head))
	for i := range sep {
		sep[i] = "---"
	}
	line(sep)
	for _, r := range t.rows {
		line(r)
	}
	return b.String()
}

// fmtDur formats seconds with three significant figures in a fitting unit.
func fmtDur(s float64) string {
	switch {
	case math.IsNaN(s):
		return "–"
	case s >= 1:
		return fmt.Sprintf("%.3g s", s)
	case s >= 1e-3:
		return fmt.Sprintf("%.3g ms", s*1e3)
	case s >= 1e-6:
		return fmt.Sprintf("%.3g µs", s*1e6)
	}
	return fmt.Sprintf("%.3g ns", s*1e9)
}

func fmtNs(ns float64) string { return fmtDur(ns / 1e9) }

// fmtRate formats a rate per second with an SI prefix.
func fmtRate(r float64) string {
	switch {
	case math.IsNaN(r):
		return "–"
	case r >= 1e9:
		return fmt.Sprintf("%.3gG", r/1e9)
	case r >= 1e6:
		return fmt.Sprintf("%.3gM", r/1e6)
	case r >= 1e3:
		return fmt.Sprintf("%.3gk", r/1e3)
	}
	return fmt.Sprintf("%.3g", r)
}

func fmtRatio(r float64) string {
	if math.IsNaN(r) || math.IsInf(r, 0) {
		return "–"
	}
	if r >= 100 {
		return fmt.Sprintf("%.0f×", r)
	}
	return fmt.Sprintf("%.3g×", r)
}

// fmtGoPy formats a Go time ÷ Python time ratio and says which is faster.
func fmtGoPy(goT, pyT float64) string {
	r := goT / pyT
	switch {
	case math.IsNaN(r) || math.IsInf(r, 0) || r <= 0:
		return ""
	case r < 1:
		return fmt.Sprintf("%.3g (Go %s faster)", r, fmtRatio(1/r))
	}
	return fmt.Sprintf("%.3g (Go %s slower)", r, fmtRatio(r))
}

func fmtMiB(b float64) string {
	if math.IsNaN(b) {
		return "–"
	}
	return fmt.Sprintf("%.2f MiB", b/(1<<20))
}

func fmtCount(n int) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// machine describes this machine and the run for the report's header.
func machine(python string) string {
	model := "unknown CPU"
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "- Machine: %s; runtime.NumCPU %d, GOMAXPROCS %d; %s/%s; %s\n",
		model, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version())
	if python != "" {
		fmt.Fprintf(&b, "- Python: %s\n", python)
	}
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		f := strings.Fields(string(la))
		if len(f) >= 3 {
			fmt.Fprintf(&b, "- Load average at start (1, 5, 15 min): %s %s %s\n", f[0], f[1], f[2])
		}
	}
	fmt.Fprintf(&b, "- Date: %s\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	return b.String()
}

func pythonVersion(py string) string {
	out, err := exec.Command(py, "--version").CombinedOutput()
	if err != nil {
		return py
	}
	return strings.TrimSpace(string(out))
}
