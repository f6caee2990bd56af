package hostile

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"net"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mpgo/mp/internal/testenv"
	"github.com/mpgo/mp/internal/wire"
	"github.com/mpgo/mp/pool"
	"github.com/mpgo/mp/pool/cluster"
)

// fakeNode is a node built from our own wire package that speaks the real
// protocol over TCP: it authenticates the driver, accepts its Setup as if
// the executable were cached, and then sends ready in place of a worker
// process's Ready. It serves every connection so, until the test ends.
func fakeNode(t *testing.T, ready wire.Ready) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sc, _, ok := fakeSetup(c, ready)
				if !ok {
					return
				}
				c.SetReadDeadline(time.Now().Add(30 * time.Second))
				io.Copy(io.Discard, sc) // until the driver hangs up
			}()
		}
	}()
	return ln.Addr().String()
}

// Issue 11: a node reporting Ready.Capacity 2^62 made pool.Map divide by
// zero; MaxInt64 gave "slice bounds out of range"; 2^40 with Imap ran out
// of memory; 2^61 made Map send empty chunks until its deadline. Each value
// is now refused with an error that names the field, and the driver lives:
// next to a real poolworker, the fake node is refused and Map and Imap run
// on the real one.
func TestAbsurdCapacity(t *testing.T) {
	bin := testenv.Poolworker(t)
	real := startNode(t, bin, []string{"MP_TOKEN=" + strongToken}, "-listen", "127.0.0.1:0", "-capacity", "2",
		"-cache-dir", t.TempDir()+"/cache")
	here := wire.Ready{PID: 1, GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, Host: "fake"}
	for _, c := range []int{1 << 62, math.MaxInt64, 1 << 40, 1 << 61, 0, -1, math.MinInt64, wire.MaxCapacity + 1} {
		t.Run(strconv.Itoa(c), func(t *testing.T) {
			r := here
			r.Capacity = c
			fake := fakeNode(t, r)
			_, err := cluster.New(cluster.Addresses(fake), cluster.Token(strongToken))
			if !errors.Is(err, wire.ErrMalformed) || !strings.Contains(err.Error(), "Ready.Capacity "+strconv.Itoa(c)) {
				t.Fatalf("cluster.New with a node of capacity %d: %v, want an error naming Ready.Capacity", c, err)
			}

			// With a real node beside it.
			ev := testenv.NewEvents()
			p, err := cluster.New(cluster.Addresses(fake, real.addr), cluster.Token(strongToken), cluster.Logger(slog.New(ev)))
			if err != nil {
				t.Fatal(err)
			}
			closeAtEnd(t, p)
			if w := p.Workers(); w != 2 {
				t.Errorf("Workers() = %d, want the real node's 2", w)
			}
			mustMap(t, p, 1000)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var got []int
			for v, err := range pool.Imap(ctx, p, double, slices.Values([]int{1, 2, 3})) {
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, v)
			}
			if !slices.Equal(got, []int{2, 4, 6}) {
				t.Errorf("Imap gave %v", got)
			}
			if !strings.Contains(ev.String(), "Ready.Capacity") {
				t.Errorf("the driver's log does not say why the fake node was refused:\n%s", ev)
			}
		})
	}
	// A host name longer than a DNS name is refused too.
	r := here
	r.Capacity, r.Host = 1, strings.Repeat("h", 1<<20)
	if _, err := cluster.New(cluster.Addresses(fakeNode(t, r)), cluster.Token(strongToken)); !errors.Is(err, wire.ErrMalformed) || !strings.Contains(err.Error(), "Ready.Host") {
		t.Fatalf("a 1 MiB host name: %v, want an error naming Ready.Host", err)
	}
}
