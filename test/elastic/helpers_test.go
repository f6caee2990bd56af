// Package elastic tests a cluster whose members change during a call: a
// name that gains and loses addresses (in network namespaces, with the
// driver's hosts file), and poolworkers that dial in to a listening driver
// (on loopback). Every test checks the exact result of a Map, and reads from
// the driver's side (its log, and the process ids its results carry) which
// worker processes ran chunks.
package elastic

import (
	"fmt"
	"hash/fnv"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/mpgo/mp/internal/testenv"
	"github.com/mpgo/mp/pool"
	"github.com/mpgo/mp/pool/cluster"
)

func TestMain(m *testing.M) {
	cluster.WorkerMain()
	if os.Getenv(driverEnv) != "" {
		os.Exit(driverMain())
	}
	testenv.Run(m)
}

func init() { pool.MustRegister(work) }

const token = "elastic-test-token-6b1e0d9a"

// gatePath is a file: items in the second half of the input wait for it
// to exist, so that a Map is still running, with chunks in flight, while a
// test changes the cluster. It is a fixed path because worker processes get
// only a few variables of the environment from poolworker (TMPDIR is one).
func gatePath() string {
	return filepath.Join(os.TempDir(), fmt.Sprintf("mp-elastic-gate-%d", os.Getuid()))
}

// Tagged is an item's result and the worker process that computed it.
type Tagged struct {
	V   uint64
	PID int
}

// work hashes x, after waiting for the gate if x is in the second half
// (x ≥ gated marks it: see items).
func work(x int) Tagged {
	if x >= gated {
		gate := gatePath()
		for {
			if _, err := os.Stat(gate); err == nil {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		x -= gated
	}
	if x == 0 {
		fmt.Println(outputLine) // must reach the driver's stderr, labelled
	}
	time.Sleep(time.Millisecond)
	return Tagged{V: hash(x), PID: os.Getpid()}
}

const gated = 1_000_000

// outputLine is what work prints for item 0.
const outputLine = "elastic: item 0 says hello on stdout"

func hash(x int) uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "item %d", x)
	return h.Sum64()
}

// items returns n inputs; the second half is marked to wait for the gate.
func items(n int) []int {
	in := make([]int, n)
	for i := range in {
		in[i] = i
		if i >= n/2 {
			in[i] += gated
		}
	}
	return in
}

// checkExact fails t unless got holds the hash of every item in order, and
// returns how many items each process computed.
func checkExact(t *testing.T, got []Tagged, n int) map[int]int {
	t.Helper()
	if len(got) != n {
		t.Fatalf("%d results for %d items", len(got), n)
	}
	byPID := map[int]int{}
	for i, r := range got {
		if r.V != hash(i) {
			t.Fatalf("result %d = %d, want %d", i, r.V, hash(i))
		}
		byPID[r.PID]++
	}
	return byPID
}

// proc is a poolworker process a test started.
type proc struct {
	cmd    *exec.Cmd
	out    *testenv.Buffer
	exited chan struct{}
	err    error
}

// startProc starts name with args, output to a buffer; t's cleanup kills
// it if it is still running.
func startProc(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(name, args...), out: &testenv.Buffer{}, exited: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
	})
	return p
}

// waitExit waits for the process to exit and returns its Wait error.
func (p *proc) waitExit(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case <-p.exited:
		return p.err
	case <-time.After(timeout):
		t.Fatalf("%s did not exit within %v; its output:\n%s", p.cmd.Path, timeout, p.out)
		return nil
	}
}

var startedPID = regexp.MustCompile(`msg="worker process started".* pid=(\d+)`)

// workerPIDs returns the worker processes a poolworker's log says it
// started.
func (p *proc) workerPIDs() []int {
	var pids []int
	for _, m := range startedPID.FindAllStringSubmatch(p.out.String(), -1) {
		n, _ := strconv.Atoi(m[1])
		pids = append(pids, n)
	}
	return pids
}

// chunksOf sums byPID over pids.
func chunksOf(byPID map[int]int, pids []int) int {
	n := 0
	for _, pid := range pids {
		n += byPID[pid]
	}
	return n
}

// openGate creates the gate file.
func openGate(t *testing.T) {
	t.Helper()
	if err := os.WriteFile(gatePath(), nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// closeGate removes the gate file now and when t ends.
func closeGate(t *testing.T) {
	t.Helper()
	if err := os.Remove(gatePath()); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(gatePath()) })
}
