//go:build unix

package main

import (
	"net"
	"syscall"
	"time"
)

// Connections awaiting their handshake cost a file descriptor each and
// prove nothing, so their number is bounded, in total and per source
// address, leaving descriptors for what authenticated drivers need
// (uploads, the pipes and descriptors of each worker process started).
// Without the bound, 1,100 idle connections against a limit of 1,024
// descriptors made poolworker fail in dup and fork for 7 of 8 legitimate
// drivers (issue 11).
//
//   - Per source address: a connection beyond preAuthCount.perSource from
//     one address is closed at once.
//   - In total: a connection beyond preAuthCount.total closes the one that
//     has waited longest, so that a new driver, whose handshake takes
//     milliseconds, gets in while idle connections are shed. An attacker
//     must then keep connecting, from many addresses, faster than drivers
//     do.
//
// Each connection's handshake also ends within wire.DefaultHandshakeTimeout.

// fdReserve is the file descriptors kept out of the pre-handshake budget,
// for the listener, logs, metrics, uploads and worker processes.
const fdReserve = 256

// preAuthCount counts the connections awaiting their handshake. Its fields
// are guarded by server.mu.
type preAuthCount struct {
	total, perSource int // limits
	n                int // connections awaiting their handshake
	bySource         map[string]int
	seq              uint64    // arrivals, for the order of admission
	warned           time.Time // when shedding was last logged: once a minute at most
}

// admission is a connection not yet handed over to a worker process.
type admission struct {
	source  string // the remote IP address
	preAuth bool   // its handshake has not ended
	seq     uint64 // its place in the order of arrival
}

// newPreAuthCount returns limits fitted to this process's descriptor limit
// (RLIMIT_NOFILE): half of what the reserve leaves, between 16 and 1,024 in
// total, and a quarter of that, at most 64, per source address.
func newPreAuthCount() preAuthCount {
	nofile := 1024
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil && rl.Cur < 1<<20 {
		nofile = int(rl.Cur)
	}
	total := min(max((nofile-fdReserve)/2, 16), 1024)
	return preAuthCount{total: total, perSource: min(max(total/4, 1), 64), bySource: map[string]int{}}
}

// admit records conn as awaiting its handshake, and reports false if its
// source already has perSource such connections. Over the total, it closes
// the connection that has waited longest. s.mu must be held.
func (s *server) admit(conn net.Conn) bool {
	c := &s.preAuth
	src := sourceOf(conn)
	if c.bySource[src] >= c.perSource {
		return false
	}
	if c.n >= c.total {
		var oldest net.Conn
		var oldestSeq uint64
		for pc, a := range s.pending {
			if a.preAuth && (oldest == nil || a.seq < oldestSeq) {
				oldest, oldestSeq = pc, a.seq
			}
		}
		if oldest != nil {
			s.authEnded(oldest)
			oldest.Close() // its handler's handshake fails, and it releases it
			s.metrics.handshakeShed()
			if now := time.Now(); now.Sub(c.warned) > time.Minute {
				c.warned = now
				s.log.Warn("too many connections awaiting their handshake: closing the oldest as new ones come (a flood? see mp_poolworker_handshake_failures_total{reason=\"shed\"})",
					"limit", c.total, "per_address", c.perSource)
			}
		}
	}
	c.seq++
	s.pending[conn] = &admission{source: src, preAuth: true, seq: c.seq}
	c.n++
	c.bySource[src]++
	return true
}

// authEnded records that conn's handshake ended (or never will), if it was
// awaiting it. s.mu must be held.
func (s *server) authEnded(conn net.Conn) {
	a := s.pending[conn]
	if a == nil || !a.preAuth {
		return
	}
	a.preAuth = false
	c := &s.preAuth
	c.n--
	if c.bySource[a.source]--; c.bySource[a.source] <= 0 {
		delete(c.bySource, a.source)
	}
}

// sourceOf returns the IP address conn comes from.
func sourceOf(conn net.Conn) string {
	if a, ok := conn.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	host, _, err := net.SplitHostPort(conn.RemoteAddr().String())
	if err != nil {
		return conn.RemoteAddr().String()
	}
	return host
}

// handshakeDone records that conn passed its handshake: it no longer
// counts against the limits.
func (s *server) handshakeDone(conn net.Conn) {
	s.mu.Lock()
	s.authEnded(conn)
	s.mu.Unlock()
}
