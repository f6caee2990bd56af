package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mpgo/mp/internal/secure"
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
				ds, derr, ws, werr := both(t, d, w, Auth{Token: []byte(tt.driverTok)}, Auth{Token: []byte(tt.workerTok)})
				if tt.wantErr == nil {
					if derr != nil || werr != nil {
						t.Fatalf("driver: %v; worker: %v; want both nil", derr, werr)
					}
					checkUsable(t, ds, ws)
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

type result struct {
	c   net.Conn
	err error
}

// both runs the driver's handshake on d and the worker's on w.
func both(t *testing.T, d, w net.Conn, da, wa Auth) (net.Conn, error, net.Conn, error) {
	t.Helper()
	dc, wc := make(chan result, 1), make(chan result, 1)
	go func() {
		c, err := DriverHandshake(d, da, testTimeout)
		if err != nil {
			d.Close() // as callers do
		}
		dc <- result{c, err}
	}()
	go func() {
		c, err := WorkerHandshake(w, wa, testTimeout)
		if err != nil {
			w.Close()
		}
		wc <- result{c, err}
	}()
	dr, wr := wait(t, "DriverHandshake", dc), wait(t, "WorkerHandshake", wc)
	return dr.c, dr.err, wr.c, wr.err
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

// v1record builds a version-1 handshake record (spec.md of version 1):
// magic, version, status, nonce, and the MAC if mac is not nil.
func v1record(version, status uint16, nonce, mac []byte) []byte {
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

// TestHandshakeRecords checks the records spec.md describes, by hand: the
// hello's size and header, the driver's message header, and the channel
// encrypting what crosses it.
func TestHandshakeRecords(t *testing.T) {
	d, w := tcpPair(t)
	// A tap between them: the test reads what the worker sends.
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	seen := make(chan []byte, 1)
	go func() {
		var all []byte
		buf := make([]byte, 4096)
		for {
			n, err := w.Read(buf)
			all = append(all, buf[:n]...)
			if err != nil {
				break
			}
			if _, err := a.Write(buf[:n]); err != nil {
				break
			}
		}
		seen <- all
	}()
	go io.Copy(w, a)
	ds, derr, ws, werr := both(t, d, b, Auth{Token: []byte("tok")}, Auth{Token: []byte("tok")})
	if derr != nil || werr != nil {
		t.Fatal(derr, werr)
	}
	secret := "the function's name"
	go ds.Write([]byte(secret))
	got := make([]byte, len(secret))
	if _, err := io.ReadFull(ws, got); err != nil || string(got) != secret {
		t.Fatalf("%q %v", got, err)
	}
	d.Close()
	all := wait(t, "tap", seen)
	if len(all) < msgHeaderLen || string(all[:4]) != "MPGO" || binary.BigEndian.Uint16(all[4:]) != 2 || binary.BigEndian.Uint16(all[6:]) != 0 {
		t.Fatalf("driver message header % x", all[:min(len(all), 10)])
	}
	n := int(binary.BigEndian.Uint16(all[8:]))
	if n != 32+16 {
		t.Errorf("message 1 is %d bytes; want e (32) and an empty payload's tag (16)", n)
	}
	rest := all[msgHeaderLen+n:]
	if len(rest) != 2+len(secret)+16 || int(binary.BigEndian.Uint16(rest)) != len(secret)+16 {
		t.Errorf("record % x; want a u16 length and %d bytes", rest, len(secret)+16)
	}
	if bytes.Contains(all, []byte(secret)) {
		t.Error("the plaintext crossed the wire")
	}
}

// TestHandshakeRelay is the attack of issue 11: a host between the driver
// and the worker runs the protocol on each side, as a worker towards the
// driver and as a driver towards the worker, without the token. Both real
// ends fail with ErrAuth; a plain forwarder between them works.
func TestHandshakeRelay(t *testing.T) {
	tok := Auth{Token: []byte("the-real-token-0123456789abcdef")}
	t.Run("terminating relay", func(t *testing.T) {
		d, rd := tcpPair(t) // driver - relay
		rw, w := tcpPair(t) // relay - worker
		relayErrs := make(chan error, 2)
		go func() { // towards the driver, the relay is a worker
			_, err := WorkerHandshake(rd, Auth{Token: []byte("guess")}, testTimeout)
			relayErrs <- err
		}()
		go func() { // towards the worker, a driver
			_, err := DriverHandshake(rw, Auth{Token: []byte("guess")}, testTimeout)
			relayErrs <- err
		}()
		dc := make(chan result, 1)
		go func() { c, err := DriverHandshake(d, tok, testTimeout); dc <- result{c, err} }()
		_, werr := WorkerHandshake(w, tok, testTimeout)
		dr := wait(t, "driver", dc)
		if !errors.Is(dr.err, ErrAuth) || !errors.Is(werr, ErrAuth) {
			t.Fatalf("driver: %v; worker: %v; want ErrAuth on both", dr.err, werr)
		}
		<-relayErrs
		<-relayErrs
	})
	t.Run("relay passing the handshake through", func(t *testing.T) {
		// It forwards the handshake byte for byte, then tries to write
		// its own record (a Setup) to the worker.
		d, rd := tcpPair(t)
		rw, w := tcpPair(t)
		wc := make(chan result, 1)
		go func() { c, err := WorkerHandshake(w, tok, testTimeout); wc <- result{c, err} }()
		hello := make([]byte, helloLen)
		io.ReadFull(rw, hello)
		rd.Write(hello)
		dc := make(chan result, 1)
		go func() { c, err := DriverHandshake(d, tok, testTimeout); dc <- result{c, err} }()
		m1 := make([]byte, msgHeaderLen+48)
		io.ReadFull(rd, m1)
		rw.Write(m1)
		m2 := make([]byte, msgHeaderLen+48)
		io.ReadFull(rw, m2)
		rd.Write(m2)
		dr, wr := wait(t, "driver", dc), wait(t, "worker", wc)
		if dr.err != nil || wr.err != nil {
			t.Fatal(dr.err, wr.err)
		}
		d.Close() // the relay drops the driver
		// ... and sends a record of its own making.
		rec := []byte{0, 20}
		rec = append(rec, make([]byte, 20)...)
		rw.Write(rec)
		_, _, err := NewUnbufferedCodec(wr.c, 0).Recv()
		if !errors.Is(err, secure.ErrRecord) {
			t.Fatalf("worker read a forged record: %v; want secure.ErrRecord", err)
		}
	})
	t.Run("plain forwarder", func(t *testing.T) {
		d, rd := tcpPair(t)
		rw, w := tcpPair(t)
		go io.Copy(rd, rw)
		go io.Copy(rw, rd)
		ds, derr, ws, werr := both(t, d, w, tok, tok)
		if derr != nil || werr != nil {
			t.Fatal(derr, werr)
		}
		checkUsable(t, ds, ws)
	})
}

// TestHandshakeTamper flips each byte crossing in turn, in each direction:
// the handshake or the first record must fail; it never succeeds with
// changed bytes.
func TestHandshakeTamper(t *testing.T) {
	tok := Auth{Token: []byte("tok")}
	// A changed length leaves both sides waiting for bytes that never
	// come, until their deadline: keep it short.
	const timeout = 300 * time.Millisecond
	record := 2 + 16 + 5 // "hello" in a record
	dirs := []struct {
		name  string
		bytes int
	}{
		{"driver to worker", msgHeaderLen + 48 + record},            // message 1, a record
		{"worker to driver", helloLen + msgHeaderLen + 48 + record}, // hello, message 2, a record
	}
	for _, dir := range dirs {
		for i := 0; i < dir.bytes; i++ {
			t.Run(fmt.Sprint(dir.name, "/", i), func(t *testing.T) {
				d, dd := net.Pipe() // the driver's end, and the tap's
				ww, w := net.Pipe() // the tap's, and the worker's
				t.Cleanup(func() { d.Close(); dd.Close(); ww.Close(); w.Close() })
				flip := func(dst, src net.Conn) {
					defer dst.Close()
					buf := make([]byte, 1)
					for pos := 0; ; pos++ {
						if _, err := src.Read(buf); err != nil {
							return
						}
						if pos == i {
							buf[0] ^= 0x40
						}
						if _, err := dst.Write(buf); err != nil {
							return
						}
					}
				}
				pass := func(dst, src net.Conn) { io.Copy(dst, src); dst.Close() }
				if dir.name == "driver to worker" {
					go flip(ww, dd)
					go pass(dd, ww)
				} else {
					go flip(dd, ww)
					go pass(ww, dd)
				}
				wc := make(chan result, 1)
				go func() {
					c, err := WorkerHandshake(w, tok, timeout)
					if err != nil {
						w.Close()
					}
					wc <- result{c, err}
				}()
				ds, derr := DriverHandshake(d, tok, timeout)
				if derr != nil {
					d.Close()
				}
				wr := wait(t, "worker", wc)
				if derr != nil || wr.err != nil {
					return // caught in the handshake
				}
				var from, to net.Conn = ds, wr.c
				if dir.name == "worker to driver" {
					from, to = wr.c, ds
				}
				go from.Write([]byte("hello"))
				// A changed length may leave the reader waiting for
				// bytes that never come: that too is a failure to read.
				to.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
				got := make([]byte, 5)
				if _, err := io.ReadFull(to, got); err == nil {
					t.Fatalf("byte %d changed and the peer read %q", i, got)
				}
			})
		}
	}
}

// TestHandshakeVersionMismatch: a version-1 peer gets, and gives, the
// version error naming both versions, at once rather than after a timeout.
func TestHandshakeVersionMismatch(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name+"/v1 worker", func(t *testing.T) {
			d, w := tr.pair(t)
			errc := goErr(func() error { _, err := DriverHandshake(d, Auth{Token: []byte("tok")}, testTimeout); return err })
			w.SetDeadline(time.Now().Add(testTimeout))
			// A version-1 worker sends its 40-byte hello, and reads 72.
			if _, err := w.Write(v1record(1, 0, bytes.Repeat([]byte{9}, 32), nil)); err != nil {
				t.Fatal(err)
			}
			rec := make([]byte, 72)
			if _, err := io.ReadFull(w, rec); err != nil {
				t.Fatalf("reading the driver's version record: %v", err)
			}
			if !bytes.Equal(rec[:8], v1record(Version, statusVersion, nil, nil)[:8]) {
				t.Errorf("version record header % x", rec[:8])
			}
			checkVersionErr(t, "driver", wait(t, "DriverHandshake", errc))
		})
		t.Run(tr.name+"/v1 driver", func(t *testing.T) {
			d, w := tr.pair(t)
			errc := goErr(func() error { _, err := WorkerHandshake(w, Auth{Token: []byte("tok")}, testTimeout); return err })
			d.SetDeadline(time.Now().Add(testTimeout))
			// A version-1 driver reads 40 bytes, finds version 2, and
			// answers with its 72-byte version record.
			hello := make([]byte, 40)
			if _, err := io.ReadFull(d, hello); err != nil {
				t.Fatal(err)
			}
			if binary.BigEndian.Uint16(hello[4:]) != 2 {
				t.Fatalf("hello % x", hello)
			}
			go d.Write(v1record(1, statusVersion, nil, make([]byte, 32))) // the worker reads only its header
			checkVersionErr(t, "worker", wait(t, "WorkerHandshake", errc))
		})
	}
}

func checkVersionErr(t *testing.T, side string, err error) {
	t.Helper()
	if !errors.Is(err, ErrVersion) {
		t.Fatalf("%s: %v; want ErrVersion", side, err)
	}
	if msg := err.Error(); !strings.Contains(msg, "version 1") || !strings.Contains(msg, "program 2") {
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
				errc := goErr(func() error { _, err := DriverHandshake(d, Auth{}, testTimeout); return err })
				go w.Write(g.b)
				if err := wait(t, "DriverHandshake", errc); !errors.Is(err, ErrNotMP) {
					t.Fatalf("driver: %v; want ErrNotMP", err)
				}
			})
			t.Run(tr.name+"/worker/"+g.name, func(t *testing.T) {
				d, w := tr.pair(t)
				errc := goErr(func() error { _, err := WorkerHandshake(w, Auth{}, testTimeout); return err })
				go io.Copy(io.Discard, d)
				go d.Write(g.b)
				if err := wait(t, "WorkerHandshake", errc); !errors.Is(err, ErrNotMP) {
					t.Fatalf("worker: %v; want ErrNotMP", err)
				}
			})
		}
	}
}

// TestHandshakePeerCloses closes the peer at every point of the handshake:
// each side must return an error promptly, well before its timeout.
func TestHandshakePeerCloses(t *testing.T) {
	const long = 30 * time.Second // the handshake's own timeout; must not be reached
	hello := make([]byte, helloLen)
	putHeader(hello, statusOK)
	driverPeers := []struct {
		name string
		peer func(w net.Conn)
		want error // nil: any error
	}{
		{"at once", func(w net.Conn) {}, nil},
		{"mid hello", func(w net.Conn) { w.Write(hello[:13]) }, nil},
		{"after hello", func(w net.Conn) {
			w.Write(hello)
			io.ReadFull(w, make([]byte, msgHeaderLen+48))
		}, ErrAuth}, // the worker hung up on the driver's message
		{"mid message 2", func(w net.Conn) {
			w.Write(hello)
			io.ReadFull(w, make([]byte, msgHeaderLen+48))
			w.Write(message(statusOK, make([]byte, 48))[:30])
		}, ErrAuth},
	}
	workerPeers := []struct {
		name string
		peer func(d net.Conn)
	}{
		{"at once", func(d net.Conn) {}},
		{"after hello", func(d net.Conn) { io.ReadFull(d, make([]byte, helloLen)) }},
		{"mid message 1", func(d net.Conn) {
			io.ReadFull(d, make([]byte, helloLen))
			d.Write(message(statusOK, make([]byte, 48))[:40])
		}},
	}
	for _, tr := range transports {
		for _, p := range driverPeers {
			t.Run(tr.name+"/driver/"+p.name, func(t *testing.T) {
				d, w := tr.pair(t)
				errc := goErr(func() error { _, err := DriverHandshake(d, Auth{Token: []byte("tok")}, long); return err })
				w.SetDeadline(time.Now().Add(testTimeout))
				p.peer(w)
				w.Close()
				err := wait(t, "DriverHandshake", errc)
				if err == nil || (p.want != nil && !errors.Is(err, p.want)) {
					t.Fatalf("driver: %v; want an error (%v)", err, p.want)
				}
			})
		}
		for _, p := range workerPeers {
			t.Run(tr.name+"/worker/"+p.name, func(t *testing.T) {
				d, w := tr.pair(t)
				errc := goErr(func() error { _, err := WorkerHandshake(w, Auth{Token: []byte("tok")}, long); return err })
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
		{"driver", func(d, w net.Conn) error { _, err := DriverHandshake(d, Auth{}, short); return err }},
		{"worker", func(d, w net.Conn) error {
			go io.Copy(io.Discard, d) // take the hello, then say nothing
			_, err := WorkerHandshake(w, Auth{}, short)
			return err
		}},
	}
	for _, tr := range transports {
		for _, s := range sides {
			t.Run(tr.name+"/"+s.name, func(t *testing.T) {
				d, w := tr.pair(t)
				err := wait(t, "handshake", goErr(func() error { return s.run(d, w) }))
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("%v; want a timeout", err)
				}
			})
		}
	}
}
