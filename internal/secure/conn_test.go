package secure_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"testing"

	"github.com/mpgo/mp/internal/secure"
)

// pair returns two Conns over a TCP loopback connection, keyed as the two
// ends of one channel.
func pair(t testing.TB) (a, b *secure.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		ch <- c
	}()
	ca, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	cb := <-ch
	if cb == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { ca.Close(); cb.Close() })
	var k1, k2 secure.Keys
	rand.Read(k1.Key[:])
	rand.Read(k2.Key[:])
	return secure.NewConn(ca, k1, k2), secure.NewConn(cb, k2, k1)
}

// TestConnRoundTrip sends writes of sizes around the record limit both ways
// and gets them back whole, in order.
func TestConnRoundTrip(t *testing.T) {
	a, b := pair(t)
	sizes := []int{1, 100, secure.MaxRecordPlain - 1, secure.MaxRecordPlain, secure.MaxRecordPlain + 1, 3*secure.MaxRecordPlain + 7, 1 << 20}
	var want bytes.Buffer
	errc := make(chan error, 1)
	go func() {
		for _, n := range sizes {
			p := make([]byte, n)
			rand.Read(p)
			want.Write(p)
			if _, err := a.Write(p); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	total := 0
	for _, n := range sizes {
		total += n
	}
	got := make([]byte, total)
	if _, err := io.ReadFull(b, got); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatal("bytes differ")
	}
}

// TestConnHandover: a Conn's state taken between records goes on in a new
// Conn on the same connection, as a poolworker hands it to a worker
// process; taken with a record half read, it is refused.
func TestConnHandover(t *testing.T) {
	a, b := pair(t)
	go a.Write([]byte("setup"))
	buf := make([]byte, 5)
	if _, err := io.ReadFull(b, buf); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Write([]byte("reply")); err != nil {
		t.Fatal(err)
	}
	io.ReadFull(a, buf)
	send, recv, err := b.State()
	if err != nil {
		t.Fatal(err)
	}
	enc := secure.AppendState(nil, send, recv)
	if len(enc) != secure.StateLen {
		t.Fatalf("state is %d bytes", len(enc))
	}
	s2, r2, err := secure.ParseState(enc)
	if err != nil || s2 != send || r2 != recv {
		t.Fatalf("state does not round-trip: %v", err)
	}
	if send.Nonce != 1 || recv.Nonce != 1 {
		t.Fatalf("nonces %d, %d; want 1, 1", send.Nonce, recv.Nonce)
	}
	child := secure.NewConn(b.NetConn(), s2, r2)
	go a.Write([]byte("ready!"))
	buf = make([]byte, 6)
	if _, err := io.ReadFull(child, buf); err != nil || string(buf) != "ready!" {
		t.Fatalf("%q %v", buf, err)
	}
	go child.Write([]byte("config"))
	if _, err := io.ReadFull(a, buf); err != nil || string(buf) != "config" {
		t.Fatalf("%q %v", buf, err)
	}

	go a.Write([]byte("two records' worth? no: one, half read"))
	io.ReadFull(child, buf)
	if _, _, err := child.State(); err == nil {
		t.Fatal("State with a record half read: no error")
	}
}

// TestConnRejects: a record changed on the way, replayed, or too short
// fails with ErrRecord, and so does every read after it.
func TestConnRejects(t *testing.T) {
	a, b := pair(t)
	// Capture one record as a sends it.
	raw := b.NetConn()
	go a.Write([]byte("x"))
	rec := make([]byte, 2+1+secure.TagLen)
	if _, err := io.ReadFull(raw, rec); err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"flipped":   append([]byte{}, rec[:5]...),
		"too short": {0, 3, 1, 2, 3},
	}
	cases["flipped"] = append(append([]byte{}, rec...), 0)[:len(rec)]
	cases["flipped"][4] ^= 1
	for name, bad := range cases {
		t.Run(name, func(t *testing.T) {
			a, b := pair(t)
			go a.NetConn().Write(bad)
			if _, err := b.Read(make([]byte, 10)); !errors.Is(err, secure.ErrRecord) {
				t.Fatalf("%v; want ErrRecord", err)
			}
			if _, err := b.Read(make([]byte, 10)); !errors.Is(err, secure.ErrRecord) {
				t.Fatalf("second read: %v; want ErrRecord again", err)
			}
		})
	}
	t.Run("replayed", func(t *testing.T) {
		a, b := pair(t)
		go a.Write([]byte("y"))
		one := make([]byte, 1)
		if _, err := io.ReadFull(b, one); err != nil {
			t.Fatal(err)
		}
		// Take a's second record (nonce 1) off the wire, then deliver it
		// twice: the copy must fail.
		raw := make([]byte, 2+1+secure.TagLen)
		go a.Write([]byte("z"))
		if _, err := io.ReadFull(b.NetConn(), raw); err != nil {
			t.Fatal(err)
		}
		go a.NetConn().Write(append(append([]byte{}, raw...), raw...))
		if _, err := io.ReadFull(b, one); err != nil || one[0] != 'z' {
			t.Fatalf("%q %v", one, err)
		}
		if _, err := b.Read(one); !errors.Is(err, secure.ErrRecord) {
			t.Fatalf("replayed record: %v; want ErrRecord", err)
		}
	})
}

// TestConnSteadyStateAllocs: once its buffers exist, a Conn allocates
// nothing per write or read.
func TestConnSteadyStateAllocs(t *testing.T) {
	a, b := pair(t)
	p := make([]byte, 32<<10)
	q := make([]byte, len(p))
	round := func() {
		done := make(chan struct{})
		go func() { io.ReadFull(b, q); close(done) }()
		a.Write(p)
		<-done
	}
	round()
	b.ReadAhead()
	round()
	// The goroutine and channel of round are the test's own: 2 or 3.
	if n := testing.AllocsPerRun(50, round); n > 4 {
		t.Fatalf("%v allocations per round trip of 32 KiB", n)
	}
}

// BenchmarkConn measures the channel's throughput over TCP loopback, one
// way, 64 KiB writes, against the plain connection.
func BenchmarkConn(b *testing.B) {
	for _, mode := range []string{"plain", "sealed"} {
		b.Run(mode, func(b *testing.B) {
			x, y := pair(b)
			var w io.Writer = x
			var r io.Reader = y
			if mode == "plain" {
				w, r = x.NetConn(), y.NetConn()
			} else {
				y.ReadAhead()
			}
			p := make([]byte, 64<<10)
			b.SetBytes(int64(len(p)))
			done := make(chan struct{})
			go func() {
				io.Copy(io.Discard, r)
				close(done)
			}()
			for b.Loop() {
				w.Write(p)
			}
			x.NetConn().(*net.TCPConn).CloseWrite()
			<-done
		})
	}
}

// FuzzRecord feeds arbitrary bytes to a Conn as records from the peer: it
// must fail with an error, never panic, hang or return plaintext (the bytes
// cannot hold a tag made with a key they were chosen without).
func FuzzRecord(f *testing.F) {
	f.Add([]byte{0, 17, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17})
	f.Add([]byte{0, 0})
	f.Add([]byte{0xff, 0xff, 1})
	f.Add(append([]byte{0, 16}, make([]byte, 16)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		local, peer := net.Pipe()
		defer local.Close()
		go func() {
			peer.Write(data)
			peer.Close()
		}()
		var k secure.Keys
		rand.Read(k.Key[:])
		c := secure.NewConn(local, k, k)
		buf := make([]byte, 1<<16)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				t.Fatalf("read %d bytes of plaintext from % x", n, data)
			}
			if err != nil {
				return
			}
		}
	})
}

// BenchmarkPingPong measures a round trip of a 100-byte message over TCP
// loopback, sealed or plain: the channel's share of an Apply's latency.
func BenchmarkPingPong(b *testing.B) {
	for _, mode := range []string{"plain", "sealed"} {
		b.Run(mode, func(b *testing.B) {
			x, y := pair(b)
			var cx, cy io.ReadWriter = x, y
			if mode == "plain" {
				cx, cy = x.NetConn(), y.NetConn()
			} else {
				x.ReadAhead()
				y.ReadAhead()
			}
			go func() {
				buf := make([]byte, 100)
				for {
					if _, err := io.ReadFull(cy, buf); err != nil {
						return
					}
					if _, err := cy.Write(buf); err != nil {
						return
					}
				}
			}()
			buf := make([]byte, 100)
			for b.Loop() {
				cx.Write(buf)
				io.ReadFull(cx, buf)
			}
		})
	}
}
