package hostile

import (
	"context"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
	"github.com/mpgo/mp/internal/testenv"
	"github.com/mpgo/mp/internal/wire"
	"github.com/mpgo/mp/pool"
	"github.com/mpgo/mp/pool/cluster"
)

// fakeWorker is a node that plays one worker process with our own wire
// package: after Ready and Config it runs yamux, accepts the task stream
// and answers every Run with answer(id). It serves one connection, then
// refuses the driver's reconnections; runs counts the Runs it answered,
// and hungUp is closed when the driver has closed the connection.
func fakeWorker(t *testing.T, answer func(id uint64) []byte) (addr string, runs *atomic.Int64, hungUp chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	runs, hungUp = new(atomic.Int64), make(chan struct{})
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		c, err := ln.Accept()
		ln.Close()
		if err != nil {
			return
		}
		defer c.Close()
		defer close(hungUp)
		sc, boot, ok := fakeSetup(c, wire.Ready{PID: 1, Capacity: 1, GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, Host: "fake"})
		if !ok {
			return
		}
		if k, _, err := boot.Recv(); err != nil || k != wire.KindConfig {
			return
		}
		cfg := yamux.DefaultConfig()
		cfg.LogOutput = io.Discard
		sess, err := yamux.Server(sc, cfg)
		if err != nil {
			return
		}
		defer sess.Close()
		stream, err := sess.Accept()
		if err != nil {
			return
		}
		codec := wire.NewCodec(stream, 0)
		for {
			k, body, err := codec.Recv()
			if err != nil {
				return // the driver hung up
			}
			if k != wire.KindRun {
				continue
			}
			id, _, err := wire.DecodeRunHeader(codec.Decoder(body))
			if err != nil {
				return
			}
			runs.Add(1)
			codec.SendRaw(wire.KindResult, answer(id))
		}
	}()
	return ln.Addr().String(), runs, hungUp
}

// A worker whose Result has a well-formed header and items that are not
// msgpack (Recv leaves a Result's items to be checked as they are
// decoded): the driver refuses them as a malformed frame, drops the
// connection, and runs the chunk on another worker, whose results the
// call returns.
func TestMalformedResultItems(t *testing.T) {
	bin := testenv.Poolworker(t)
	real := startNode(t, bin, []string{"MP_TOKEN=" + strongToken}, "-listen", "127.0.0.1:0", "-capacity", "1",
		"-cache-dir", t.TempDir()+"/cache")
	for _, c := range []struct {
		name  string
		items []byte
	}{
		{"0xc1", []byte{0xdd, 0, 0, 0, 2, 0x01, 0xc1}},
		{"array32 claim inside", []byte{0xdd, 0, 0, 0, 2, 0x01, 0xdd, 0xff, 0xff, 0xff, 0xff, 0x01}},
		{"garbage after the items", []byte{0xdd, 0, 0, 0, 1, 0x01, 0xdc, 0xff, 0xff}},
	} {
		t.Run(c.name, func(t *testing.T) {
			fake, runs, hungUp := fakeWorker(t, func(id uint64) []byte {
				b := []byte{0x93, 0xcf, 0, 0, 0, 0, 0, 0, 0, 0, 0xc0}
				for i := range 8 {
					b[2+i] = byte(id >> (56 - 8*i))
				}
				return append(b, c.items...)
			})
			ev := testenv.NewEvents()
			p, err := cluster.New(cluster.Addresses(fake, real.addr), cluster.Token(strongToken), cluster.Logger(slog.New(ev)))
			if err != nil {
				t.Fatal(err)
			}
			closeAtEnd(t, p)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			// Until the fake has answered a chunk (Maps of one-item
			// chunks keep both workers busy): each Map still gives the
			// right results.
			in := make([]int, 50)
			for i := range in {
				in[i] = i
			}
			for i := 0; runs.Load() == 0; i++ {
				if i == 20 {
					t.Fatalf("the fake worker got no chunk in 20 Maps (workers %d):\n%s", p.Workers(), ev)
				}
				out, err := pool.Map(ctx, p, double, in, pool.Chunksize(1))
				if err != nil {
					t.Fatal(err)
				}
				for j, v := range out {
					if v != 2*j {
						t.Fatalf("Map: result %d is %d", j, v)
					}
				}
			}
			select {
			case <-hungUp:
			case <-ctx.Done():
				t.Fatal("the driver kept the connection to the fake worker")
			}
			if log := ev.String(); !strings.Contains(log, "malformed") || !strings.Contains(log, "Result body") {
				t.Errorf("the driver's log does not say the Result was malformed:\n%s", log)
			}
			mustMap(t, p, 1000)
		})
	}
}
