package cluster

import (
	"errors"
	"log/slog"
	"net"
	"time"

	"github.com/mpgo/mp/internal/admit"
	"github.com/mpgo/mp/internal/wire"
)

// acceptLoop accepts workers that dial in (poolworker -connect) until the
// pool stops. Each connection is authenticated and set up as a dialled
// poolworker's is, in its own goroutine, and joins the pool as a member
// that leaves when the connection ends. Connections awaiting their
// handshake are bounded as poolworker bounds them (internal/admit), so
// that connections that never authenticate cannot take this program's
// file descriptors.
func (p *driver) acceptLoop(ln net.Listener) {
	defer p.wg.Done()
	gate := admit.NewGate(admit.Limits())
	var warned time.Time
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
		ok, shed := gate.Admit(conn)
		if shed != nil {
			shed.Close() // its handshake fails
		}
		if !ok {
			conn.Close()
		}
		if (!ok || shed != nil) && time.Since(warned) > time.Minute {
			warned = time.Now()
			p.logf(slog.LevelWarn, "too many connections awaiting their handshake",
				"addr", ln.Addr().String(), "limit", gate.TotalLimit(), "per_address", gate.PerSourceLimit(),
				"action", "closing the oldest, and those over the limit per address (a flood?)")
		}
		if ok {
			p.wg.Add(1) // this loop holds a count: wg cannot be 0 here
			go p.admit(conn, gate)
		}
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
// its node lacks it, and makes it a member. Once the handshake has ended,
// conn leaves gate.
func (p *driver) admit(conn net.Conn, gate *admit.Gate) {
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
	sc, err := p.handshake(conn, remote)
	gate.Done(conn)
	if err != nil {
		conn.Close()
		// A wrong token or version is worth a warning; a connection that
		// closed or idled through its handshake (a port scan, or one shed
		// by the gate in a flood) is not.
		level := slog.LevelInfo
		if errors.Is(err, wire.ErrAuth) || errors.Is(err, wire.ErrVersion) {
			level = slog.LevelWarn
		}
		p.logf(level, "worker refused", "worker", "dial-in "+remote, "cause", err)
		return
	}
	w, err := p.setupSession(sc, remote)
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
