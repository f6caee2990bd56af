// Command members measures what each member costs a cluster driver, and how
// long a worker takes from starting to its first chunk. Run it from bench/:
//
//	go build -o /tmp/poolworker ../cmd/poolworker
//	go run ./members -poolworker /tmp/poolworker
//
// For each count in -n it starts that many real poolworker processes on
// loopback (capacity 1 each), connects a pool to them, runs a Map so that
// every connection has carried chunks, and then measures, with the pool
// idle for -idle: the driver's resident memory, Go heap and goroutines per
// member (the pool's figures minus those before it was made), and the
// driver's CPU time per second per member (what heartbeats cost). Then it
// times a poolworker -connect joining a listening driver during a Map: from
// the poolworker's start to the driver's "worker connected" (when it is
// handed its first chunk), with an empty executable cache (upload) and a
// warm one.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mpgo/mp/pool"
	"github.com/mpgo/mp/pool/cluster"
)

func init() { pool.MustRegister(spin) }

// spin takes about a millisecond.
func spin(x int) int {
	time.Sleep(time.Millisecond)
	return x * x
}

const token = "members-bench-token-0c4f1d"

var (
	heartbeat time.Duration
	profile   *os.File
)

func main() {
	cluster.WorkerMain()
	bin := flag.String("poolworker", "", "poolworker executable (required)")
	counts := flag.String("n", "16,64", "member counts to measure")
	idle := flag.Duration("idle", 10*time.Second, "idle time over which CPU is measured")
	hb := flag.Duration("heartbeat", cluster.DefaultHeartbeat, "heartbeat interval (cluster.Heartbeat; the timeout is twice it)")
	prof := flag.String("cpuprofile", "", "write a CPU profile of the idle periods to this file")
	flag.Parse()
	if *bin == "" {
		fmt.Fprintln(os.Stderr, "members: -poolworker is required (go build -o /tmp/poolworker ../cmd/poolworker)")
		os.Exit(2)
	}
	heartbeat = *hb
	if *prof != "" {
		f, err := os.Create(*prof)
		if err != nil {
			fatal(err)
		}
		profile = f
	}
	fmt.Printf("| members | driver Go memory (heap + stacks) per member | goroutines per member | idle driver CPU per member (heartbeat %v) |\n|---:|---:|---:|---:|\n", heartbeat)
	for _, f := range strings.Split(*counts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			fatal(err)
		}
		if err := measure(*bin, n, *idle); err != nil {
			fatal(err)
		}
	}
	fmt.Println()
	if err := join(*bin); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "members:", err)
	os.Exit(1)
}

type usage struct {
	rss        int64 // bytes
	heap       uint64
	goroutines int
	cpu        time.Duration
}

func sample() usage {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	u := usage{heap: ms.HeapInuse + ms.StackInuse, goroutines: runtime.NumGoroutine(),
		cpu: time.Duration(ru.Utime.Nano() + ru.Stime.Nano())}
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			u.rss = kb << 10
		}
	}
	return u
}

// daemons starts n poolworkers and returns their addresses and a stop.
func daemons(bin string, n int, cache string) ([]string, func(), error) {
	var cmds []*exec.Cmd
	stop := func() {
		for _, c := range cmds {
			c.Process.Signal(syscall.SIGTERM)
		}
		for _, c := range cmds {
			c.Wait()
		}
	}
	var addrs []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			stop()
			return nil, nil, err
		}
		a := ln.Addr().String()
		ln.Close()
		c := exec.Command(bin, "-listen", a, "-token", token, "-capacity", "1", "-cache-dir", cache, "-log-level", "error", "-drain-timeout", "2s")
		c.Stderr = os.Stderr
		if err := c.Start(); err != nil {
			stop()
			return nil, nil, err
		}
		cmds = append(cmds, c)
		addrs = append(addrs, a)
	}
	for _, a := range addrs {
		for i := 0; ; i++ {
			c, err := net.Dial("tcp", a)
			if err == nil {
				c.Close()
				break
			}
			if i > 500 {
				stop()
				return nil, nil, fmt.Errorf("poolworker %s did not start", a)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return addrs, stop, nil
}

func measure(bin string, n int, idle time.Duration) error {
	cache, err := os.MkdirTemp("", "mp-members-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(cache)
	addrs, stop, err := daemons(bin, n, cache)
	if err != nil {
		return err
	}
	defer stop()
	before := sample()
	p, err := cluster.New(cluster.Addresses(addrs...), cluster.Token(token), cluster.MinMembers(n),
		cluster.Heartbeat(heartbeat, 2*heartbeat))
	if err != nil {
		return err
	}
	defer func() {
		p.Close()
		p.Join(context.Background())
	}()
	if _, err := pool.Map(context.Background(), p, spin, make([]int, 20*n), pool.Chunksize(1)); err != nil {
		return err
	}
	time.Sleep(time.Second)
	if profile != nil {
		pprof.StartCPUProfile(profile)
	}
	start := sample()
	time.Sleep(idle)
	end := sample()
	if profile != nil {
		pprof.StopCPUProfile()
		profile = nil
	}
	perCPU := time.Duration(float64(end.cpu-start.cpu) / idle.Seconds() / float64(n))
	fmt.Printf("| %d | %.0f KiB | %.1f | %v/s |\n", n, float64(end.heap-before.heap)/1024/float64(n),
		float64(end.goroutines-before.goroutines)/float64(n), perCPU.Round(time.Microsecond))
	return nil
}

// connected is a slog.Handler that reports "worker connected" events.
type connected struct{ ch chan time.Time }

func (c connected) Enabled(context.Context, slog.Level) bool { return true }
func (c connected) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c connected) WithGroup(string) slog.Handler            { return c }
func (c connected) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "worker connected" {
		c.ch <- time.Now()
	}
	return nil
}

// join times poolworkers -connect joining a listening driver during a Map.
func join(bin string) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	ln.Close()
	cache, err := os.MkdirTemp("", "mp-members-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(cache)
	var cmds []*exec.Cmd
	defer func() {
		for _, c := range cmds {
			c.Process.Signal(syscall.SIGTERM)
			c.Wait()
		}
	}()
	start := func(cacheDir string) (time.Time, error) {
		c := exec.Command(bin, "-connect", addr, "-token", token, "-capacity", "1", "-cache-dir", cacheDir, "-log-level", "error")
		c.Stderr = os.Stderr
		t := time.Now()
		err := c.Start()
		cmds = append(cmds, c)
		return t, err
	}
	ev := connected{ch: make(chan time.Time, 16)}
	if _, err := start(cache); err != nil {
		return err
	}
	p, err := cluster.New(cluster.Listen(addr), cluster.Token(token), cluster.Logger(slog.New(ev)))
	if err != nil {
		return err
	}
	defer func() {
		p.Close()
		p.Join(context.Background())
	}()
	<-ev.ch
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { pool.Map(ctx, p, spin, make([]int, 1_000_000), pool.Chunksize(10)) })
	defer wg.Wait()
	defer cancel()
	fmt.Printf("| poolworker -connect joining during a Map | start → first chunk |\n|---|---:|\n")
	for _, c := range []struct{ what, cache string }{{"new node (executable uploaded, " + exeSize() + ")", ""}, {"node with the executable cached", cache}} {
		dir := c.cache
		if dir == "" {
			if dir, err = os.MkdirTemp("", "mp-members-"); err != nil {
				return err
			}
			defer os.RemoveAll(dir)
		}
		t0, err := start(dir)
		if err != nil {
			return err
		}
		t1 := <-ev.ch
		fmt.Printf("| %s | %v |\n", c.what, t1.Sub(t0).Round(time.Millisecond))
	}
	return nil
}

func exeSize() string {
	exe, _ := os.Executable()
	st, err := os.Stat(exe)
	if err != nil {
		return "?"
	}
	return fmt.Sprintf("%.1f MiB", float64(st.Size())/(1<<20))
}
