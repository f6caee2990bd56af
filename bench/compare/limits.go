package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/hashicorp/yamux"
)

// The limits of this machine's transport, measured in the same run as the
// rows they bound: what a round trip, a pipeline of small messages and a
// stream of 5-byte items cost between two processes over loopback TCP,
// with and without yamux, when nothing else happens (no encoding, no
// scheduling, no function). The other process is this binary re-executed
// as an echo server.

// The limit rows' names for the two connections.
const (
	limitTCP   = "loopback TCP to another process"
	limitYamux = "a yamux stream to another process"
)

// envEcho makes this binary an echo server: "tcp:ADDR" or "yamux:ADDR", the
// address to dial.
const envEcho = "MPBENCH_ECHO"

// echoMain serves as an echo server and exits if envEcho is set; otherwise
// it returns at once.
func echoMain() {
	v := os.Getenv(envEcho)
	if v == "" {
		return
	}
	mode, addr, _ := strings.Cut(v, ":")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "echo:", err)
		os.Exit(1)
	}
	switch mode {
	case "tcp":
		echo(conn)
	case "yamux":
		s, err := yamux.Server(&oneWrite{Conn: conn}, yamuxConfig())
		if err != nil {
			fmt.Fprintln(os.Stderr, "echo:", err)
			os.Exit(1)
		}
		for {
			st, err := s.Accept()
			if err != nil {
				break
			}
			go echo(st)
		}
	}
	os.Exit(0)
}

// echo writes back what it reads until the stream ends.
func echo(rw io.ReadWriter) {
	buf := make([]byte, 64<<10)
	for {
		n, err := rw.Read(buf)
		if n > 0 {
			if _, werr := rw.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// yamuxConfig is the cluster's yamux configuration (pool/cluster's
// yamuxConfig with its default heartbeat).
func yamuxConfig() *yamux.Config {
	c := yamux.DefaultConfig()
	c.EnableKeepAlive = true
	c.KeepAliveInterval = time.Second
	c.ConnectionWriteTimeout = 2 * time.Second
	c.LogOutput = io.Discard
	c.MaxStreamWindowSize = 1 << 20
	return c
}

// oneWrite sends a yamux data frame's 12-byte header and its body in one
// write, as the cluster's connections do (pool/cluster's frameConn), so
// that the limit counts the system calls the cluster makes.
type oneWrite struct {
	net.Conn
	hdr     []byte
	pending bool
}

func (c *oneWrite) Write(b []byte) (int, error) {
	if c.pending {
		c.pending = false
		_, err := c.Conn.Write(append(c.hdr, b...))
		if err != nil {
			return 0, err
		}
		return len(b), nil
	}
	if len(b) == 12 && b[0] == 0 && b[1] == 0 && binary.BigEndian.Uint32(b[8:]) > 0 {
		c.hdr = append(c.hdr[:0], b...)
		c.pending = true
		return len(b), nil
	}
	return c.Conn.Write(b)
}

// limits holds a connection to each of two echo processes: one plain TCP,
// one yamux stream.
type limits struct {
	procs []*exec.Cmd
	tcp   net.Conn
	sess  *yamux.Session
	ymx   net.Conn // a stream of sess
}

// startLimits starts the two echo processes and connects to them.
func startLimits() (*limits, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer l.Close()
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	lim := &limits{}
	accept := func(mode string) (net.Conn, error) {
		cmd := exec.Command(exe)
		cmd.Env = append(os.Environ(), envEcho+"="+mode+":"+l.Addr().String())
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		lim.procs = append(lim.procs, cmd)
		l.(*net.TCPListener).SetDeadline(time.Now().Add(10 * time.Second))
		return l.Accept()
	}
	if lim.tcp, err = accept("tcp"); err != nil {
		lim.close()
		return nil, err
	}
	c, err := accept("yamux")
	if err != nil {
		lim.close()
		return nil, err
	}
	if lim.sess, err = yamux.Client(&oneWrite{Conn: c}, yamuxConfig()); err != nil {
		c.Close()
		lim.close()
		return nil, err
	}
	if lim.ymx, err = lim.sess.Open(); err != nil {
		lim.close()
		return nil, err
	}
	// Warm both up: yamux's window grows from 256 KiB as data flows.
	for _, c := range []net.Conn{lim.tcp, lim.ymx} {
		if err := stream(c, 1<<20); err != nil {
			lim.close()
			return nil, err
		}
	}
	return lim, nil
}

// close ends the connections and waits for the echo processes to exit.
func (l *limits) close() {
	if l.tcp != nil {
		l.tcp.Close()
	}
	if l.sess != nil {
		l.sess.Close()
	}
	for _, p := range l.procs {
		p.Wait()
	}
}

// roundTrips sends calls 64-byte messages on rw one after the other, each
// after the echo of the one before, and reports the p50 and p99 of a round
// trip (ns), as applyLatency does for Apply.
func roundTrips(rw io.ReadWriter, calls int) (result, error) {
	buf := make([]byte, 64)
	d := make([]time.Duration, calls)
	start := time.Now()
	for i := range calls {
		t := time.Now()
		if _, err := rw.Write(buf); err != nil {
			return result{}, err
		}
		if _, err := io.ReadFull(rw, buf); err != nil {
			return result{}, err
		}
		d[i] = time.Since(t)
	}
	return latencies(d, time.Since(start)), nil
}

// pipelined sends msgs 64-byte messages on rw with at most window of them
// unanswered, as ApplyAsync with a window does, and reports messages/s
// ("rate").
func pipelined(rw io.ReadWriter, msgs, window int) (result, error) {
	slots := make(chan struct{}, window)
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 64)
		for range msgs {
			if _, err := io.ReadFull(rw, buf); err != nil {
				done <- err
				return
			}
			<-slots
		}
		done <- nil
	}()
	start := time.Now()
	msg := make([]byte, 64)
	for range msgs {
		select {
		case slots <- struct{}{}:
		case err := <-done:
			return result{}, errors.Join(err, errors.New("the echo ended early"))
		}
		if _, err := rw.Write(msg); err != nil {
			return result{}, err
		}
	}
	if err := <-done; err != nil {
		return result{}, err
	}
	d := time.Since(start)
	return result{d: d, extra: map[string]float64{"rate": float64(msgs) / d.Seconds()}}, nil
}

// itemBytes is what an int of the Map rows takes on the wire: msgpack's
// 5-byte uint32 for the values those rows use.
const itemBytes = 5

// stream sends items × itemBytes bytes on rw in 64 KiB writes while reading
// as many back: the transport's cost of a Map's items, both ways, with no
// encoding and no function.
func stream(rw io.ReadWriter, items int) error {
	n := items * itemBytes
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 64<<10)
		var err error
		for got := 0; got < n && err == nil; {
			var k int
			k, err = rw.Read(buf[:min(len(buf), n-got)])
			got += k
		}
		done <- err
	}()
	out := make([]byte, 64<<10)
	for sent := 0; sent < n; {
		k := min(len(out), n-sent)
		if _, err := rw.Write(out[:k]); err != nil {
			return err
		}
		sent += k
	}
	return <-done
}
