// Package hostile replays the attacks of issue 11 on real poolworker
// processes and drivers: weak tokens off loopback (and a hosts file that
// maps localhost elsewhere), files planted in the executable cache, nodes
// that report absurd numbers, and connections held open to exhaust a
// poolworker's file descriptors. Each attack must fail with a clear error,
// and the attacked side must live on and serve legitimate peers.
package hostile

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mpgo/mp/internal/testenv"
	"github.com/mpgo/mp/internal/wire"
	"github.com/mpgo/mp/pool"
	"github.com/mpgo/mp/pool/cluster"
)

func TestMain(m *testing.M) {
	cluster.WorkerMain()
	testenv.Run(m)
}

func init() {
	pool.MustRegister(double)
}

func double(x int) int { return 2 * x }

// strongToken has 256 bits, as poolworker -new-token makes them.
const strongToken = "hostile-test-P4v9xQk2LmW7rT1yZc8NbF3sJh6Gd0Ae5UoIi"

// node is a poolworker process.
type node struct {
	addr   string
	cmd    *exec.Cmd
	done   chan struct{}
	mu     sync.Mutex
	stderr strings.Builder
}

// startNode starts poolworker with args (a -listen among them) and the
// environment env added to this process's, and waits until it listens.
func startNode(t *testing.T, bin string, env []string, args ...string) *node {
	t.Helper()
	return startNodeUnder(t, nil, bin, env, args...)
}

// startNodeUnder is startNode with poolworker run by the command wrap (such
// as prlimit and its arguments).
func startNodeUnder(t *testing.T, wrap []string, bin string, env []string, args ...string) *node {
	t.Helper()
	n := &node{done: make(chan struct{})}
	argv := append(append(append([]string{}, wrap...), bin, "-log-format", "json", "-drain-timeout", "2s"), args...)
	n.cmd = exec.Command(argv[0], argv[1:]...)
	n.cmd.Env = append(cleanEnv(), env...)
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	pipe, err := n.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			n.mu.Lock()
			n.stderr.WriteString(sc.Text() + "\n")
			n.mu.Unlock()
			var rec map[string]any
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["msg"] == "listening" {
				addrc <- fmt.Sprint(rec["addr"])
			}
		}
		io.Copy(io.Discard, pipe)
	}()
	go func() { n.cmd.Wait(); close(n.done) }()
	t.Cleanup(func() {
		n.cmd.Process.Kill()
		<-n.done
		if t.Failed() {
			t.Logf("poolworker %v log:\n%s", args, n.log())
		}
	})
	select {
	case n.addr = <-addrc:
	case <-n.done:
		t.Fatalf("poolworker exited: %v\n%s", n.cmd.ProcessState, n.log())
	case <-time.After(20 * time.Second):
		t.Fatal("poolworker did not start")
	}
	return n
}

func (n *node) log() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stderr.String()
}

func (n *node) alive() bool {
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// cleanEnv is this process's environment without mp's and poolworker's
// variables.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MP_") && !strings.HasPrefix(kv, "POOLWORKER_") {
			env = append(env, kv)
		}
	}
	return env
}

// runPoolworker runs poolworker to its exit and returns its exit code and
// stderr.
func runPoolworker(t *testing.T, bin string, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(cleanEnv(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("poolworker %v did not exit:\n%s", args, stderr.String())
	}
	return cmd.ProcessState.ExitCode(), stderr.String()
}

func mustMap(t *testing.T, p *pool.Pool, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	in := make([]int, n)
	for i := range in {
		in[i] = i
	}
	out, err := pool.Map(ctx, p, double, in)
	if err != nil {
		t.Fatalf("Map: %v", err)
	}
	for i, v := range out {
		if v != 2*i {
			t.Fatalf("Map: result %d is %d", i, v)
		}
	}
}

// closeAtEnd closes p when the test ends and waits for its workers to exit.
func closeAtEnd(t *testing.T, p *pool.Pool) {
	t.Cleanup(func() {
		p.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := p.Join(ctx); err != nil {
			t.Errorf("Join: %v", err)
		}
	})
}

// fakeSetup plays a poolworker's part on c, a driver's connection, up to
// its worker process's Ready: the handshake (strongToken), the driver's
// Setup answered as if the executable were cached, and ready sent as the
// worker process would. It returns the channel and its codec, or false if
// the driver did not go that far.
func fakeSetup(c net.Conn, ready wire.Ready) (net.Conn, *wire.Codec, bool) {
	sc, err := wire.WorkerHandshake(c, wire.Auth{Token: []byte(strongToken)}, 5*time.Second)
	if err != nil {
		return nil, nil, false
	}
	boot := wire.NewUnbufferedCodec(sc, 0)
	if k, _, err := boot.Recv(); err != nil || k != wire.KindSetup {
		return nil, nil, false
	}
	boot.Send(wire.KindSetupReply, wire.SetupReply{})
	boot.Send(wire.KindReady, ready)
	return sc, boot, true
}
