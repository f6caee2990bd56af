// Package transport replays the attacks of issue 11 on the transport with
// real processes over TCP: a relay that runs the protocol on each side
// without the token, a capture of the traffic between a driver and a
// poolworker in another network namespace, wrong and missing tokens, and
// certificates from the wrong CA.
package transport

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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

// secretXyzzyFunction's name must not cross the wire in clear.
func secretXyzzyFunction(x int) int { return 3*x + 1 }

func init() { pool.MustRegister(secretXyzzyFunction) }

const token = "transport-test-token-5b1e0c9d2a7f4e3c"

// node is a poolworker process.
type node struct {
	addr   string
	cmd    *exec.Cmd
	stderr *testenv.Buffer
}

// freeAddr returns a loopback address nobody listens on.
func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startNode starts a poolworker listening on addr (in namespace ns if not
// ""), with extra flags, and waits until it accepts connections.
func startNode(t *testing.T, ns, addr string, extra ...string) *node {
	t.Helper()
	cache := t.TempDir()
	if err := os.Chmod(cache, 0o700); err != nil { // poolworker requires it
		t.Fatal(err)
	}
	args := append([]string{testenv.Poolworker(t), "-listen", addr, "-token", token,
		"-capacity", "2", "-cache-dir", cache}, extra...)
	if ns != "" {
		args = append([]string{"ip", "netns", "exec", ns}, args...)
	}
	n := &node{addr: addr, stderr: &testenv.Buffer{}}
	n.cmd = exec.Command(args[0], args[1:]...)
	n.cmd.Stderr = n.stderr
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { n.cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		n.cmd.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("poolworker on %s did not start: %v\n%s", addr, err, n.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// alive reports whether the node's process is still running.
func (n *node) alive() bool { return n.cmd.Process.Signal(syscall.Signal(0)) == nil }

// run makes a pool on addr with opts, maps secretXyzzyFunction over 1,000
// ints and checks the result.
func run(t *testing.T, addr string, opts ...pool.Option) error {
	t.Helper()
	opts = append([]pool.Option{cluster.Addresses(addr), cluster.ReconnectFor(time.Second)}, opts...)
	p, err := cluster.New(opts...)
	if err != nil {
		return err
	}
	defer func() {
		p.Terminate()
		p.Join(context.Background())
	}()
	in := make([]int, 1000)
	for i := range in {
		in[i] = i
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	got, err := pool.Map(ctx, p, secretXyzzyFunction, in)
	if err != nil {
		return err
	}
	for i, v := range got {
		if v != 3*i+1 {
			t.Fatalf("item %d = %d", i, v)
		}
	}
	return nil
}

// forward accepts connections on a new listener and pipes each to target
// with handle. It returns the listener's address.
func forward(t *testing.T, handle func(client net.Conn)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); handle(c) }()
		}
	}()
	return ln.Addr().String()
}

// TestRelay: a host the driver is pointed at runs the protocol on each
// side (as a worker towards the driver, as a driver towards the real
// poolworker) without the token. The driver fails with ErrAuth, the
// poolworker logs an authentication failure and stays up; a plain TCP
// forwarder in the same place works.
func TestRelay(t *testing.T) {
	n := startNode(t, "", freeAddr(t))
	relayErrs := make(chan error, 16)
	relay := forward(t, func(c net.Conn) {
		defer c.Close()
		up, err := net.Dial("tcp", n.addr)
		if err != nil {
			return
		}
		defer up.Close()
		done := make(chan struct{})
		go func() {
			_, err := wire.DriverHandshake(up, wire.Auth{Token: []byte("relay-has-no-token")}, 5*time.Second)
			relayErrs <- err
			close(done)
		}()
		_, err = wire.WorkerHandshake(c, wire.Auth{Token: []byte("relay-has-no-token")}, 5*time.Second)
		relayErrs <- err
		<-done
	})
	err := run(t, relay, cluster.Token(token))
	if !errors.Is(err, wire.ErrAuth) {
		t.Fatalf("driver through a terminating relay: %v; want wire.ErrAuth", err)
	}
	waitLog(t, n, "handshake failed", "authentication failed")
	if !n.alive() {
		t.Fatal("the poolworker died")
	}

	plain := forward(t, func(c net.Conn) {
		defer c.Close()
		up, err := net.Dial("tcp", n.addr)
		if err != nil {
			return
		}
		defer up.Close()
		go io.Copy(up, c)
		io.Copy(c, up)
	})
	if err := run(t, plain, cluster.Token(token)); err != nil {
		t.Fatalf("through a plain TCP forwarder: %v", err)
	}
}

// waitLog waits until the node's log has a line with all of words.
func waitLog(t *testing.T, n *node, words ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, line := range strings.Split(n.stderr.String(), "\n") {
			ok := true
			for _, w := range words {
				ok = ok && strings.Contains(line, w)
			}
			if ok {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %q:\n%s", words, n.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTokens: a wrong token and no token fail with ErrAuth, clearly, and
// the node serves the right token after.
func TestTokens(t *testing.T) {
	n := startNode(t, "", freeAddr(t))
	for _, tok := range []string{"not-the-token", ""} {
		err := run(t, n.addr, cluster.Token(tok))
		if !errors.Is(err, wire.ErrAuth) || !strings.Contains(err.Error(), "MP_TOKEN") {
			t.Errorf("token %q: %v; want wire.ErrAuth naming MP_TOKEN", tok, err)
		}
	}
	if err := run(t, n.addr, cluster.Token(token)); err != nil {
		t.Fatalf("the right token after wrong ones: %v", err)
	}
}

// pki writes testenv.PKI's CA, certificate and key for name as PEM files
// in dir; it returns the files' paths.
func pki(t *testing.T, dir, name string) (cert, key, ca string) {
	t.Helper()
	certPEM, keyPEM, caPEM := testenv.PKI(t, name)
	write := func(file string, b []byte) string {
		p := filepath.Join(dir, file)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write(name+".crt", certPEM), write(name+".key", keyPEM), write(name+"-ca.crt", caPEM)
}

// TestCertificates: with -tls-* on the node, a driver with a certificate
// from the same CA works; one from another CA, or none, fails with
// ErrAuth saying why, and the node stays up.
func TestCertificates(t *testing.T) {
	dir := t.TempDir()
	cert, key, ca := pki(t, dir, "cluster")
	// A second certificate from the same CA, for the driver.
	n := startNode(t, "", freeAddr(t), "-tls-cert", cert, "-tls-key", key, "-tls-ca", ca)
	if err := run(t, n.addr, cluster.Token(token), cluster.TLS(cert, key, ca)); err != nil {
		t.Fatalf("good certificates: %v", err)
	}
	ocert, okey, oca := pki(t, dir, "other")
	err := run(t, n.addr, cluster.Token(token), cluster.TLS(ocert, okey, ca))
	if !errors.Is(err, wire.ErrAuth) || !strings.Contains(err.Error(), "unknown authority") {
		t.Errorf("driver certificate from another CA: %v; want ErrAuth, unknown authority", err)
	}
	waitLog(t, n, "handshake failed", "unknown authority")
	err = run(t, n.addr, cluster.Token(token), cluster.TLS(cert, key, oca))
	if !errors.Is(err, wire.ErrAuth) || !strings.Contains(err.Error(), "poolworker's certificate") {
		t.Errorf("node certificate from another CA than the driver's: %v; want ErrAuth about the poolworker's certificate", err)
	}
	err = run(t, n.addr, cluster.Token(token))
	if !errors.Is(err, wire.ErrAuth) || !strings.Contains(err.Error(), "requires a certificate") {
		t.Errorf("driver without certificate: %v; want ErrAuth saying one is required", err)
	}
	if !n.alive() {
		t.Fatal("the poolworker died")
	}
	if err := run(t, n.addr, cluster.Token(token), cluster.TLS(cert, key, ca)); err != nil {
		t.Fatalf("good certificates after bad ones: %v", err)
	}
}

// TestCertificatesRenewed: the node's certificate, key and CA files are
// renewed in place (a new CA: cert-manager's renewals keep the CA, but a
// new one is what tells the two apart here). Without a restart, the node
// accepts a driver with the new credentials and refuses one with the old.
func TestCertificatesRenewed(t *testing.T) {
	dir := t.TempDir()
	cert, key, ca := pki(t, dir, "cluster")
	n := startNode(t, "", freeAddr(t), "-tls-cert", cert, "-tls-key", key, "-tls-ca", ca)
	if err := run(t, n.addr, cluster.Token(token), cluster.TLS(cert, key, ca)); err != nil {
		t.Fatalf("before the renewal: %v", err)
	}
	old := t.TempDir()
	for _, f := range []string{cert, key, ca} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(old, filepath.Base(f)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ncert, nkey, nca := pki(t, t.TempDir(), "cluster")
	for from, to := range map[string]string{ncert: cert, nkey: key, nca: ca} {
		if err := os.Rename(from, to); err != nil {
			t.Fatal(err)
		}
	}
	if err := run(t, n.addr, cluster.Token(token), cluster.TLS(cert, key, ca)); err != nil {
		t.Fatalf("after the renewal, with the new credentials: %v\n%s", err, n.stderr)
	}
	err := run(t, n.addr, cluster.Token(token), cluster.TLS(filepath.Join(old, "cluster.crt"), filepath.Join(old, "cluster.key"), filepath.Join(old, "cluster-ca.crt")))
	if !errors.Is(err, wire.ErrAuth) {
		t.Errorf("after the renewal, with the old credentials: %v; want ErrAuth", err)
	}
	if !n.alive() {
		t.Fatal("the poolworker died")
	}
}

// TestCapture records the traffic between a driver and a poolworker in
// another network namespace with tcpdump: it holds neither the function's
// name nor an ELF header (the executable), though the Map ran.
func TestCapture(t *testing.T) {
	testenv.RequireNetns(t, "the capture test")
	if _, err := exec.LookPath("tcpdump"); err != nil {
		t.Skip("the capture test needs tcpdump (.ci/run installs it)")
	}
	tag := strconv.Itoa(os.Getpid() % 100000)
	ns, veth, peer := "mps1-"+tag, "msa"+tag, "msb"+tag
	testenv.Cmd(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	testenv.Cmd(t, "ip", "link", "add", veth, "type", "veth", "peer", "name", peer)
	t.Cleanup(func() { exec.Command("ip", "link", "del", veth).Run() })
	testenv.Cmd(t, "ip", "link", "set", peer, "netns", ns)
	testenv.Cmd(t, "ip", "addr", "add", "10.253.1.1/30", "dev", veth)
	testenv.Cmd(t, "ip", "link", "set", veth, "up")
	testenv.Cmd(t, "ip", "netns", "exec", ns, "ip", "addr", "add", "10.253.1.2/30", "dev", peer)
	testenv.Cmd(t, "ip", "netns", "exec", ns, "ip", "link", "set", peer, "up")
	testenv.Cmd(t, "ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")

	pcap := filepath.Join(t.TempDir(), "veth.pcap")
	dump := exec.Command("tcpdump", "-i", veth, "--immediate-mode", "-U", "-B", "65536", "-s", "0", "-w", pcap, "tcp")
	dumpErr := &testenv.Buffer{}
	dump.Stderr = dumpErr
	if err := dump.Start(); err != nil {
		t.Fatal(err)
	}
	dumped := make(chan struct{})
	go func() { dump.Wait(); close(dumped) }()
	t.Cleanup(func() { dump.Process.Kill(); <-dumped })
	// tcpdump says "listening on" once it captures.
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(dumpErr.String(), "listening on"); {
		if time.Now().After(deadline) {
			t.Fatalf("tcpdump did not start: %s", dumpErr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	n := startNode(t, ns, "10.253.1.2:7450")
	if err := run(t, n.addr, cluster.Token(token)); err != nil {
		t.Fatal(err)
	}
	// Let tcpdump write what it has: until the file stops growing.
	for last := int64(-1); ; {
		time.Sleep(300 * time.Millisecond)
		fi, err := os.Stat(pcap)
		if err == nil && fi.Size() == last {
			break
		}
		if err == nil {
			last = fi.Size()
		}
	}
	dump.Process.Signal(os.Interrupt)
	<-dumped
	b, err := os.ReadFile(pcap)
	if err != nil {
		t.Fatal(err)
	}
	exe, _ := os.Stat(os.Args[0])
	if int64(len(b)) < exe.Size() {
		t.Fatalf("the capture holds %d bytes, less than the executable (%d): it missed the upload\n%s", len(b), exe.Size(), dumpErr.String())
	}
	if !bytes.Contains(b, []byte("MPGO")) {
		t.Fatal("the capture does not hold the handshake's header: it captured nothing of ours")
	}
	for _, secret := range []string{"secretXyzzyFunction", "\x7fELF"} {
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("the capture holds %q in clear", secret)
		}
	}
	t.Logf("captured %d bytes", len(b))
}
