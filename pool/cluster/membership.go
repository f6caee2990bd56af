package cluster

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/mpgo/mp/pool"
)

// membership owns the pool's set of members while calls run. Members join
// when New starts them, when a re-resolved name lists a new address, and
// when a worker dials in; they leave when they are drained (their address
// left the name), when a dialled-in worker's connection ends, or when an
// embedded worker is given up. Each member runs in its own goroutine
// (runMember) from join to leave.
//
// It also decides when the pool has no workers. Embedded workers are a
// fixed set: when the last is given up (it could not be restarted for
// ReconnectFor), for good. Poolworkers come and go: after ReconnectFor with
// no connection serving, until one connects again. Calls then fail with
// pool.ErrNoWorkers.
type membership struct {
	p        *driver
	embedded bool // members are worker processes started here

	mu        sync.Mutex
	stopped   bool
	all       map[*member]struct{}
	byAddr    map[string]*member // remote members, by the address dialled
	ready     int                // members with a connection serving
	ups       int                // connections that have served, in all
	noWorkers chan struct{}      // closed after ReconnectFor with ready == 0
	idle      *time.Timer        // armed while ready == 0
	changed   chan struct{}      // closed and replaced whenever ready rises
	lastErr   error
}

func (ms *membership) init(p *driver) {
	ms.p = p
	ms.embedded = len(p.s.addrs) == 0 && p.s.listen == ""
	ms.all = map[*member]struct{}{}
	ms.byAddr = map[string]*member{}
	ms.noWorkers = make(chan struct{})
	ms.changed = make(chan struct{})
	ms.mu.Lock()
	ms.armIdleLocked()
	ms.mu.Unlock()
}

// add makes m a member and starts its goroutine with w, its connection if
// it has one already (nil: the goroutine connects it). It returns false,
// and does nothing, if the pool is stopping or m's address is a member
// already.
func (ms *membership) add(m *member, w *wconn) bool {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if ms.stopped {
		return false
	}
	if m.addr != "" {
		if _, dup := ms.byAddr[m.addr]; dup {
			return false
		}
		ms.byAddr[m.addr] = m
	}
	ms.all[m] = struct{}{}
	ms.p.wg.Add(1) // the caller holds a count of wg: it cannot be 0 here
	go ms.p.runMember(m, w)
	return true
}

// drain removes the member dialled at addr, if any: it gets no new chunks,
// its running chunks finish, then its connection closes and it leaves.
func (ms *membership) drain(addr string) {
	ms.mu.Lock()
	m := ms.byAddr[addr]
	delete(ms.byAddr, addr)
	ms.mu.Unlock()
	if m != nil {
		ms.p.logf(slog.LevelInfo, "worker draining", "worker", m.name, "reason", m.origin+" no longer lists it")
		m.drain()
	}
}

// addrs returns the addresses of the remote members that came from origin.
func (ms *membership) addrs(origin string) []string {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	var out []string
	for a, m := range ms.byAddr {
		if m.origin == origin {
			out = append(out, a)
		}
	}
	return out
}

// left forgets m; its goroutine is ending.
func (ms *membership) left(m *member) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	delete(ms.all, m)
	if m.addr != "" && ms.byAddr[m.addr] == m {
		delete(ms.byAddr, m.addr)
	}
	if ms.embedded && len(ms.all) == 0 && !ms.stopped {
		ms.closeNoWorkersLocked()
	}
}

func (ms *membership) closeNoWorkersLocked() {
	select {
	case <-ms.noWorkers:
	default:
		ms.p.logf(slog.LevelError, "no workers left", "for", ms.p.s.reconnectFor, "last", ms.lastErr)
		close(ms.noWorkers)
	}
}

// up records that a member's connection is serving.
func (ms *membership) up() {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	ms.ready++
	ms.ups++
	if ms.idle != nil {
		ms.idle.Stop()
		ms.idle = nil
	}
	select {
	case <-ms.noWorkers:
		ms.noWorkers = make(chan struct{}) // workers again: calls may wait for them
	default:
	}
	close(ms.changed)
	ms.changed = make(chan struct{})
}

// down records that the connection to worker ended, with err.
func (ms *membership) down(worker string, err error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	ms.ready--
	if err != nil {
		ms.lastErr = fmt.Errorf("%s: %w", worker, err)
	}
	ms.armIdleLocked()
}

// failed records a member's failure to connect.
func (ms *membership) failed(m *member, err error) {
	ms.mu.Lock()
	ms.lastErr = fmt.Errorf("%s: %w", m.name, err)
	ms.mu.Unlock()
}

// armIdleLocked starts the ReconnectFor countdown to "no workers" if no
// connection is serving.
func (ms *membership) armIdleLocked() {
	if ms.ready > 0 || ms.idle != nil || ms.stopped || ms.embedded {
		return
	}
	var t *time.Timer
	t = time.AfterFunc(ms.p.s.reconnectFor, func() {
		ms.mu.Lock()
		defer ms.mu.Unlock()
		if ms.idle != t {
			return // a connection came, or the pool stopped
		}
		ms.idle = nil
		ms.closeNoWorkersLocked()
	})
	ms.idle = t
}

// noWorkersChan returns a channel closed when the pool has no workers.
func (ms *membership) noWorkersChan() <-chan struct{} {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.noWorkers
}

// waitReady waits until at least n connections are serving (or, if
// cumulative, have served), or deadline. It reports whether they are.
func (ms *membership) waitReady(n int, cumulative bool, deadline <-chan time.Time) bool {
	for {
		ms.mu.Lock()
		ready, changed := ms.ready, ms.changed
		if cumulative {
			ready = ms.ups
		}
		ms.mu.Unlock()
		if ready >= n {
			return true
		}
		select {
		case <-changed:
		case <-deadline:
			return false
		case <-ms.p.stop:
			return false
		}
	}
}

// readyCount returns how many connections are serving.
func (ms *membership) readyCount() int {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.ready
}

// stop marks the membership stopped (no member joins after it) and returns
// the members.
func (ms *membership) stop() []*member {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	ms.stopped = true
	if ms.idle != nil {
		ms.idle.Stop()
		ms.idle = nil
	}
	out := make([]*member, 0, len(ms.all))
	for m := range ms.all {
		out = append(out, m)
	}
	return out
}

func (ms *membership) noWorkersErr() error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return fmt.Errorf("%w: no worker for %v; the last: %v", pool.ErrNoWorkers, ms.p.s.reconnectFor, ms.lastErr)
}
