package cluster_test

import (
	"encoding/binary"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mpgo/mp/internal/testenv"
	"github.com/mpgo/mp/pool"
	"github.com/mpgo/mp/pool/cluster"
)

func init() { pool.MustRegister(gateValue) }

// gate is a 4 KiB argument whose first encoding in the driver can be held
// at item 0, so that the test can kill the worker the Run is bound for
// while the Run is being encoded.
type gate struct{ N int }

var (
	holdGate    atomic.Bool // set after the channels below are made
	gateReached chan struct{}
	gateRelease chan struct{}
)

func (g gate) MarshalBinary() ([]byte, error) {
	if g.N == 0 && holdGate.CompareAndSwap(true, false) {
		gateReached <- struct{}{}
		<-gateRelease
	}
	return binary.AppendVarint(make([]byte, 0, 4<<10), int64(g.N))[:4<<10], nil
}

func (g *gate) UnmarshalBinary(b []byte) error {
	n, _ := binary.Varint(b)
	g.N = int(n)
	return nil
}

func gateValue(g gate) int { return g.N }

// lostLog sends a line for each "worker lost" the pool logs.
type lostLog chan struct{}

func (l lostLog) Write(b []byte) (int, error) {
	if strings.Contains(string(b), "worker lost") {
		select {
		case l <- struct{}{}:
		default:
		}
	}
	return len(b), nil
}

// A worker lost while the Run of a chunk too large for one message is
// being encoded for it: the chunk runs again whole on the replacement, and
// is not also cut and its rest sent on (which would run those items twice
// and, before the fix, raced with the re-run's bookkeeping).
func TestLostWhileEncoding(t *testing.T) {
	lost := make(lostLog, 1)
	p, err := cluster.New(pool.Workers(1), cluster.MaxMessage(64<<10), cluster.Logger(slog.New(slog.NewTextHandler(lost, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer closeAndJoin(t, p)
	kids := testenv.Children(os.Getpid())
	if len(kids) != 1 {
		t.Fatalf("want 1 worker process, have %v", kids)
	}
	items := make([]gate, 40) // 160 KiB: three messages
	for i := range items {
		items[i].N = i
	}
	gateReached, gateRelease = make(chan struct{}), make(chan struct{})
	holdGate.Store(true)
	type result struct {
		out []int
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := pool.Map(ctxFor(t, time.Minute), p, gateValue, items, pool.Chunksize(len(items)))
		done <- result{out, err}
	}()
	<-gateReached
	if err := syscall.Kill(kids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-lost:
	case <-time.After(30 * time.Second):
		t.Fatal("the killed worker was not reported lost")
	}
	// Let serve hand the flight to lost before the encoding goes on.
	time.Sleep(50 * time.Millisecond)
	close(gateRelease)
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	for i, v := range r.out {
		if v != i {
			t.Fatalf("item %d = %d", i, v)
		}
	}
}
