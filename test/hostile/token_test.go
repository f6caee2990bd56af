package hostile

import (
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mpgo/mp/internal/testenv"
	"github.com/mpgo/mp/internal/wire"
	"github.com/mpgo/mp/pool"
	"github.com/mpgo/mp/pool/cluster"
)

// poolworker -new-token prints 256 random bits, which pass off loopback.
func TestNewToken(t *testing.T) {
	bin := testenv.Poolworker(t)
	seen := map[string]bool{}
	for range 2 {
		out, err := exec.Command(bin, "-new-token").Output()
		if err != nil {
			t.Fatal(err)
		}
		tok := strings.TrimSpace(string(out))
		if len(tok) != 43 || strings.Trim(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			t.Fatalf("-new-token printed %q, want 43 base64url characters", tok)
		}
		if seen[tok] {
			t.Fatal("-new-token printed the same token twice")
		}
		seen[tok] = true
	}
}

// Issue 11: "poolworker -listen :7450 -token a starts without a word", and
// with no token a loopback poolworker let any local user run code as its
// user. Now neither starts, and the error says how to make a token; -token
// still works, with a warning that it shows in ps.
func TestWeakTokenRefused(t *testing.T) {
	bin := testenv.Poolworker(t)
	cache := filepath.Join(t.TempDir(), "cache") // poolworker makes it, mode 0700
	tests := []struct {
		name string
		env  []string
		args []string
		want []string
	}{
		{"-token a on all interfaces", nil, []string{"-listen", "0.0.0.0:0", "-token", "a"},
			[]string{"not loopback", "128", "-new-token", "-token-file"}},
		{"MP_TOKEN=s3cret on all interfaces", []string{"MP_TOKEN=s3cret"}, []string{"-listen", "[::]:0"},
			[]string{"not loopback", "MP_TOKEN", "-new-token"}},
		{"no token on loopback", nil, []string{"-listen", "127.0.0.1:0"},
			[]string{"no token", "-token-file", "MP_TOKEN", "-new-token"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stderr := runPoolworker(t, bin, tt.env, append(tt.args, "-cache-dir", cache)...)
			if code != 2 {
				t.Fatalf("exit code %d, want 2; stderr:\n%s", code, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr does not mention %q:\n%s", w, stderr)
				}
			}
		})
	}
	// A short token on loopback is allowed, and -token warns.
	n := startNode(t, bin, nil, "-listen", "127.0.0.1:0", "-token", "s3cret", "-cache-dir", cache)
	if !strings.Contains(n.log(), "-token is deprecated") {
		t.Errorf("no warning about -token:\n%s", n.log())
	}
}

// A driver refuses a weak token for a listener off loopback.
func TestDriverWeakTokenListen(t *testing.T) {
	_, err := cluster.New(cluster.Listen("0.0.0.0:0"), cluster.Token("s3cret"), cluster.StartTimeout(time.Second))
	if !errors.Is(err, pool.ErrConfig) || !strings.Contains(err.Error(), "MP_TOKEN") || !strings.Contains(err.Error(), "-new-token") {
		t.Fatalf("cluster.New(Listen(0.0.0.0:0), Token(s3cret)) = %v, want a configuration error naming MP_TOKEN and -new-token", err)
	}
}

// Issue 11: a hosts file mapping localhost to another address made a
// poolworker listen there without a token. Loopback is now decided by the
// address bound or dialled. Run in a network and mount namespace of its
// own (unshare) with a veth pair whose end has 10.252.0.1 and a hosts file that
// maps localhost to it: a poolworker told -listen localhost:0 with a weak
// token refuses to start; a poolworker -connect and a driver reaching
// "localhost" there send nothing and fail; with a strong token, a driver
// and a poolworker work across that address.
func TestWeakTokenHostsFile(t *testing.T) {
	if os.Getenv("MP_HOSTILE_INNER") == "" {
		testenv.RequireNetns(t, "the hosts file test")
		if _, err := exec.LookPath("unshare"); err != nil {
			t.Skip("the hosts file test needs unshare (util-linux)")
		}
		bin := testenv.Poolworker(t)
		hosts := filepath.Join(t.TempDir(), "hosts")
		os.WriteFile(hosts, []byte("10.252.0.1 localhost\n"), 0o644)
		cmd := exec.Command("unshare", "--mount", "--net", "--", os.Args[0], "-test.run=^TestWeakTokenHostsFile$", "-test.v")
		cmd.Env = append(os.Environ(), "MP_HOSTILE_INNER="+bin, "MP_HOSTILE_HOSTS="+hosts)
		out, err := cmd.CombinedOutput()
		t.Logf("in the namespace:\n%s", out)
		if err != nil {
			t.Fatalf("the test in the namespace failed: %v", err)
		}
		if !strings.Contains(string(out), "--- PASS: TestWeakTokenHostsFile") {
			t.Fatal("the test in the namespace did not pass")
		}
		return
	}
	bin := os.Getenv("MP_HOSTILE_INNER")
	for _, c := range [][]string{
		{"ip", "link", "set", "lo", "up"},
		{"ip", "link", "add", "h0", "type", "veth", "peer", "name", "h1"},
		{"ip", "addr", "add", "10.252.0.1/24", "dev", "h0"},
		{"ip", "link", "set", "h0", "up"},
		{"ip", "link", "set", "h1", "up"},
		{"mount", "--bind", os.Getenv("MP_HOSTILE_HOSTS"), "/etc/hosts"},
	} {
		testenv.Cmd(t, c...)
	}
	if addrs, err := net.LookupHost("localhost"); err != nil || len(addrs) != 1 || addrs[0] != "10.252.0.1" {
		t.Fatalf("localhost resolves to %v (%v), want 10.252.0.1", addrs, err)
	}
	cache := filepath.Join(t.TempDir(), "cache") // poolworker makes it, mode 0700

	t.Run("poolworker -listen localhost", func(t *testing.T) {
		code, stderr := runPoolworker(t, bin, []string{"MP_TOKEN=s3cret"}, "-listen", "localhost:0", "-cache-dir", cache)
		if code != 2 || !strings.Contains(stderr, "10.252.0.1") || !strings.Contains(stderr, "not loopback") {
			t.Fatalf("exit code %d, want 2 and an error naming 10.252.0.1 as not loopback:\n%s", code, stderr)
		}
	})

	// A listener at "localhost" (10.252.0.1) that records what it gets.
	listen := func(t *testing.T, hello bool) (string, chan int) {
		ln, err := net.Listen("tcp", "10.252.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		got := make(chan int, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				got <- -1
				return
			}
			defer c.Close()
			if hello { // play a poolworker: send a hello, wait for a proof
				wire.WorkerHandshake(c, wire.Auth{Token: []byte("s3cret")}, 5*time.Second)
				got <- 0
				return
			}
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			n, _ := io.Copy(io.Discard, c)
			got <- int(n)
		}()
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		return port, got
	}

	t.Run("poolworker -connect localhost", func(t *testing.T) {
		port, got := listen(t, false)
		code, stderr := runPoolworker(t, bin, []string{"MP_TOKEN=s3cret"}, "-connect", "localhost:"+port, "-cache-dir", cache)
		if code != 2 || !strings.Contains(stderr, "not loopback") {
			t.Fatalf("exit code %d, want 2 and a weak token error:\n%s", code, stderr)
		}
		if n := <-got; n != 0 {
			t.Fatalf("the driver's address got %d bytes from a poolworker with a weak token, want none", n)
		}
	})

	t.Run("driver dials localhost", func(t *testing.T) {
		port, got := listen(t, true)
		_, err := cluster.New(cluster.Addresses("localhost:"+port), cluster.Token("s3cret"))
		if !errors.Is(err, pool.ErrConfig) || !strings.Contains(err.Error(), "not loopback") || !strings.Contains(err.Error(), "MP_TOKEN") {
			t.Fatalf("cluster.New = %v, want a configuration error about the weak MP_TOKEN", err)
		}
		<-got // the fake poolworker got no proof: its handshake ended with the connection
	})

	t.Run("strong token works off loopback", func(t *testing.T) {
		n := startNode(t, bin, []string{"MP_TOKEN=" + strongToken}, "-listen", "localhost:0", "-capacity", "2", "-cache-dir", cache)
		p, err := cluster.New(cluster.Addresses(n.addr), cluster.Token(strongToken))
		if err != nil {
			t.Fatal(err)
		}
		closeAtEnd(t, p)
		mustMap(t, p, 1000)
	})
}
