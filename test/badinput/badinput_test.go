// Package badinput tries every kind of bad input on a real poolworker
// process over loopback while a good driver's Map runs beside it: each bad
// input gets a clear error, the poolworker stays up and serves the next
// client, and the good driver's work is not lost. It also checks that a
// poolworker serving a thousand short sessions does not grow.
package badinput

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mpgo/mp/internal/testenv"
	"github.com/mpgo/mp/internal/wire"
	"github.com/mpgo/mp/pool"
	"github.com/mpgo/mp/pool/cluster"
	"github.com/vmihailenco/msgpack/v5"
)

func TestMain(m *testing.M) {
	cluster.WorkerMain()
	testenv.Run(m)
}

func init() {
	pool.MustRegister(double)
	pool.MustRegister(slowDouble)
	pool.MustRegister(usePicky)
	pool.MustRegister(makeOpaque)
	pool.MustRegister(hang)
}

func double(x int) int { return 2 * x }

func slowDouble(x int) int {
	time.Sleep(200 * time.Microsecond)
	return 2 * x
}

// picky is a type whose decoding fails for odd values: an argument msgpack
// cannot decode into the function's type.
type picky int

func (p picky) EncodeMsgpack(enc *msgpack.Encoder) error { return enc.EncodeInt(int64(p)) }

func (p *picky) DecodeMsgpack(dec *msgpack.Decoder) error {
	v, err := dec.DecodeInt()
	if err != nil {
		return err
	}
	if v%2 != 0 {
		return fmt.Errorf("picky: odd value %d", v)
	}
	*p = picky(v)
	return nil
}

func usePicky(p picky) int { return int(p) }

// opaque is not registered: a value of it in an interface cannot cross.
type opaque struct{ N int }

type box struct{ V any }

func makeOpaque(x int) box { return box{V: opaque{x}} }

// hang never returns and ignores its context.
func hang(int) int { select {} }

func unregistered(x int) int { return x }

const token = "bad-input-test-token-8c1e"

// node is a poolworker process on loopback.
type node struct {
	addr  string
	cache string
	cmd   *exec.Cmd
	done  chan struct{}
}

func startNode(t *testing.T) *node {
	t.Helper()
	n := &node{cache: filepath.Join(t.TempDir(), "cache"), done: make(chan struct{})}
	n.cmd = exec.Command(testenv.Poolworker(t), "-listen", "127.0.0.1:0", "-token", token,
		"-capacity", "2", "-cache-dir", n.cache, "-log-format", "json", "-drain-timeout", "2s")
	n.cmd.Env = append(os.Environ(), "MP_TOKEN=")
	stderr, err := n.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var rec map[string]any
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["msg"] == "listening" {
				addrc <- fmt.Sprint(rec["addr"])
			}
		}
	}()
	go func() { n.cmd.Wait(); close(n.done) }()
	select {
	case n.addr = <-addrc:
	case <-time.After(20 * time.Second):
		t.Fatal("poolworker did not start")
	}
	t.Cleanup(func() {
		n.cmd.Process.Kill()
		<-n.done
	})
	return n
}

func (n *node) alive() bool {
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func ints(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

func doubles(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = 2 * i
	}
	return s
}

// rawSession dials the node and, if authed, completes the handshake.
func rawSession(t *testing.T, n *node, authed bool) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", n.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if authed {
		sc, err := wire.DriverHandshake(c, wire.Auth{Token: []byte(token)}, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return sc
	}
	return c
}

// closedByPeer reports whether the node closed c within a few seconds.
func closedByPeer(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	for {
		if _, err := c.Read(buf); err != nil {
			var ne net.Error
			return !(errors.As(err, &ne) && ne.Timeout())
		}
	}
}

func TestBadInputs(t *testing.T) {
	n := startNode(t)
	newPool := func(opts ...pool.Option) (*pool.Pool, error) {
		return cluster.New(append([]pool.Option{cluster.Addresses(n.addr), cluster.Token(token)}, opts...)...)
	}

	// A good driver works throughout.
	good, err := newPool()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { good.Close(); good.Join(context.Background()) }()
	goodRes := pool.MapAsync(ctxFor(t, 3*time.Minute), good, slowDouble, ints(20000), pool.Chunksize(50))

	cases := []struct {
		name string
		try  func(t *testing.T) // fails the test unless the bad input got a clear error
	}{
		{"no token", func(t *testing.T) {
			_, err := newPool(cluster.Token(""))
			if !errors.Is(err, wire.ErrAuth) || !strings.Contains(err.Error(), "MP_TOKEN") {
				t.Fatalf("got %v", err)
			}
		}},
		{"wrong token", func(t *testing.T) {
			_, err := newPool(cluster.Token("wrong"))
			if !errors.Is(err, wire.ErrAuth) || !strings.Contains(err.Error(), "MP_TOKEN") {
				t.Fatalf("got %v", err)
			}
		}},
		{"garbage bytes", func(t *testing.T) {
			c := rawSession(t, n, false)
			defer c.Close()
			c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n" + strings.Repeat("\x00\xff", 100)))
			if !closedByPeer(c) {
				t.Fatal("garbage: the node kept the connection open")
			}
		}},
		{"oversized frame", func(t *testing.T) {
			c := rawSession(t, n, true)
			defer c.Close()
			var hdr [5]byte
			binary.BigEndian.PutUint32(hdr[:], 1<<31)
			hdr[4] = byte(wire.KindSetup)
			c.Write(hdr[:])
			if !closedByPeer(c) {
				t.Fatal("oversized frame: the node kept the connection open")
			}
		}},
		{"truncated frame", func(t *testing.T) {
			c := rawSession(t, n, true)
			var hdr [5]byte
			binary.BigEndian.PutUint32(hdr[:], 100)
			hdr[4] = byte(wire.KindSetup)
			c.Write(append(hdr[:], 1, 2, 3))
			c.Close() // mid-frame
		}},
		{"protocol version mismatch", func(t *testing.T) {
			c := rawSession(t, n, false)
			defer c.Close()
			hello := make([]byte, 40)
			if _, err := c.Read(hello); err != nil {
				t.Fatal(err)
			}
			proof := make([]byte, 72)
			copy(proof, "MPGO")
			binary.BigEndian.PutUint16(proof[4:], wire.Version+1)
			c.Write(proof)
			reply := make([]byte, 72)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Read(reply); err != nil {
				t.Fatalf("no answer to a version mismatch: %v", err)
			}
			if v := binary.BigEndian.Uint16(reply[4:]); v != wire.Version || binary.BigEndian.Uint16(reply[6:]) != 2 {
				t.Fatalf("reply %x: want the node's version and status 2 (version mismatch)", reply[:8])
			}
		}},
		{"driver facing another version", func(t *testing.T) {
			// A fake node that speaks version 2: the driver's error says so.
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				hello := make([]byte, 40)
				copy(hello, "MPGO")
				binary.BigEndian.PutUint16(hello[4:], wire.Version+1)
				c.Write(hello)
				c.Read(make([]byte, 72))
			}()
			_, err = cluster.New(cluster.Addresses(ln.Addr().String()), cluster.Token(token))
			if !errors.Is(err, wire.ErrVersion) || !strings.Contains(err.Error(), fmt.Sprintf("version %d", wire.Version+1)) {
				t.Fatalf("got %v", err)
			}
		}},
		{"binary for another GOARCH", func(t *testing.T) {
			c := rawSession(t, n, true)
			defer c.Close()
			codec := wire.NewUnbufferedCodec(c, 0)
			arch := "arm64"
			if arch == runtime.GOARCH {
				arch = "amd64"
			}
			codec.Send(wire.KindSetup, wire.Setup{GOOS: "linux", GOARCH: arch, SHA256: strings.Repeat("ab", 32), Size: 10})
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			k, body, err := codec.Recv()
			if err != nil || k != wire.KindSetupReply {
				t.Fatalf("Recv = %v, %v", k, err)
			}
			var reply wire.SetupReply
			codec.Decode(body, &reply)
			if !strings.Contains(reply.Error, arch) || !strings.Contains(reply.Error, runtime.GOARCH) {
				t.Fatalf("reply %q does not name both architectures", reply.Error)
			}
		}},
		{"unregistered function", func(t *testing.T) {
			p := mustPool(t, newPool)
			_, err := pool.Map(ctxFor(t, time.Minute), p, unregistered, ints(3))
			if !errors.Is(err, pool.ErrNotRegistered) || !strings.Contains(err.Error(), "pool.MustRegister(unregistered)") {
				t.Fatalf("got %v", err)
			}
		}},
		{"argument that cannot be decoded", func(t *testing.T) {
			p := mustPool(t, newPool)
			_, err := pool.Map(ctxFor(t, time.Minute), p, usePicky, []picky{2, 3, 4}, pool.Chunksize(3))
			var te *pool.TaskError
			if !errors.As(err, &te) || te.Index != 1 || !errors.Is(err, pool.ErrEncoding) || !strings.Contains(err.Error(), "odd value 3") {
				t.Fatalf("got %v", err)
			}
		}},
		{"result that cannot be encoded", func(t *testing.T) {
			p := mustPool(t, newPool)
			_, err := pool.Map(ctxFor(t, time.Minute), p, makeOpaque, ints(2))
			if !errors.Is(err, pool.ErrEncoding) || !strings.Contains(err.Error(), "not registered") {
				t.Fatalf("got %v", err)
			}
		}},
		{"function that never returns, context cancelled", func(t *testing.T) {
			p := mustPool(t, newPool)
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := pool.Apply(ctx, p, hang, 1)
			if err != context.DeadlineExceeded {
				t.Fatalf("got %v, want context.DeadlineExceeded", err)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Fatalf("returned after %v", d)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.try(t)
			if !n.alive() {
				t.Fatal("the poolworker died")
			}
			// The node serves the next client.
			p := mustPool(t, newPool)
			got, err := pool.Map(ctxFor(t, time.Minute), p, double, ints(100))
			if err != nil || !slices.Equal(got, doubles(100)) {
				t.Fatalf("the next client after %q: %v", tc.name, err)
			}
		})
	}
	got, err := goodRes.Get(ctxFor(t, 3*time.Minute))
	if err != nil || !slices.Equal(got, doubles(20000)) {
		t.Fatalf("the good driver beside the bad inputs: %v", err)
	}
}

func mustPool(t *testing.T, newPool func(...pool.Option) (*pool.Pool, error)) *pool.Pool {
	t.Helper()
	p, err := newPool()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Close()
		p.Join(context.Background())
	})
	return p
}

// procStats reads a process's open descriptors, threads and resident memory.
func procStats(t *testing.T, pid int) (fds, threads int, rssKiB int) {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "Threads:" {
			fmt.Sscan(f[1], &threads)
		}
		if len(f) >= 2 && f[0] == "VmRSS:" {
			fmt.Sscan(f[1], &rssKiB)
		}
	}
	return len(ents), threads, rssKiB
}

// A poolworker serving 1,000 short sessions in a row does not grow: no
// descriptor, thread, child process or temporary file is left per session,
// and the driver keeps no goroutine.
func TestThousandSessions(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	sessions := 1000
	if testing.Short() {
		sessions = 100
	}
	n := startNode(t)
	session := func() error {
		p, err := cluster.New(cluster.Addresses(n.addr), cluster.Token(token))
		if err != nil {
			return err
		}
		r, err := pool.Apply(context.Background(), p, double, 21)
		p.Close()
		if jerr := p.Join(context.Background()); err == nil {
			err = jerr
		}
		if err == nil && r != 42 {
			err = fmt.Errorf("Apply = %d", r)
		}
		return err
	}
	// runSessions runs k sessions, four at a time.
	runSessions := func(k int) {
		var wg sync.WaitGroup
		errs := make(chan error, k)
		work := make(chan struct{}, k)
		for range k {
			work <- struct{}{}
		}
		close(work)
		for range 4 {
			wg.Go(func() {
				for range work {
					if err := session(); err != nil {
						errs <- err
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("a session failed: %v", err)
		}
	}
	// settle waits for the node's worker processes to exit and reads it.
	settle := func() (fds, threads, rss int) {
		deadline := time.Now().Add(10 * time.Second)
		for len(testenv.Children(n.cmd.Process.Pid)) > 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(200 * time.Millisecond)
		return procStats(t, n.cmd.Process.Pid)
	}
	// The first half warms up: the upload, and the Go runtime's threads and
	// heap growing to what four concurrent sessions need. The second half
	// must not grow anything.
	start := time.Now()
	runSessions(sessions / 2)
	fds0, threads0, rss0 := settle()
	goroutines0 := runtime.NumGoroutine()
	runSessions(sessions - sessions/2)
	fds, threads, rss := settle()
	// A worker process reaped a moment ago may still have its pipes open
	// in poolworker on a loaded machine: give them up to 10 s to close. A
	// leak does not close.
	for deadline := time.Now().Add(10 * time.Second); fds > fds0 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		fds, threads, rss = procStats(t, n.cmd.Process.Pid)
	}
	t.Logf("%d sessions in %v; over the second half: poolworker fds %d -> %d, threads %d -> %d, RSS %d -> %d KiB; driver goroutines %d -> %d",
		sessions, time.Since(start).Round(time.Millisecond), fds0, fds, threads0, threads, rss0, rss, goroutines0, runtime.NumGoroutine())
	if fds > fds0 {
		t.Errorf("poolworker descriptors grew from %d to %d", fds0, fds)
	}
	if threads > threads0+2 {
		t.Errorf("poolworker threads grew from %d to %d", threads0, threads)
	}
	if rss > rss0+8<<10 {
		t.Errorf("poolworker RSS grew from %d to %d KiB", rss0, rss)
	}
	if c := len(testenv.Children(n.cmd.Process.Pid)); c != 0 {
		t.Errorf("%d worker processes left on the node", c)
	}
	files, _ := os.ReadDir(n.cache)
	if len(files) != 1 {
		var names []string
		for _, f := range files {
			names = append(names, f.Name())
		}
		t.Errorf("cache holds %v; want the one executable, no temporary file", names)
	}
	if g := runtime.NumGoroutine(); g > goroutines0+2 {
		t.Errorf("driver goroutines grew from %d to %d", goroutines0, g)
	}
}
