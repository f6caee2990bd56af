package elastic

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mpgo/mp/internal/testenv"
	"github.com/mpgo/mp/pool"
	"github.com/mpgo/mp/pool/cluster"
)

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestDialIn: a driver listens; two poolworkers -connect started before it,
// one started during its Map, one stopped during it (SIGTERM), and one with
// the wrong token: the Map's result is exact, the one that joined late ran
// chunks of it, the stopped one retired (it was not lost), and the wrong
// token was refused.
func TestDialIn(t *testing.T) {
	bin := testenv.Poolworker(t)
	closeGate(t)
	addr := freeAddr(t)
	cache := filepath.Join(t.TempDir(), "cache") // poolworker makes it, mode 0700
	connect := func(tok string) *proc {
		return startProc(t, bin, "-connect", addr, "-token", tok, "-capacity", "2",
			"-cache-dir", cache, "-drain-timeout", "2m")
	}
	a, b := connect(token), connect(token)

	ev := testenv.NewEvents()
	t.Setenv("MP_LISTEN", addr) // as a user would; cluster.Listen is the same
	p, err := cluster.New(cluster.Token(token), cluster.MinMembers(2),
		cluster.Logger(slog.New(ev)))
	if err != nil {
		t.Fatalf("New with two poolworkers dialling in: %v\na: %s\nb: %s", err, a.out, b.out)
	}
	defer func() {
		p.Terminate()
		p.Join(context.Background())
	}()
	if got := p.Workers(); got != 4 {
		t.Errorf("Workers() = %d with two nodes of capacity 2, want 4", got)
	}

	const n = 4000
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res := pool.MapAsync(ctx, p, work, items(n), pool.Chunksize(10))

	// A third joins during the Map and takes chunks: the first half runs
	// freely, the second waits at the gate.
	c := connect(token)
	ev.Wait(t, "worker connected", "poolworker 127.0.0.1:", time.Minute)
	for len(ev.Find("worker connected", "", time.Time{})) < 3 {
		time.Sleep(10 * time.Millisecond)
		if ctx.Err() != nil {
			t.Fatalf("the third poolworker never connected:\n%s\nc: %s", ev, c.out)
		}
	}

	// A worker with the wrong token is refused; the Map goes on.
	bad := connect("wrong-token")
	refused := ev.Wait(t, "worker refused", "dial-in", time.Minute)
	if !strings.Contains(refused.Attrs, "authentication failed") {
		t.Errorf("the wrong token was refused with: %s", refused.Attrs)
	}
	bad.cmd.Process.Kill()

	// One leaves during the Map: SIGTERM drains it.
	a.cmd.Process.Signal(syscall.SIGTERM)
	openGate(t)
	got, err := res.Get(ctx)
	if err != nil {
		t.Fatalf("Map: %v\nlog:\n%s", err, ev)
	}
	byPID := checkExact(t, got, n)
	if err := a.waitExit(t, time.Minute); err != nil {
		t.Errorf("the poolworker stopped with SIGTERM exited with %v:\n%s", err, a.out)
	}
	for name, w := range map[string]*proc{"a (started before, stopped during)": a, "b (started before)": b, "c (joined during the Map)": c} {
		if chunksOf(byPID, w.workerPIDs()) == 0 {
			t.Errorf("poolworker %s ran no item of the Map; items by process: %v", name, byPID)
		}
	}
	if lost := ev.Find("worker lost", "", time.Time{}); len(lost) > 0 {
		t.Errorf("a worker was lost, none should be (the stopped one retires): %v", lost)
	}
	if len(ev.Find("worker retired", "", time.Time{})) == 0 {
		t.Errorf("the stopped poolworker's worker did not retire:\n%s", ev)
	}
	t.Logf("items by worker process: %v", byPID)

	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Join(ctx); err != nil {
		t.Fatal(err)
	}
	for _, w := range []*proc{b, c} {
		w.cmd.Process.Signal(syscall.SIGTERM)
		if err := w.waitExit(t, time.Minute); err != nil {
			var ee interface{ ExitCode() int }
			if !errors.As(err, &ee) {
				t.Errorf("poolworker: %v", err)
			}
		}
	}
}
