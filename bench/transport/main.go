// Command transport measures what the cluster costs over poolworkers, the
// connections that carry the encrypted channel: the throughput of a cluster
// Map of 1,000,000 ints and the p50 of an Apply round trip. It starts its own
// poolworkers on loopback (-poolworker names the binary) and uses only the
// public API, so that the same source measures any version of mp: build it
// at two commits, with the poolworker of each, and compare (bench/README.md,
// "Transport").
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/mpgo/mp/pool"
	"github.com/mpgo/mp/pool/cluster"
)

func double(x int) int { return 2 * x }

func init() { pool.MustRegister(double) }

func main() {
	cluster.WorkerMain() // a worker process serves and exits here
	bin := flag.String("poolworker", "", "poolworker `binary` to start")
	nodes := flag.Int("nodes", 2, "poolworkers to start, capacity 1 each")
	items := flag.Int("items", 1_000_000, "ints per Map")
	applies := flag.Int("applies", 2000, "Apply round trips per round")
	rounds := flag.Int("rounds", 5, "rounds; medians are printed")
	flag.Parse()
	if *bin == "" {
		log.Fatal("-poolworker is required")
	}
	const token = "bench-transport-token-0123456789abcdef"
	var addrs []string
	for range *nodes {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			log.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		dir, _ := os.MkdirTemp("", "mp-bench-cache-")
		defer os.RemoveAll(dir)
		cmd := exec.Command(*bin, "-listen", addr, "-capacity", "1", "-cache-dir", dir, "-log-level", "error")
		cmd.Env = append(os.Environ(), "MP_TOKEN="+token)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			log.Fatal(err)
		}
		defer func() { cmd.Process.Kill(); cmd.Wait() }()
		for i := 0; ; i++ {
			if c, err := net.Dial("tcp", addr); err == nil {
				c.Close()
				break
			}
			if i > 300 {
				log.Fatalf("poolworker on %s did not start", addr)
			}
			time.Sleep(10 * time.Millisecond)
		}
		addrs = append(addrs, addr)
	}
	p, err := cluster.New(cluster.Addresses(addrs...), cluster.Token(token))
	if err != nil {
		log.Fatal(err)
	}
	defer func() { p.Terminate(); p.Join(context.Background()) }()
	ctx := context.Background()
	in := make([]int, *items)
	for i := range in {
		in[i] = i
	}
	if _, err := pool.Map(ctx, p, double, in); err != nil { // warm: uploads, connections
		log.Fatal(err)
	}
	var rates []float64
	var p50s []time.Duration
	for range *rounds {
		start := time.Now()
		if _, err := pool.Map(ctx, p, double, in); err != nil {
			log.Fatal(err)
		}
		rates = append(rates, float64(*items)/time.Since(start).Seconds())
		lat := make([]time.Duration, *applies)
		for i := range lat {
			t0 := time.Now()
			if _, err := pool.Apply(ctx, p, double, i); err != nil {
				log.Fatal(err)
			}
			lat[i] = time.Since(t0)
		}
		slices.Sort(lat)
		p50s = append(p50s, lat[len(lat)/2])
	}
	slices.Sort(rates)
	slices.Sort(p50s)
	fmt.Printf("nodes %d (%s)\n", *nodes, strings.Join(addrs, ","))
	fmt.Printf("map %d ints: %.2f M items/s (median of %d; min %.2f, max %.2f)\n", *items, rates[len(rates)/2]/1e6, *rounds, rates[0]/1e6, rates[len(rates)-1]/1e6)
	fmt.Printf("apply p50: %v (median of %d rounds of %d; min %v, max %v)\n", p50s[len(p50s)/2], *rounds, *applies, p50s[0], p50s[len(p50s)-1])
}
