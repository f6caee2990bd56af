package cluster

import (
	"log/slog"
	"net"
	"time"
)

// acceptLoop accepts workers that dial in (poolworker -connect) until the
// pool stops. Each connection is authenticated and set up as a dialled
// poolworker's is, in its own goroutine, and joins the pool as a member
// that leaves when the connection ends.
func (p *driver) acceptLoop(ln net.Listener) {
	defer p.wg.Done()
	go func() {
		<-p.stop
		ln.Close()
	}()
	backoff := 5 * time.Millisecond
	for {
		conn, err := ln.Accept()
		if err != nil {
			select {
			case <-p.stop:
				return
			default:
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() || isTemporary(err) {
				time.Sleep(backoff)
				backoff = min(2*backoff, time.Second)
				continue
			}
			p.logf(slog.LevelError, "listening for workers failed", "addr", ln.Addr().String(), "cause", err)
			return
		}
		backoff = 5 * time.Millisecond
		p.wg.Add(1) // this loop holds a count: wg cannot be 0 here
		go p.admit(conn)
	}
}

// isTemporary reports whether an Accept error may go away (out of file
// descriptors, a connection reset before it was accepted).
func isTemporary(err error) bool {
	type temporary interface{ Temporary() bool }
	t, ok := err.(temporary)
	return ok && t.Temporary()
}

// admit authenticates a worker that dialled in, sends it the executable if
// its node lacks it, and makes it a member.
func (p *driver) admit(conn net.Conn) {
	defer p.wg.Done()
	remote := conn.RemoteAddr().String()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-p.stop: // do not hold Close up for a slow handshake
			conn.Close()
		case <-stop:
		}
	}()
	w, err := p.setupRemote(conn, remote)
	if err != nil {
		conn.Close()
		p.logf(slog.LevelWarn, "worker refused", "worker", "dial-in "+remote, "cause", err)
		return
	}
	m := &member{name: "dial-in " + remote, dialIn: true}
	if !p.members.add(m, w) {
		w.kill()
	}
}
