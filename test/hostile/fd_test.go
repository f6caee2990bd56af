package hostile

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mpgo/mp/internal/testenv"
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

	var held []net.Conn
	t.Cleanup(func() {
		for _, c := range held {
			c.Close()
		}
	})
	hold := func(src string) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", n.addr)
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
