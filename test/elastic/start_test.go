package elastic

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mpgo/mp/internal/testenv"
	"github.com/mpgo/mp/internal/wire"
	"github.com/mpgo/mp/pool"
	"github.com/mpgo/mp/pool/cluster"
)

func init() { pool.MustRegister(span) }

// Interval is when a call of span ran, in wall-clock nanoseconds (worker
// processes share this machine's clock).
type Interval struct{ Start, End int64 }

func span(int) Interval {
	start := time.Now().UnixNano()
	time.Sleep(20 * time.Millisecond)
	return Interval{start, time.Now().UnixNano()}
}

// listening starts a poolworker on addr and waits until it listens.
func listening(t *testing.T, addr, cache string, capacity string) *proc {
	t.Helper()
	pw := startProc(t, testenv.Poolworker(t), "-listen", addr, "-token", token, "-capacity", capacity,
		"-cache-dir", cache, "-drain-timeout", "1s")
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(pw.out.String(), "msg=listening") {
		if time.Now().After(deadline) {
			t.Fatalf("poolworker on %s did not start:\n%s", addr, pw.out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return pw
}

// TestStartWithoutOne: with one of five addresses down, New starts with the
// four that answer, logs the fifth, and keeps trying it: a poolworker
// started there later joins.
func TestStartWithoutOne(t *testing.T) {
	cache := filepath.Join(t.TempDir(), "cache") // poolworker makes it, mode 0700
	var addrs []string
	for range 4 {
		a := freeAddr(t)
		listening(t, a, cache, "1")
		addrs = append(addrs, a)
	}
	down := freeAddr(t)
	addrs = append(addrs, down)
	ev := testenv.NewEvents()
	p, err := cluster.New(cluster.Addresses(addrs...), cluster.Token(token), cluster.Logger(slog.New(ev)))
	if err != nil {
		t.Fatalf("New with one address of five down: %v", err)
	}
	defer func() {
		p.Terminate()
		p.Join(context.Background())
	}()
	if got := p.Workers(); got != 4 {
		t.Errorf("Workers() = %d, want 4 (four nodes of capacity 1)", got)
	}
	ev.Wait(t, "worker unreachable; starting without it, and retrying it", down, time.Second)
	listening(t, down, cache, "1")
	ev.Wait(t, "worker connected", down, time.Minute)
	for deadline := time.Now().Add(time.Minute); p.Workers() != 5; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) { // only stops a broken test from hanging
			t.Fatalf("Workers() = %d after the fifth connected, want 5", p.Workers())
		}
	}
	got, err := pool.Map(context.Background(), p, work, []int{1, 2, 3})
	if err != nil || len(got) != 3 || got[2].V != hash(3) {
		t.Fatalf("Map after the fifth joined: %v, %v", got, err)
	}

	// With MinMembers above those that answer, New fails and says why.
	_, err = cluster.New(cluster.Addresses(addrs[0], freeAddr(t)), cluster.Token(token), cluster.MinMembers(2))
	if err == nil || !strings.Contains(err.Error(), "1 of the 2 workers needed") {
		t.Errorf("New with MinMembers(2) and one node up: %v", err)
	}
	// A wrong token is still an authentication error naming MP_TOKEN.
	_, err = cluster.New(cluster.Addresses(addrs[0]), cluster.Token("wrong"))
	if !errors.Is(err, wire.ErrAuth) {
		t.Errorf("New with the wrong token: %v, want ErrAuth", err)
	}
}

// TestWorkersCaps: pool.Workers(1) against two nodes of capacity 2 means
// one chunk at a time across the cluster, not four, and Workers() says 1.
func TestWorkersCaps(t *testing.T) {
	cache := filepath.Join(t.TempDir(), "cache") // poolworker makes it, mode 0700
	a, b := freeAddr(t), freeAddr(t)
	listening(t, a, cache, "2")
	listening(t, b, cache, "2")
	p, err := cluster.New(pool.Workers(1), cluster.Addresses(a, b), cluster.Token(token))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		p.Close()
		p.Join(context.Background())
	}()
	if got := p.Workers(); got != 1 {
		t.Errorf("Workers() = %d with pool.Workers(1), want 1", got)
	}
	got, err := pool.Map(context.Background(), p, span, make([]int, 20), pool.Chunksize(1))
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(got, func(x, y Interval) int { return int(x.Start - y.Start) })
	for i := 1; i < len(got); i++ {
		if got[i].Start < got[i-1].End {
			t.Fatalf("two chunks ran at once under pool.Workers(1): %v and %v", got[i-1], got[i])
		}
	}
}

// TestLocalhostName: a name is resolved and each node counted once, even
// where the name has an IPv4 and an IPv6 address (localhost often has).
func TestLocalhostName(t *testing.T) {
	a := freeAddr(t)
	listening(t, a, filepath.Join(t.TempDir(), "cache"), "2")
	_, port, _ := net.SplitHostPort(a)
	ev := testenv.NewEvents()
	p, err := cluster.New(cluster.Addresses("localhost:"+port), cluster.Token(token), cluster.Logger(slog.New(ev)))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		p.Close()
		p.Join(context.Background())
	}()
	if got := p.Workers(); got != 2 {
		t.Errorf("Workers() = %d for one node of capacity 2 named localhost, want 2", got)
	}
	if bad := ev.Find("worker unreachable; starting without it, and retrying it", "", time.Time{}); len(bad) > 0 {
		t.Errorf("localhost gave an address that is not the node: %v", bad)
	}
	got, err := pool.Map(context.Background(), p, work, []int{0, 1, 2})
	if err != nil || len(got) != 3 || got[1].V != hash(1) {
		t.Fatalf("Map: %v, %v", got, err)
	}
}
