package elastic

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mpgo/mp/internal/testenv"
	"github.com/mpgo/mp/pool"
	"github.com/mpgo/mp/pool/cluster"
)

// The driver runs in its own network namespace, so that its /etc/hosts is
// the namespace's (ip netns exec mounts /etc/netns/NAME/hosts over it): the
// test process re-executes itself there with driverEnv set.
const (
	driverEnv = "MP_ELASTIC_DRIVER" // "map", "vanish" or "noresolve"
	service   = "workers.mpe.test"  // the name in the driver's hosts file
	port      = "7450"
	mapItems  = 4000
)

// driverResult is what the driver process prints on stdout.
type driverResult struct {
	Err   string
	Exact bool
	ByPID map[int]int
}

// driverMain is the driver process: it runs a Map over the name's
// poolworkers, logging the pool's events as JSON on stderr, and prints a
// driverResult on stdout.
func driverMain() int {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	var res driverResult
	defer func() { json.NewEncoder(os.Stdout).Encode(res) }()
	switch os.Getenv(driverEnv) {
	case "noresolve":
		_, err := cluster.New(cluster.Addresses("nosuch."+service+":"+port), cluster.Token(token))
		res.Err = fmt.Sprint(err)
		return 0
	case "map", "vanish":
	default:
		res.Err = "unknown mode"
		return 1
	}
	// Not a poolworker: the name also lists 127.0.0.1, where this answers
	// like a web server.
	junk, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		res.Err = err.Error()
		return 1
	}
	defer junk.Close()
	go func() {
		for {
			c, err := junk.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
			c.Close()
		}
	}()
	reconnect := time.Minute
	if os.Getenv(driverEnv) == "vanish" {
		reconnect = time.Second
	}
	p, err := cluster.New(cluster.Addresses(service+":"+port), cluster.Token(token),
		cluster.ResolveEvery(200*time.Millisecond), cluster.Heartbeat(200*time.Millisecond, time.Second),
		cluster.ReconnectFor(reconnect), cluster.Logger(log))
	if err != nil {
		res.Err = err.Error()
		return 1
	}
	defer func() {
		p.Close()
		p.Join(context.Background())
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	call := pool.MapAsync(ctx, p, work, items(mapItems), pool.Chunksize(10))
	log.Info("map started")
	got, err := call.Get(ctx)
	if err != nil {
		res.Err = err.Error()
		return 1
	}
	res.Exact = len(got) == mapItems
	res.ByPID = map[int]int{}
	for i, r := range got {
		res.Exact = res.Exact && r.V == hash(i)
		res.ByPID[r.PID]++
	}
	return 0
}

// host is a network namespace with a poolworker, linked to the driver's
// namespace by a veth pair: 10.252.i.1 on the driver's side, 10.252.i.2 on
// the host's.
type host struct {
	ns, ip string
	pw     *proc
}

// world is the driver's namespace, its /etc files, and the hosts.
type world struct {
	t      *testing.T
	tag    string
	driver string // namespace
	etc    string // /etc/netns/<driver>
	hosts  []*host
}

func newWorld(t *testing.T, n int) *world {
	testenv.RequireNetns(t, "the elastic tests")
	bin := testenv.Poolworker(t)
	tag := strconv.Itoa(os.Getpid() % 100000)
	w := &world{t: t, tag: tag, driver: "mpe-d-" + tag}
	w.etc = filepath.Join("/etc/netns", w.driver)
	testenv.Cmd(t, "ip", "netns", "add", w.driver)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", w.driver).Run() })
	testenv.Cmd(t, "ip", "netns", "exec", w.driver, "ip", "link", "set", "lo", "up")
	if err := os.MkdirAll(w.etc, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(w.etc) })
	// Names come from the hosts file only: no lookup leaves the namespace.
	w.write("nsswitch.conf", "hosts: files\n")
	w.write("resolv.conf", "nameserver 127.0.0.1\n")
	w.setHosts()
	cache := filepath.Join(t.TempDir(), "cache") // poolworker makes it, mode 0700
	for i := 1; i <= n; i++ {
		h := &host{ns: fmt.Sprintf("mpe-%d-%s", i, tag), ip: fmt.Sprintf("10.252.%d.2", i)}
		dside, hside := fmt.Sprintf("mpe%dd%s", i, tag), fmt.Sprintf("mpe%dh%s", i, tag)
		testenv.Cmd(t, "ip", "netns", "add", h.ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", h.ns).Run() })
		testenv.Cmd(t, "ip", "link", "add", dside, "type", "veth", "peer", "name", hside)
		testenv.Cmd(t, "ip", "link", "set", dside, "netns", w.driver)
		testenv.Cmd(t, "ip", "link", "set", hside, "netns", h.ns)
		testenv.Cmd(t, "ip", "netns", "exec", w.driver, "ip", "addr", "add", fmt.Sprintf("10.252.%d.1/30", i), "dev", dside)
		testenv.Cmd(t, "ip", "netns", "exec", w.driver, "ip", "link", "set", dside, "up")
		testenv.Cmd(t, "ip", "netns", "exec", h.ns, "ip", "addr", "add", h.ip+"/30", "dev", hside)
		testenv.Cmd(t, "ip", "netns", "exec", h.ns, "ip", "link", "set", hside, "up")
		testenv.Cmd(t, "ip", "netns", "exec", h.ns, "ip", "link", "set", "lo", "up")
		h.pw = startProc(t, "ip", "netns", "exec", h.ns, bin, "-listen", h.ip+":"+port, "-token", token,
			"-capacity", "2", "-cache-dir", filepath.Join(cache, h.ns), "-drain-timeout", "1s")
		w.hosts = append(w.hosts, h)
	}
	for _, h := range w.hosts {
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(h.pw.out.String(), `msg=listening`) {
			if time.Now().After(deadline) {
				t.Fatalf("poolworker in %s did not start:\n%s", h.ns, h.pw.out)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return w
}

func (w *world) write(name, content string) {
	w.t.Helper()
	// In place: ip netns exec bind-mounts the file, so a new file (a
	// rename over it) would not be seen by a process already running.
	f, err := os.OpenFile(filepath.Join(w.etc, name), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		w.t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.WriteString(f, content); err != nil {
		w.t.Fatal(err)
	}
}

// setHosts makes the service name resolve to ips in the driver's namespace.
func (w *world) setHosts(ips ...string) {
	var b strings.Builder
	b.WriteString("127.0.0.1 localhost\n")
	for _, ip := range ips {
		fmt.Fprintf(&b, "%s %s\n", ip, service)
	}
	w.write("hosts", b.String())
}

// startDriver runs the driver process in its namespace; its events feed ev.
func (w *world) startDriver(mode string, ev *testenv.Events) (*exec.Cmd, *testenv.Buffer, chan struct{}) {
	w.t.Helper()
	exe, err := os.Executable()
	if err != nil {
		w.t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", w.driver, exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), driverEnv+"="+mode)
	out := &testenv.Buffer{}
	cmd.Stdout = out
	stderr, err := cmd.StderrPipe()
	if err != nil {
		w.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var rec map[string]any
			if json.Unmarshal(sc.Bytes(), &rec) != nil {
				ev.Add(testenv.Event{Msg: "stderr", Attrs: sc.Text()})
				continue
			}
			e := testenv.Event{Msg: fmt.Sprint(rec["msg"])}
			if ts, ok := rec["time"].(string); ok {
				e.At, _ = time.Parse(time.RFC3339Nano, ts)
			}
			if wk, ok := rec["worker"]; ok {
				e.Worker = fmt.Sprint(wk)
			}
			e.Attrs = " " + sc.Text()
			ev.Add(e)
		}
		cmd.Wait()
		close(done)
	}()
	w.t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	return cmd, out, done
}

// TestElastic: a driver whose MP_ADDRESS is one name. The name starts with
// two poolworkers (and an address that is no poolworker); a third joins the
// name during the Map and takes chunks of it; one leaves the name and is
// drained, not failed; another is killed. The result is exact.
func TestElastic(t *testing.T) {
	w := newWorld(t, 3)
	h1, h2, h3 := w.hosts[0], w.hosts[1], w.hosts[2]
	closeGate(t)
	w.setHosts(h1.ip, h2.ip, "127.0.0.1")
	ev := testenv.NewEvents()
	_, out, done := w.startDriver("map", ev)
	const within = 2 * time.Minute // only stops a broken test from hanging
	ev.Wait(t, "map started", "", within)
	for _, h := range []*host{h1, h2} {
		ev.Wait(t, "worker connected", h.ip, within)
	}
	junk := ev.Wait(t, "worker unreachable; starting without it, and retrying it", "127.0.0.1:"+port, within)
	if !strings.Contains(junk.Attrs, "does not speak the mp protocol") {
		t.Errorf("the address that is no poolworker: %s", junk.Attrs)
	}

	added := time.Now()
	w.setHosts(h1.ip, h2.ip, h3.ip, "127.0.0.1") // a third joins the name
	found := ev.Wait(t, "worker found", h3.ip, within)
	joined := ev.Wait(t, "worker connected", h3.ip, within)
	// Figures for the README, not assertions: the lookup sees the hosts
	// file within ResolveEvery plus Go's hosts-file cache (5 s); then the
	// node is dialled, sent the executable and starts a worker process.
	t.Logf("a host added to the name: found %v later, taking chunks %v after that (executable uploaded)",
		found.At.Sub(added).Round(time.Millisecond), joined.At.Sub(found.At).Round(time.Millisecond))
	w.setHosts(h2.ip, h3.ip, "127.0.0.1") // the first leaves it
	ev.Wait(t, "worker draining", h1.ip, within)
	h2.pw.cmd.Process.Kill() // the second dies
	ev.Wait(t, "worker lost", h2.ip, within)
	openGate(t)

	select {
	case <-done:
	case <-time.After(within):
		t.Fatalf("the driver did not finish; its log:\n%s", ev)
	}
	var res driverResult
	if err := json.Unmarshal([]byte(out.String()), &res); err != nil {
		t.Fatalf("driver output %q: %v; its log:\n%s", out, err, ev)
	}
	if res.Err != "" || !res.Exact {
		t.Fatalf("Map: err %q, exact %v; the driver's log:\n%s", res.Err, res.Exact, ev)
	}
	for i, h := range w.hosts {
		if chunksOf(res.ByPID, h.pw.workerPIDs()) == 0 {
			t.Errorf("host %d (%s) ran no item of the Map; items by process %v", i+1, h.ip, res.ByPID)
		}
	}
	ev.Wait(t, "worker drained", h1.ip, time.Second)
	// A worker process's output reaches the driver's stderr, labelled with
	// its node and process.
	said := ev.Find("stderr", "", time.Time{})
	if i := slices.IndexFunc(said, func(e testenv.Event) bool {
		return strings.Contains(e.Attrs, "] "+outputLine) && strings.HasPrefix(e.Attrs, "[poolworker 10.252.") && strings.Contains(e.Attrs, "(pid ")
	}); i >= 0 {
		t.Logf("forwarded: %s", said[i].Attrs)
	} else {
		t.Errorf("no %q line, prefixed with the node and process, on the driver's stderr; its lines not from its log: %v", outputLine, said)
	}
	if lost := ev.Find("worker lost", h1.ip, time.Time{}); len(lost) > 0 {
		t.Errorf("the host removed from the name was lost, not drained: %v", lost)
	}
	t.Logf("items by worker process: %v", res.ByPID)
	for _, h := range w.hosts {
		t.Logf("%s ran %d items", h.ip, chunksOf(res.ByPID, h.pw.workerPIDs()))
	}
}

// TestNameVanishes: a name that resolves to nothing for longer than
// ReconnectFor behaves like no workers: its members are drained, and then
// the call fails with ErrNoWorkers instead of waiting for ever.
func TestNameVanishes(t *testing.T) {
	w := newWorld(t, 1)
	closeGate(t)
	w.setHosts(w.hosts[0].ip)
	ev := testenv.NewEvents()
	_, out, done := w.startDriver("vanish", ev)
	const within = 2 * time.Minute // only stops a broken test from hanging
	ev.Wait(t, "map started", "", within)
	ev.Wait(t, "worker connected", w.hosts[0].ip, within)
	w.setHosts()
	ev.Wait(t, "worker draining", w.hosts[0].ip, within)
	openGate(t) // its chunks finish; the rest of the Map has no worker
	select {
	case <-done:
	case <-time.After(within):
		t.Fatalf("the driver did not finish; its log:\n%s", ev)
	}
	var res driverResult
	if err := json.Unmarshal([]byte(out.String()), &res); err != nil {
		t.Fatalf("driver output %q: %v; its log:\n%s", out, err, ev)
	}
	if !strings.Contains(res.Err, "no workers") {
		t.Fatalf("Map after the name vanished: err %q, want ErrNoWorkers; the driver's log:\n%s", res.Err, ev)
	}
	ev.Wait(t, "worker drained", w.hosts[0].ip, time.Second)
	t.Logf("the error: %s", res.Err)
}

// TestNameDoesNotResolve: New fails with an error that names the name.
func TestNameDoesNotResolve(t *testing.T) {
	w := newWorld(t, 0)
	w.setHosts()
	ev := testenv.NewEvents()
	_, out, done := w.startDriver("noresolve", ev)
	<-done
	var res driverResult
	if err := json.Unmarshal([]byte(out.String()), &res); err != nil {
		t.Fatalf("driver output %q: %v; its log:\n%s", out, err, ev)
	}
	if !strings.Contains(res.Err, "nosuch."+service+":"+port) || !strings.Contains(res.Err, "does not resolve") {
		t.Errorf("New with a name that does not resolve: %q", res.Err)
	}
	t.Logf("the error: %s", res.Err)
}
