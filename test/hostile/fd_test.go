package hostile

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mpgo/mp/internal/admit"
	"github.com/mpgo/mp/internal/testenv"
	"github.com/mpgo/mp/pool"
	"github.com/mpgo/mp/pool/cluster"
)

// Issue 11: 1,100 connections held before their handshake, against a
// poolworker limited to 1,024 file descriptors, made 7 of 8 legitimate
// drivers fail (the daemon hit EMFILE in dup and fork). Now the
// connections awaiting their handshake are bounded in total and per
// source address, leaving descriptors for the drivers' sessions: with
// 1,100 held from one address and 1,100 more from 110 others, 8 drivers
// started together are all served, and poolworker never runs out of
// descriptors.
func TestHeldConnections(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the test uses Linux's prlimit and 127.0.0.0/8 source addresses")
	}
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Skip("the test needs prlimit (util-linux) to limit poolworker's descriptors")
	}
	bin := testenv.Poolworker(t)
	n := startNodeUnder(t, []string{prlimit, "--nofile=1024:1024", "--"}, bin, []string{"MP_TOKEN=" + strongToken},
		"-listen", "127.0.0.1:0", "-capacity", "1", "-cache-dir", filepath.Join(t.TempDir(), "cache"))
	limits, _ := os.ReadFile(fmt.Sprintf("/proc/%d/limits", n.cmd.Process.Pid))
	if !strings.Contains(string(limits), "Max open files            1024                 1024") {
		t.Fatalf("poolworker's limits:\n%s", limits)
	}

	flood(t, n.addr)

	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			p, err := cluster.New(cluster.Addresses(n.addr), cluster.Token(strongToken))
			if err != nil {
				errs[i] = err
				return
			}
			closeAtEnd(t, p)
			mustMap(t, p, 200)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("driver %d: %v", i, err)
		}
	}
	if !n.alive() {
		t.Fatal("poolworker died")
	}
	if log := n.log(); strings.Contains(log, "too many open files") {
		t.Errorf("poolworker ran out of descriptors:\n%s", log)
	}
	if log := n.log(); !strings.Contains(log, "too many connections awaiting their handshake") {
		t.Errorf("poolworker did not say it shed connections:\n%s", log)
	}
}

// The same flood against a driver that listens for poolworker -connect
// (cluster.Listen): it held every connection until its handshake timed
// out, so connections that never authenticate could take the descriptors
// of the user's own program. Now the driver bounds them as poolworker does
// (internal/admit): of 1,100 held from one address and 1,100 from 110
// others, it closes all but its total at once, well before the 10 s
// handshake timeout would; then a poolworker that dials in joins and runs
// a Map.
func TestHeldConnectionsDriver(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the test uses 127.0.0.0/8 source addresses, which only Linux routes without setup")
	}
	bin := testenv.Poolworker(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ev := testenv.NewEvents()
	type started struct {
		p   *pool.Pool
		err error
	}
	newDone := make(chan started, 1)
	go func() {
		p, err := cluster.New(cluster.Listen(addr), cluster.Token(strongToken), cluster.StartTimeout(2*time.Minute), cluster.Logger(slog.New(ev)))
		newDone <- started{p, err}
	}()
	for deadline := time.Now().Add(time.Minute); ; {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the driver never listened on %s: %v", addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}

	held := flood(t, addr)
	// A connection the driver closed reads EOF (or a reset); one it still
	// holds reads nothing until the deadline, 3 s, well before its 10 s
	// handshake timeout.
	var closed atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(3 * time.Second)
	for _, c := range held {
		wg.Go(func() {
			c.SetReadDeadline(deadline)
			var b [1]byte
			if _, err := c.Read(b[:]); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				closed.Add(1)
			}
		})
	}
	wg.Wait()
	total, _ := admit.Limits()
	if open := len(held) - int(closed.Load()); open > total {
		t.Errorf("the driver holds %d of %d connections that never authenticated, more than its bound of %d", open, len(held), total)
	}

	var out testenv.Buffer
	pw := exec.Command(bin, "-connect", addr, "-capacity", "1", "-cache-dir", filepath.Join(t.TempDir(), "cache"))
	pw.Env = append(cleanEnv(), "MP_TOKEN="+strongToken)
	pw.Stdout, pw.Stderr = &out, &out
	pw.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := pw.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pw.Process.Kill(); pw.Wait() })
	st := <-newDone
	if st.err != nil {
		t.Fatalf("New, listening, with a poolworker dialling in after the flood: %v\npoolworker: %s", st.err, out.String())
	}
	closeAtEnd(t, st.p)
	mustMap(t, st.p, 200)
	if len(ev.Find("too many connections awaiting their handshake", "", time.Time{})) == 0 {
		t.Errorf("the driver did not say it shed connections:\n%s", ev)
	}
}

// flood opens connections to addr that never start their handshake, held
// until the test ends: 1,100 from 127.0.0.2 and 1,100 from 110 other
// addresses, 10 each.
func flood(t *testing.T, addr string) []net.Conn {
	t.Helper()
	var held []net.Conn
	t.Cleanup(func() {
		for _, c := range held {
			c.Close()
		}
	})
	hold := func(src string) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("holding connections: %v", err)
		}
		held = append(held, c)
	}
	for range 1100 {
		hold("127.0.0.2")
	}
	for i := range 1100 {
		hold(fmt.Sprintf("127.0.1.%d", i%110+1))
	}
	return held
}
