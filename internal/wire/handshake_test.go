package wire

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// testTimeout bounds every handshake in these tests; waitTimeout bounds how
// long a test waits for one to return.
const (
	testTimeout = 2 * time.Second
	waitTimeout = 5 * time.Second
)

// transports are the two kinds of connection the handshake is tested on.
var transports = []struct {
	name string
	pair func(t *testing.T) (driver, worker net.Conn)
}{
	{"pipe", pipePair},
	{"tcp", tcpPair},
	{"tcp-driver-dials", func(t *testing.T) (net.Conn, net.Conn) {
		w, d := tcpPair(t) // as with a poolworker
		return d, w
	}},
}

func pipePair(t *testing.T) (net.Conn, net.Conn) {
	d, w := net.Pipe()
	t.Cleanup(func() { d.Close(); w.Close() })
	return d, w
}

// tcpPair connects two ends over TCP loopback: the second dials the first,
// as an embedded worker process dials its driver.
func tcpPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type accepted struct {
		c   net.Conn
		err error
	}
	ch := make(chan accepted, 1)
	go func() {
		c, err := ln.Accept()
		ch <- accepted{c, err}
	}()
	w, err := net.DialTimeout("tcp", ln.Addr().String(), waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	a := <-ch
	if a.err != nil {
		w.Close()
		t.Fatal(a.err)
	}
	t.Cleanup(func() { a.c.Close(); w.Close() })
	return a.c, w
}

// wait returns what ch delivers, failing the test if it takes too long.
func wait[T any](t *testing.T, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitTimeout):
		t.Fatalf("%s did not return within %v", what, waitTimeout)
		panic("unreachable")
	}
}

// goErr runs f in a goroutine and returns a channel of its error.
func goErr(f func() error) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- f() }()
	return ch
}

func TestHandshake(t *testing.T) {
	tests := []struct {
		name                 string
		driverTok, workerTok string
		wantErr              error // for both ends; nil: success
	}{
		{"same token", "s3cret-token", "s3cret-token", nil},
		{"hex token", strings.Repeat("ab", 32), strings.Repeat("ab", 32), nil},
		{"empty token both sides", "", "", nil},
		{"wrong token", "s3cret-token", "s3cret-tokeN", ErrAuth},
		{"driver token empty", "", "s3cret-token", ErrAuth},
		{"worker token empty", "s3cret-token", "", ErrAuth},
		{"token is a prefix", "s3cret", "s3cret-token", ErrAuth},
	}
	for _, tr := range transports {
		for _, tt := range tests {
			t.Run(tr.name+"/"+tt.name, func(t *testing.T) {
				d, w := tr.pair(t)
				derrc := goErr(func() error { return DriverHandshake(d, []byte(tt.driverTok), testTimeout) })
				werrc := goErr(func() error { return WorkerHandshake(w, []byte(tt.workerTok), testTimeout) })
				derr := wait(t, "DriverHandshake", derrc)
				werr := wait(t, "WorkerHandshake", werrc)
				if tt.wantErr == nil {
					if derr != nil || werr != nil {
						t.Fatalf("driver: %v; worker: %v; want both nil", derr, werr)
					}
					checkUsable(t, d, w)
					return
				}
				if !errors.Is(derr, tt.wantErr) {
					t.Errorf("driver: %v; want %v", derr, tt.wantErr)
				}
				if !errors.Is(werr, tt.wantErr) {
					t.Errorf("worker: %v; want %v", werr, tt.wantErr)
				}
			})
		}
	}
}

// checkUsable checks that after a handshake both ends are left in step,
// without deadlines: a frame goes each way.
func checkUsable(t *testing.T, d, w net.Conn) {
	t.Helper()
	dc, wc := NewUnbufferedCodec(d, 0), NewUnbufferedCodec(w, 0)
	time.Sleep(10 * time.Millisecond) // a deadline left behind would show
	errc := goErr(func() error { return wc.Send(KindReady, Ready{PID: 7, Capacity: 1}) })
	k, body, err := dc.Recv()
	if err != nil || k != KindReady {
		t.Fatalf("driver Recv after handshake: %v %v", k, err)
	}
	var r Ready
	if err := dc.Decode(body, &r); err != nil || r.PID != 7 {
		t.Fatalf("Ready after handshake: %+v %v", r, err)
	}
	if err := wait(t, "Send", errc); err != nil {
		t.Fatal(err)
	}
	errc = goErr(func() error { return dc.Send(KindConfig, Config{MaxTasks: 3}) })
	if k, _, err := wc.Recv(); err != nil || k != KindConfig {
		t.Fatalf("worker Recv after handshake: %v %v", k, err)
	}
	if err := wait(t, "Send", errc); err != nil {
		t.Fatal(err)
	}
}

// record builds a handshake record by the letter of spec.md, independently
// of putHeader: magic, version, status, nonce, and the MAC if mac is not nil.
func record(version, status uint16, nonce, mac []byte) []byte {
	b := []byte("MPGO")
	b = binary.BigEndian.AppendUint16(b, version)
	b = binary.BigEndian.AppendUint16(b, status)
	n := make([]byte, 32)
	copy(n, nonce)
	b = append(b, n...)
	if mac != nil {
		m := make([]byte, 32)
		copy(m, mac)
		b = append(b, m...)
	}
	return b
}

func specMAC(token []byte, label string, a, b []byte) []byte {
	h := hmac.New(sha256.New, token)
	h.Write([]byte(label))
	h.Write(a)
	h.Write(b)
	return h.Sum(nil)
}

// TestHandshakeSpec plays each side by hand, as spec.md describes it, against
// the real other side: record sizes, field order, labels and nonce order.
func TestHandshakeSpec(t *testing.T) {
	token := []byte("spec-token")
	t.Run("driver", func(t *testing.T) {
		d, w := net.Pipe()
		defer d.Close()
		defer w.Close()
		errc := goErr(func() error { return DriverHandshake(d, token, testTimeout) })
		w.SetDeadline(time.Now().Add(testTimeout))
		nonceW := bytes.Repeat([]byte{0x57}, 32)
		if _, err := w.Write(record(1, 0, nonceW, nil)); err != nil {
			t.Fatal(err)
		}
		proof := make([]byte, 72)
		if _, err := io.ReadFull(w, proof); err != nil {
			t.Fatal(err)
		}
		if string(proof[:4]) != "MPGO" || binary.BigEndian.Uint16(proof[4:]) != 1 || binary.BigEndian.Uint16(proof[6:]) != 0 {
			t.Fatalf("driver proof header % x", proof[:8])
		}
		nonceD := proof[8:40]
		if !hmac.Equal(proof[40:], specMAC(token, "mp driver proof", nonceW, nonceD)) {
			t.Fatal("driver proof is not HMAC(token, \"mp driver proof\" || nonceW || nonceD)")
		}
		if _, err := w.Write(record(1, 0, nil, specMAC(token, "mp worker proof", nonceD, nonceW))); err != nil {
			t.Fatal(err)
		}
		if err := wait(t, "DriverHandshake", errc); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("worker", func(t *testing.T) {
		d, w := net.Pipe()
		defer d.Close()
		defer w.Close()
		errc := goErr(func() error { return WorkerHandshake(w, token, testTimeout) })
		d.SetDeadline(time.Now().Add(testTimeout))
		hello := make([]byte, 40)
		if _, err := io.ReadFull(d, hello); err != nil {
			t.Fatal(err)
		}
		if string(hello[:4]) != "MPGO" || binary.BigEndian.Uint16(hello[4:]) != 1 || binary.BigEndian.Uint16(hello[6:]) != 0 {
			t.Fatalf("worker hello header % x", hello[:8])
		}
		nonceW := hello[8:40]
		nonceD := bytes.Repeat([]byte{0x44}, 32)
		if _, err := d.Write(record(1, 0, nonceD, specMAC(token, "mp driver proof", nonceW, nonceD))); err != nil {
			t.Fatal(err)
		}
		reply := make([]byte, 72)
		if _, err := io.ReadFull(d, reply); err != nil {
			t.Fatal(err)
		}
		if want := record(1, 0, nil, specMAC(token, "mp worker proof", nonceD, nonceW)); !bytes.Equal(reply, want) {
			t.Fatalf("worker proof\n got % x\nwant % x", reply, want)
		}
		if err := wait(t, "WorkerHandshake", errc); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("worker rejects", func(t *testing.T) {
		d, w := net.Pipe()
		defer d.Close()
		defer w.Close()
		errc := goErr(func() error { return WorkerHandshake(w, token, testTimeout) })
		d.SetDeadline(time.Now().Add(testTimeout))
		hello := make([]byte, 40)
		if _, err := io.ReadFull(d, hello); err != nil {
			t.Fatal(err)
		}
		nonceD := bytes.Repeat([]byte{0x44}, 32)
		// A proof with the nonces in the wrong order must not pass.
		if _, err := d.Write(record(1, 0, nonceD, specMAC(token, "mp driver proof", nonceD, hello[8:40]))); err != nil {
			t.Fatal(err)
		}
		reply := make([]byte, 72)
		if _, err := io.ReadFull(d, reply); err != nil {
			t.Fatal(err)
		}
		if want := record(1, 1, nil, nil); !bytes.Equal(reply[:40], want) || !bytes.Equal(reply[40:], make([]byte, 32)) {
			t.Fatalf("rejection record % x", reply)
		}
		if err := wait(t, "WorkerHandshake", errc); !errors.Is(err, ErrAuth) {
			t.Fatalf("worker: %v; want ErrAuth", err)
		}
	})
}

// TestHandshakeReflection checks that one side's proof cannot be replayed as
// the other's: a man in the middle relaying a driver's proof back to it as a
// worker's proof fails.
func TestHandshakeReflection(t *testing.T) {
	token := []byte("reflect")
	d, w := net.Pipe()
	defer d.Close()
	defer w.Close()
	errc := goErr(func() error { return DriverHandshake(d, token, testTimeout) })
	w.SetDeadline(time.Now().Add(testTimeout))
	nonceW := bytes.Repeat([]byte{1}, 32)
	w.Write(record(1, 0, nonceW, nil))
	proof := make([]byte, 72)
	if _, err := io.ReadFull(w, proof); err != nil {
		t.Fatal(err)
	}
	w.Write(proof) // echo the driver's own proof
	if err := wait(t, "DriverHandshake", errc); !errors.Is(err, ErrAuth) {
		t.Fatalf("driver accepted its own proof reflected: %v", err)
	}
}

func TestHandshakeVersionMismatch(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name+"/driver", func(t *testing.T) {
			d, w := tr.pair(t)
			errc := goErr(func() error { return DriverHandshake(d, []byte("tok"), testTimeout) })
			w.SetDeadline(time.Now().Add(testTimeout))
			if _, err := w.Write(record(2, 0, bytes.Repeat([]byte{9}, 32), nil)); err != nil {
				t.Fatal(err)
			}
			// The driver answers with a version record so that the worker
			// can tell the user why.
			rec := make([]byte, 72)
			if _, err := io.ReadFull(w, rec); err != nil {
				t.Fatalf("reading the driver's version record: %v", err)
			}
			if !bytes.Equal(rec[:8], record(Version, statusVersion, nil, nil)[:8]) {
				t.Errorf("version record header % x", rec[:8])
			}
			checkVersionErr(t, "driver", wait(t, "DriverHandshake", errc))
		})
		t.Run(tr.name+"/worker", func(t *testing.T) {
			d, w := tr.pair(t)
			errc := goErr(func() error { return WorkerHandshake(w, []byte("tok"), testTimeout) })
			d.SetDeadline(time.Now().Add(testTimeout))
			hello := make([]byte, 40)
			if _, err := io.ReadFull(d, hello); err != nil {
				t.Fatal(err)
			}
			if _, err := d.Write(record(2, 0, bytes.Repeat([]byte{9}, 32), make([]byte, 32))); err != nil {
				t.Fatal(err)
			}
			rec := make([]byte, 72)
			if _, err := io.ReadFull(d, rec); err != nil {
				t.Fatalf("reading the worker's version record: %v", err)
			}
			if !bytes.Equal(rec[:8], record(Version, statusVersion, nil, nil)[:8]) {
				t.Errorf("version record header % x", rec[:8])
			}
			checkVersionErr(t, "worker", wait(t, "WorkerHandshake", errc))
		})
	}
	// A peer of the same version that reports a version refusal.
	t.Run("driver/status", func(t *testing.T) {
		d, w := net.Pipe()
		defer d.Close()
		defer w.Close()
		errc := goErr(func() error { return DriverHandshake(d, []byte("tok"), testTimeout) })
		w.SetDeadline(time.Now().Add(testTimeout))
		w.Write(record(1, 0, nil, nil))
		io.ReadFull(w, make([]byte, 72))
		w.Write(record(1, statusVersion, nil, make([]byte, 32)))
		if err := wait(t, "DriverHandshake", errc); !errors.Is(err, ErrVersion) {
			t.Fatalf("driver: %v; want ErrVersion", err)
		}
	})
}

func checkVersionErr(t *testing.T, side string, err error) {
	t.Helper()
	if !errors.Is(err, ErrVersion) {
		t.Fatalf("%s: %v; want ErrVersion", side, err)
	}
	if msg := err.Error(); !strings.Contains(msg, "version 2") || !strings.Contains(msg, "program 1") {
		t.Errorf("%s: %q does not name both versions", side, msg)
	}
}

// TestHandshakeNotMP feeds each side bytes of another protocol.
func TestHandshakeNotMP(t *testing.T) {
	garbage := []struct {
		name string
		b    []byte
	}{
		{"http", []byte("GET / HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8.0\r\nAccept: */*\r\n\r\n")},
		{"zeros", make([]byte, 80)},
		{"ssh", []byte("SSH-2.0-OpenSSH_9.6\r\n" + strings.Repeat("\x00", 60))},
		{"lowercase magic", append([]byte("mpgo"), make([]byte, 76)...)},
	}
	for _, tr := range transports {
		for _, g := range garbage {
			t.Run(tr.name+"/driver/"+g.name, func(t *testing.T) {
				d, w := tr.pair(t)
				errc := goErr(func() error { return DriverHandshake(d, nil, testTimeout) })
				go w.Write(g.b)
				err := wait(t, "DriverHandshake", errc)
				if !errors.Is(err, ErrNotMP) {
					t.Fatalf("driver: %v; want ErrNotMP", err)
				}
			})
			t.Run(tr.name+"/worker/"+g.name, func(t *testing.T) {
				d, w := tr.pair(t)
				errc := goErr(func() error { return WorkerHandshake(w, nil, testTimeout) })
				go io.Copy(io.Discard, d)
				go d.Write(g.b)
				err := wait(t, "WorkerHandshake", errc)
				if !errors.Is(err, ErrNotMP) {
					t.Fatalf("worker: %v; want ErrNotMP", err)
				}
			})
		}
		// A valid hello followed by a reply of another protocol, and one
		// with an unknown status.
		for _, reply := range [][]byte{bytes.Repeat([]byte("x"), 72), record(1, 77, nil, make([]byte, 32))} {
			t.Run(tr.name+"/driver/reply", func(t *testing.T) {
				d, w := tr.pair(t)
				errc := goErr(func() error { return DriverHandshake(d, nil, testTimeout) })
				w.SetDeadline(time.Now().Add(testTimeout))
				w.Write(record(1, 0, nil, nil))
				io.ReadFull(w, make([]byte, 72))
				w.Write(reply)
				if err := wait(t, "DriverHandshake", errc); !errors.Is(err, ErrNotMP) {
					t.Fatalf("driver: %v; want ErrNotMP", err)
				}
			})
		}
	}
}

// TestHandshakePeerCloses closes the peer at every point of the handshake:
// each side must return an error promptly, well before its timeout.
func TestHandshakePeerCloses(t *testing.T) {
	const long = 30 * time.Second // the handshake's own timeout; must not be reached
	validHello := record(1, 0, bytes.Repeat([]byte{3}, 32), nil)
	driverPeers := []struct {
		name string
		peer func(w net.Conn)
		want error // nil: any error
	}{
		{"at once", func(w net.Conn) {}, nil},
		{"mid hello", func(w net.Conn) { w.Write(validHello[:13]) }, nil},
		{"after hello", func(w net.Conn) {
			w.Write(validHello)
			io.ReadFull(w, make([]byte, 72))
		}, ErrAuth}, // the worker hung up on the driver's proof
		{"mid proof", func(w net.Conn) {
			w.Write(validHello)
			io.ReadFull(w, make([]byte, 72))
			w.Write(record(1, 0, nil, make([]byte, 32))[:50])
		}, ErrAuth},
	}
	workerPeers := []struct {
		name string
		peer func(d net.Conn)
	}{
		{"at once", func(d net.Conn) {}},
		{"after hello", func(d net.Conn) { io.ReadFull(d, make([]byte, 40)) }},
		{"mid proof", func(d net.Conn) {
			io.ReadFull(d, make([]byte, 40))
			d.Write(record(1, 0, nil, make([]byte, 32))[:71])
		}},
	}
	for _, tr := range transports {
		for _, p := range driverPeers {
			t.Run(tr.name+"/driver/"+p.name, func(t *testing.T) {
				d, w := tr.pair(t)
				start := time.Now()
				errc := goErr(func() error { return DriverHandshake(d, []byte("tok"), long) })
				w.SetDeadline(time.Now().Add(testTimeout))
				p.peer(w)
				w.Close()
				err := wait(t, "DriverHandshake", errc)
				if err == nil || (p.want != nil && !errors.Is(err, p.want)) {
					t.Fatalf("driver: %v; want an error (%v)", err, p.want)
				}
				if el := time.Since(start); el > waitTimeout {
					t.Fatalf("took %v", el)
				}
			})
		}
		for _, p := range workerPeers {
			t.Run(tr.name+"/worker/"+p.name, func(t *testing.T) {
				d, w := tr.pair(t)
				errc := goErr(func() error { return WorkerHandshake(w, []byte("tok"), long) })
				d.SetDeadline(time.Now().Add(testTimeout))
				p.peer(d)
				d.Close()
				if err := wait(t, "WorkerHandshake", errc); err == nil {
					t.Fatal("worker: nil error")
				}
			})
		}
	}
}

// TestHandshakeTimeout: a silent peer makes each side fail after its
// timeout, with a timeout error.
func TestHandshakeTimeout(t *testing.T) {
	const short = 100 * time.Millisecond
	sides := []struct {
		name string
		run  func(d, w net.Conn) error
	}{
		{"driver", func(d, w net.Conn) error { return DriverHandshake(d, nil, short) }},
		{"worker", func(d, w net.Conn) error {
			go io.Copy(io.Discard, d) // take the hello, then say nothing
			return WorkerHandshake(w, nil, short)
		}},
	}
	for _, tr := range transports {
		for _, s := range sides {
			t.Run(tr.name+"/"+s.name, func(t *testing.T) {
				d, w := tr.pair(t)
				start := time.Now()
				err := wait(t, "handshake", goErr(func() error { return s.run(d, w) }))
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("%v; want a timeout", err)
				}
				if el := time.Since(start); el < short || el > waitTimeout {
					t.Fatalf("returned after %v; timeout %v", el, short)
				}
			})
		}
	}
}
