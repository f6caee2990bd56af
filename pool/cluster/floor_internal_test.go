package cluster

import (
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
)

// BenchmarkFloor is the round trip the cluster's transport allows, for
// comparing with BenchmarkApply in the same run: a 64-byte message and its
// echo between two goroutines of this process, over loopback TCP alone and
// over one yamux stream on it (the cluster's yamux configuration and
// frameConn). p50-ns and p99-ns are per round trip.
func BenchmarkFloor(b *testing.B) {
	b.Run("transport=tcp", func(b *testing.B) {
		c, s := loopback(b)
		go echo(s)
		pingPong(b, c)
	})
	b.Run("transport=yamux", func(b *testing.B) {
		c, s := loopback(b)
		cfg := yamuxConfig(time.Second, 10*time.Second)
		client, err := yamux.Client(&frameConn{Conn: c}, cfg)
		if err != nil {
			b.Fatal(err)
		}
		server, err := yamux.Server(&frameConn{Conn: s}, cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { client.Close(); server.Close() })
		go func() {
			st, err := server.Accept()
			if err == nil {
				echo(st)
			}
		}()
		st, err := client.Open()
		if err != nil {
			b.Fatal(err)
		}
		pingPong(b, st)
	})
}

func loopback(b *testing.B) (net.Conn, net.Conn) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	s, err := l.Accept()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close(); s.Close() })
	return c, s
}

func echo(rw io.ReadWriter) {
	buf := make([]byte, 64)
	for {
		if _, err := io.ReadFull(rw, buf); err != nil {
			return
		}
		if _, err := rw.Write(buf); err != nil {
			return
		}
	}
}

func pingPong(b *testing.B, rw io.ReadWriter) {
	buf := make([]byte, 64)
	d := make([]time.Duration, 0, 1<<16)
	for b.Loop() {
		t0 := time.Now()
		if _, err := rw.Write(buf); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(rw, buf); err != nil {
			b.Fatal(err)
		}
		if len(d) < cap(d) {
			d = append(d, time.Since(t0))
		}
	}
	slices.Sort(d)
	if len(d) > 0 {
		b.ReportMetric(float64(d[len(d)/2].Nanoseconds()), "p50-ns")
		b.ReportMetric(float64(d[min(len(d)*99/100, len(d)-1)].Nanoseconds()), "p99-ns")
	}
}
