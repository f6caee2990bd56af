// Package chaos runs mp's cluster over real hosts, network namespaces joined
// to this one by veth pairs, each with its own address and its own
// poolworker, and injects faults during a long Map: a poolworker killed with
// SIGKILL, one cut off silently (its link down: no reset, no FIN), one
// killed and started again. The tests need root (CI runs as root) and the
// ip command; without them they skip and say why.
package chaos

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mpgo/mp/internal/testenv"
	"github.com/mpgo/mp/pool"
	"github.com/mpgo/mp/pool/cluster"
)

func TestMain(m *testing.M) {
	cluster.WorkerMain()
	testenv.Run(m)
}

func init() { pool.MustRegister(mix) }

// mix is a deterministic function that takes about a millisecond.
func mix(x int) uint64 {
	time.Sleep(time.Millisecond)
	h := fnv.New64a()
	fmt.Fprintf(h, "item %d", x)
	return h.Sum64()
}

const token = "chaos-test-token-3f9a1c"

// host is a network namespace with a veth link to this one and a poolworker.
type host struct {
	t      *testing.T
	ns     string
	veth   string // this side
	peer   string // the namespace's side
	ip     string // the namespace's address
	cache  string
	bin    string
	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	stderr *strings.Builder
}

func (h *host) addr() string { return h.ip + ":7450" }

// newHosts creates n hosts, 10.251.i.2 each, and starts their poolworkers.
func newHosts(t *testing.T, n int) []*host {
	testenv.RequireNetns(t, "chaos tests")
	dir := t.TempDir()
	bin := testenv.Poolworker(t)
	tag := strconv.Itoa(os.Getpid() % 100000)
	var hosts []*host
	for i := 1; i <= n; i++ {
		h := &host{
			t:     t,
			ns:    fmt.Sprintf("mpchaos%d-%s", i, tag),
			veth:  fmt.Sprintf("mc%da%s", i, tag),
			peer:  fmt.Sprintf("mc%db%s", i, tag),
			ip:    fmt.Sprintf("10.251.%d.2", i),
			cache: filepath.Join(dir, fmt.Sprintf("cache%d", i)),
			bin:   bin,
		}
		testenv.Cmd(t, "ip", "netns", "add", h.ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", h.ns).Run() })
		testenv.Cmd(t, "ip", "link", "add", h.veth, "type", "veth", "peer", "name", h.peer)
		t.Cleanup(func() { exec.Command("ip", "link", "del", h.veth).Run() })
		testenv.Cmd(t, "ip", "link", "set", h.peer, "netns", h.ns)
		testenv.Cmd(t, "ip", "addr", "add", fmt.Sprintf("10.251.%d.1/30", i), "dev", h.veth)
		testenv.Cmd(t, "ip", "link", "set", h.veth, "up")
		testenv.Cmd(t, "ip", "netns", "exec", h.ns, "ip", "addr", "add", h.ip+"/30", "dev", h.peer)
		testenv.Cmd(t, "ip", "netns", "exec", h.ns, "ip", "link", "set", h.peer, "up")
		testenv.Cmd(t, "ip", "netns", "exec", h.ns, "ip", "link", "set", "lo", "up")
		h.start()
		t.Cleanup(h.kill)
		hosts = append(hosts, h)
	}
	return hosts
}

// start runs the host's poolworker in its namespace and waits until it
// accepts connections.
func (h *host) start() {
	h.t.Helper()
	cmd := exec.Command("ip", "netns", "exec", h.ns, h.bin,
		"-listen", h.addr(), "-token", token, "-capacity", "2", "-cache-dir", h.cache, "-log-level", "error")
	h.stderr = &strings.Builder{}
	cmd.Stderr = h.stderr
	if err := cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	h.mu.Lock()
	h.cmd, h.exited = cmd, exited
	h.mu.Unlock()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", h.addr(), time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("poolworker on %s did not start: %v\n%s", h.addr(), err, h.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill sends SIGKILL to the poolworker (its worker processes die with it).
func (h *host) kill() {
	h.mu.Lock()
	cmd, exited := h.cmd, h.exited
	h.mu.Unlock()
	if cmd != nil {
		cmd.Process.Kill()
		<-exited
	}
}

// cut takes the host's link down: its traffic vanishes without a reset.
func (h *host) cut() {
	testenv.Cmd(h.t, "ip", "netns", "exec", h.ns, "ip", "link", "set", h.peer, "down")
}

const (
	heartbeat        = 200 * time.Millisecond
	heartbeatTimeout = time.Second
	// margin is the generous, documented allowance for a loaded 2-core CI
	// machine on top of the heartbeat's own bound.
	margin = 5 * time.Second
)

// TestChaos: during a long Map over three poolworker hosts, one is killed,
// one is cut off silently, and one is killed and started again. The Map
// returns exactly the serial result.
func TestChaos(t *testing.T) {
	hosts := newHosts(t, 3)
	ev := testenv.NewEvents()
	addrs := []string{hosts[0].addr(), hosts[1].addr(), hosts[2].addr()}
	p, err := cluster.New(cluster.Addresses(addrs...), cluster.Token(token),
		cluster.Heartbeat(heartbeat, heartbeatTimeout), cluster.ReconnectFor(30*time.Second),
		cluster.Logger(slog.New(ev)))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		p.Terminate()
		p.Join(context.Background())
	}()

	const n = 12000
	in := make([]int, n)
	for i := range in {
		in[i] = i
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	res := pool.MapAsync(ctx, p, mix, in, pool.Chunksize(10))

	var killed, cut, bounced time.Time
	time.Sleep(700 * time.Millisecond)
	killed = time.Now()
	hosts[0].kill()
	time.Sleep(700 * time.Millisecond)
	cut = time.Now()
	hosts[1].cut()
	time.Sleep(700 * time.Millisecond)
	bounced = time.Now()
	hosts[2].kill()
	time.Sleep(time.Second)
	hosts[2].start()

	got, err := res.Get(ctx)
	elapsed := time.Since(start)
	if err != nil {
		t.Fatalf("Map under faults: %v", err)
	}
	for i, x := range in {
		if got[i] != mix(x) {
			t.Fatalf("item %d: got %d, want %d", i, got[i], mix(x))
		}
	}
	t.Logf("Map of %d items under faults: exact result in %v", n, elapsed.Round(time.Millisecond))

	lostKill, ok := first(ev, "worker lost", hosts[0].addr(), killed)
	if !ok {
		t.Errorf("the killed poolworker %s was never reported lost", hosts[0].addr())
	} else {
		t.Logf("killed %s: lost after %v (%s)", hosts[0].addr(), lostKill.At.Sub(killed).Round(time.Millisecond), lostKill.Attrs)
	}
	lostCut, ok := first(ev, "worker lost", hosts[1].addr(), cut)
	if !ok {
		t.Errorf("the silent poolworker %s was never reported lost", hosts[1].addr())
	} else {
		d := lostCut.At.Sub(cut)
		t.Logf("cut off %s: detected after %v (heartbeat %v + timeout %v) (%s)", hosts[1].addr(), d.Round(time.Millisecond), heartbeat, heartbeatTimeout, lostCut.Attrs)
		if d > heartbeat+heartbeatTimeout+margin {
			t.Errorf("silent host detected after %v, bound %v", d, heartbeat+heartbeatTimeout+margin)
		}
	}
	if _, ok := first(ev, "worker connected", hosts[2].addr(), bounced); !ok {
		// The Map may have finished before the host came back: check now.
		if _, err := pool.Map(ctx, p, mix, in[:200]); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(15 * time.Second)
		for {
			if _, ok := first(ev, "worker connected", hosts[2].addr(), bounced); ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the restarted poolworker %s never rejoined", hosts[2].addr())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// The pool goes on with what is left.
	small, err := pool.Map(ctx, p, mix, in[:500])
	if err != nil {
		t.Fatalf("after the faults: %v", err)
	}
	for i := range small {
		if small[i] != got[i] {
			t.Fatalf("after the faults, item %d differs", i)
		}
	}
}

// TestChaosNoHostLeft: when every host is gone, the call fails with
// ErrNoWorkers within heartbeat + ReconnectFor + margin: it never hangs.
func TestChaosNoHostLeft(t *testing.T) {
	hosts := newHosts(t, 3)
	addrs := []string{hosts[0].addr(), hosts[1].addr(), hosts[2].addr()}
	const reconnect = 2 * time.Second
	p, err := cluster.New(cluster.Addresses(addrs...), cluster.Token(token),
		cluster.Heartbeat(heartbeat, heartbeatTimeout), cluster.ReconnectFor(reconnect))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		p.Terminate()
		p.Join(context.Background())
	}()
	in := make([]int, 100000)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res := pool.MapAsync(ctx, p, mix, in, pool.Chunksize(10))
	time.Sleep(500 * time.Millisecond)
	gone := time.Now()
	hosts[0].kill()
	hosts[1].cut()
	hosts[2].cut()
	_, err = res.Get(ctx)
	d := time.Since(gone)
	if !errors.Is(err, pool.ErrNoWorkers) {
		t.Fatalf("with every host gone: %v, want ErrNoWorkers", err)
	}
	t.Logf("every host gone: the Map failed after %v: %v", d.Round(time.Millisecond), err)
	if bound := heartbeat + heartbeatTimeout + reconnect + margin; d > bound {
		t.Errorf("failing took %v, bound %v", d, bound)
	}
}

// first returns the first event msg about addr at or after t0.
func first(ev *testenv.Events, msg, addr string, t0 time.Time) (testenv.Event, bool) {
	if evs := ev.Find(msg, addr, t0); len(evs) > 0 {
		return evs[0], true
	}
	return testenv.Event{}, false
}
