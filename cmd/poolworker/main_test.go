//go:build unix

package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mpgo/mp/internal/testenv"
	"github.com/mpgo/mp/internal/wire"
	"github.com/mpgo/mp/pool"
	"github.com/mpgo/mp/pool/cluster"
)

// The poolworkers under test run this test binary, shipped by the tests as
// drivers, as their worker processes: those must serve, not test.
func TestMain(m *testing.M) {
	if cluster.IsWorker() && slices.Contains(os.Args, argExitEarly) {
		fmt.Println("MP_INPUT is not set: nothing to do")
		os.Exit(0)
	}
	if cluster.IsWorker() && slices.Contains(os.Args, argBlockEarly) {
		fmt.Println("waiting for the lock file")
		select {}
	}
	cluster.WorkerMain()
	if addr := os.Getenv(envNewOnly); addr != "" {
		os.Exit(newOnly(addr))
	}
	if addr := os.Getenv(envDriver); addr != "" {
		os.Exit(blockedDriver(addr, os.Getenv(envFlag)))
	}
	testenv.Run(m)
}

// Arguments that make this test binary's worker processes leave main
// before they reach cluster.New (the driver passes its arguments on).
const (
	argExitEarly  = "mp-test-exit-before-new"
	argBlockEarly = "mp-test-block-before-new"
)

// newOnly is a driver process that only starts a pool on the poolworker at
// addr, and prints why it could not.
func newOnly(addr string) int {
	p, err := cluster.New(cluster.Addresses(addr), cluster.Token(testToken), cluster.ReconnectFor(time.Second))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	p.Terminate()
	return 0
}

// Functions the tests run on worker processes.
func init() {
	pool.MustRegister(triple)
	pool.MustRegisterCtx(nap)
	pool.MustRegisterCtx(block)
}

// triple returns 3x+1.
func triple(x int) int { return 3*x + 1 }

// A napItem asks nap to sleep Ms milliseconds, first creating the file
// Flag if it is set.
type napItem struct {
	Flag string
	Ms   int
}

// nap sleeps as it asks, or until ctx is done, and returns Ms+1.
func nap(ctx context.Context, it napItem) (int, error) {
	if it.Flag != "" {
		if err := os.WriteFile(it.Flag, nil, 0o600); err != nil {
			return 0, err
		}
	}
	t := time.NewTimer(time.Duration(it.Ms) * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		return it.Ms + 1, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// block creates the file flag, then waits until ctx is done.
func block(ctx context.Context, flag string) (int, error) {
	if err := os.WriteFile(flag, nil, 0o600); err != nil {
		return 0, err
	}
	<-ctx.Done()
	return 0, ctx.Err()
}

// Environment of a test driver process.
const (
	envDriver  = "POOLWORKER_TEST_DRIVER"   // the poolworker's address
	envNewOnly = "POOLWORKER_TEST_NEW_ONLY" // the poolworker's address
	envFlag    = "POOLWORKER_TEST_FLAG"     // file that says a chunk runs
)

// blockedDriver is a driver process: it runs block(flag) on the poolworker
// at addr, and waits to be killed.
func blockedDriver(addr, flag string) int {
	p, err := cluster.New(cluster.Addresses(addr), cluster.Token(testToken))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	pool.ApplyAsyncCtx(context.Background(), p, block, flag)
	select {}
}

// testToken is the token of the poolworkers under test.
const testToken = "poolworker-test-token-KZ2b8Qm1xT4rWv7y"

// testServer is a poolworker running in the test process.
type testServer struct {
	*server
	addr string
	logs *testenv.Buffer
}

// startServer starts a poolworker in this process on a free loopback port,
// with testToken, capacity 2 and a cache of its own; edit changes that
// configuration. It is shut down when the test ends, and its log is shown if
// the test failed.
func startServer(t *testing.T, edit func(*config)) *testServer {
	t.Helper()
	cfg := config{
		listen:       "127.0.0.1:0",
		token:        []byte(testToken),
		capacity:     2,
		cacheDir:     t.TempDir(),
		maxBinary:    defaultMaxBinary,
		cacheMax:     defaultCacheMax,
		logLevel:     slog.LevelDebug,
		drainTimeout: 10 * time.Second,
	}
	if edit != nil {
		edit(&cfg)
	}
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		t.Fatal(err)
	}
	logs := &testenv.Buffer{}
	srv := newServer(cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("poolworker log:\n%s", logs)
		}
	})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &testServer{srv, ln.Addr().String(), logs}
}

// newPool starts a cluster pool on the poolworkers at addrs, and terminates
// it when the test ends.
func newPool(t *testing.T, addrs []string, opts ...pool.Option) *pool.Pool {
	t.Helper()
	opts = append(opts, cluster.Addresses(addrs...), cluster.Token(testToken))
	p, err := cluster.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Terminate()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p.Join(ctx)
	})
	return p
}

// checkTriples runs triple over n items on p and checks every result.
func checkTriples(t *testing.T, p *pool.Pool, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	items := make([]int, n)
	for i := range items {
		items[i] = i
	}
	got, err := pool.Map(ctx, p, triple, items)
	if err != nil {
		t.Fatalf("Map: %v", err)
	}
	if len(got) != n {
		t.Fatalf("Map returned %d results for %d items", len(got), n)
	}
	for i, v := range got {
		if v != 3*i+1 {
			t.Fatalf("result %d = %d, want %d", i, v, 3*i+1)
		}
	}
}

// client is a hand-made driver: it speaks the setup protocol step by step.
type client struct {
	conn net.Conn // the channel
	boot *wire.Codec
	raw  net.Conn // the TCP connection under it, where a test's shell-script worker process writes
}

// dial connects to addr and authenticates with token.
func dial(addr, token string) (*client, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	sc, err := wire.DriverHandshake(conn, wire.Auth{Token: []byte(token)}, 5*time.Second)
	if err != nil {
		conn.Close()
		return nil, err
	}
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	return &client{sc, wire.NewUnbufferedCodec(sc, 0), conn}, nil
}

// mustDial is dial for the test's goroutine.
func mustDial(t *testing.T, addr string) *client {
	t.Helper()
	c, err := dial(addr, testToken)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.conn.Close() })
	return c
}

// reply reads a SetupReply.
func (c *client) reply() (wire.SetupReply, error) {
	var r wire.SetupReply
	k, body, err := c.boot.Recv()
	if err != nil {
		return r, err
	}
	if k != wire.KindSetupReply {
		return r, fmt.Errorf("got %s, want SetupReply", k)
	}
	return r, c.boot.Decode(body, &r)
}

// setup sends s and reads the reply.
func (c *client) setup(s wire.Setup) (wire.SetupReply, error) {
	if err := c.boot.Send(wire.KindSetup, s); err != nil {
		return wire.SetupReply{}, err
	}
	return c.reply()
}

// sendBinary sends b in pieces of piece bytes, then the empty piece.
func (c *client) sendBinary(b []byte, piece int) error {
	for len(b) > 0 {
		n := min(piece, len(b))
		if err := c.boot.SendRaw(wire.KindBinary, b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return c.boot.SendRaw(wire.KindBinary, nil)
}

// install runs the setup protocol for the executable exe: Setup, and if the
// node asks, the bytes. It reports whether the node asked for them.
func (c *client) install(exe []byte) (uploaded bool, err error) {
	r, err := c.setup(setupFor(exe))
	if err != nil {
		return false, err
	}
	if r.Error != "" {
		return false, errors.New(r.Error)
	}
	if !r.NeedBinary {
		return false, nil
	}
	if err := c.sendBinary(exe, 1<<20); err != nil {
		return true, err
	}
	if r, err = c.reply(); err == nil && r.Error != "" {
		err = errors.New(r.Error)
	}
	return true, err
}

// readAll reads what the worker process (a shell script, which cannot
// speak the channel) writes in clear on the connection until it closes it.
func (c *client) readAll() (string, error) {
	c.raw.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c.raw)
	return string(b), err
}

// setupFor returns the Setup of an executable with contents exe, for this
// node's system.
func setupFor(exe []byte) wire.Setup {
	sum := sha256.Sum256(exe)
	return wire.Setup{GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(exe))}
}

// cachedFiles lists the executables in a cache directory, not uploads in
// progress.
func cachedFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), tempPrefix) {
			names = append(names, e.Name())
		}
	}
	return names
}
