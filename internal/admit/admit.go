// Package admit bounds the connections a server holds before they have
// authenticated. Each costs a file descriptor and a goroutine and proves
// nothing, so their number is bounded in total and per source address,
// leaving descriptors for the work of authenticated peers. Both ends that
// accept connections use it: poolworker -listen, and a driver listening for
// poolworker -connect (cluster.Listen).
//
//   - Per source address: a connection beyond the per-source limit is
//     refused at once.
//   - In total: a connection beyond the total sheds the one that has waited
//     longest, so that a peer whose handshake takes milliseconds gets in
//     while idle connections are shed. An attacker must then keep
//     connecting, from many addresses, faster than peers do.
//
// Each connection's handshake must also end within a timeout of its own,
// which the caller sets; Gate only counts.
package admit

import (
	"net"
	"sync"
)

// A Gate counts the connections awaiting their handshake. Its methods are
// safe for concurrent use and cost a map operation each, except Admit over
// the total, which looks for the oldest connection among those waiting.
type Gate struct {
	total, perSource int

	mu       sync.Mutex
	waiting  map[net.Conn]entry
	bySource map[string]int
	seq      uint64
}

type entry struct {
	source string
	seq    uint64 // its place in the order of arrival
}

// NewGate returns a Gate admitting at most total connections at once, and
// at most perSource from one address (both at least 1).
func NewGate(total, perSource int) *Gate {
	return &Gate{total: max(total, 1), perSource: max(perSource, 1), waiting: map[net.Conn]entry{}, bySource: map[string]int{}}
}

// Reserve is the file descriptors [Limits] keeps out of the pre-handshake
// budget, for listeners, logs, metrics, uploads and worker processes.
const Reserve = 256

// Limits returns limits fitted to this process's descriptor limit
// (RLIMIT_NOFILE, or 1,024 where it cannot be read or is over 2^20): half of
// what Reserve leaves, between 16 and 1,024 in total, and a quarter of
// that, at most 64, per source address.
func Limits() (total, perSource int) {
	total = min(max((nofile()-Reserve)/2, 16), 1024)
	return total, min(max(total/4, 1), 64)
}

// TotalLimit returns the most connections admitted at once.
func (g *Gate) TotalLimit() int { return g.total }

// PerSourceLimit returns the most connections admitted from one address.
func (g *Gate) PerSourceLimit() int { return g.perSource }

// Admit records conn as awaiting its handshake and reports whether it may
// go on. It refuses conn (ok false; the caller closes it) if conn's source
// address already has the per-source limit waiting. If the total is
// reached, it admits conn and returns in shed the connection that has
// waited longest, which it forgets: the caller closes that one, and its
// handshake then fails.
func (g *Gate) Admit(conn net.Conn) (ok bool, shed net.Conn) {
	src := SourceOf(conn)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.bySource[src] >= g.perSource {
		return false, nil
	}
	if len(g.waiting) >= g.total {
		var oldest uint64
		for c, e := range g.waiting {
			if shed == nil || e.seq < oldest {
				shed, oldest = c, e.seq
			}
		}
		g.forget(shed)
	}
	g.seq++
	g.waiting[conn] = entry{source: src, seq: g.seq}
	g.bySource[src]++
	return true, shed
}

// Done records that conn's handshake ended, passed or failed (or never
// will): it no longer counts. It does nothing for a connection not
// waiting, so it may be called more than once.
func (g *Gate) Done(conn net.Conn) {
	g.mu.Lock()
	g.forget(conn)
	g.mu.Unlock()
}

// Waiting returns the number of connections awaiting their handshake.
func (g *Gate) Waiting() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.waiting)
}

func (g *Gate) forget(conn net.Conn) {
	e, ok := g.waiting[conn]
	if !ok {
		return
	}
	delete(g.waiting, conn)
	if g.bySource[e.source]--; g.bySource[e.source] <= 0 {
		delete(g.bySource, e.source)
	}
}

// SourceOf returns the IP address conn comes from.
func SourceOf(conn net.Conn) string {
	if a, ok := conn.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	host, _, err := net.SplitHostPort(conn.RemoteAddr().String())
	if err != nil {
		return conn.RemoteAddr().String()
	}
	return host
}
