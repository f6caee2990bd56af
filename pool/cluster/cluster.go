// Package cluster runs a [pool.Pool] on worker processes: by default ones it
// starts itself on this machine, or poolworker daemons on other machines.
// Programs use it exactly as [github.com/mpgo/mp/pool/local]: moving a
// program from one to the other changes its import line.
//
// # Where the workers come from
//
// With no configuration, [New] starts one worker process per CPU by
// re-executing this program's own binary in worker mode, as Python's spawn
// start method does. With MP_ADDRESS=host:port,… and MP_TOKEN (or the
// [Addresses] and [Token] options) it connects to poolworker daemons
// instead; each receives this program's executable over the connection
// (once: nodes cache it by SHA-256) and runs it in worker mode. Nothing is
// installed on a node by hand.
//
// # Members that come and go
//
// An address may be a name that resolves to several addresses; each is a
// member, and names are resolved again every [ResolveEvery]: new addresses
// join while calls run, and the members of addresses that leave are
// drained (no new chunks; the running ones finish). With [Listen] (or
// MP_LISTEN), poolworkers started with -connect dial this program and join
// as they come. New starts with the members that answer, at least
// [MinMembers], and keeps trying the others. Worker processes' output
// reaches this program's stderr, each line prefixed with its node and
// process.
//
// # What runs twice
//
// A worker process is this program, started again with the same arguments.
// It runs every init function and main up to the call of cluster.New, which
// in a worker never returns: it serves chunks until the driver is done, then
// exits. So anything main does before cluster.New happens in every worker
// too (as code outside Python's if __name__ == "__main__" block): call
// cluster.New early, before reading input or writing output. Functions are
// found in the worker by their registered name, so register them in init
// functions ([pool.Register]); an unregistered function or a closure fails
// the call with an error wrapping [pool.ErrNotRegistered] that names the
// line to add. A test binary starts workers from TestMain with [WorkerMain].
//
// # Faults
//
// A chunk whose worker dies (killed, crashed, or silent past the heartbeat
// timeout) is re-run on another worker, up to [Retries] times, so a function
// may run more than once for an item (at-least-once execution) but every
// item gets exactly one result. A lost worker process is restarted, and
// given up if it cannot be for [ReconnectFor]; a lost poolworker is
// redialled for as long as its address is listed. With no worker connected
// for ReconnectFor, calls fail with
// [pool.ErrNoWorkers] until a worker connects again.
//
// The protocol is described in internal/wire/spec.md.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"github.com/mpgo/mp/internal/backend"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mpgo/mp/internal/objects"
	"github.com/mpgo/mp/internal/wire"
	"github.com/mpgo/mp/pool"
)

// ErrWorkerLost is wrapped by the error of a chunk lost with more workers
// than Retries allows.
var ErrWorkerLost = errors.New("cluster: worker lost")

// driver is the backend: a pool of worker processes, this process their
// driver.
type driver struct {
	cfg     backend.Config
	s       settings
	sched   sched
	members membership
	nextID  atomic.Uint64
	token   string // embedded workers' one-off token
	exe     string

	life     *backend.Lifecycle
	objects  *objects.Store // the values of pool.Put
	stopOnce sync.Once
	termOnce sync.Once

	stop chan struct{} // closed when the members must stop
	term chan struct{} // closed by Terminate
	wg   sync.WaitGroup
}

var _ backend.Backend = (*driver)(nil)

// New starts a cluster pool. In a worker process it never returns (see
// [WorkerMain]). Otherwise it starts the worker processes and returns once
// all are ready, or connects to the poolworkers and returns once
// [MinMembers] of them (default 1) are ready; those that do not answer are
// logged and retried in the background. It returns a configuration error,
// or the failures to start or reach the workers (for poolworkers, an
// authentication failure wraps wire.ErrAuth and says what failed: the
// token, with a pointer to MP_TOKEN, or a certificate).
//
// An address may be a name that resolves to several addresses (a
// Kubernetes headless Service, say): each is a member, and the name is
// resolved again every [ResolveEvery]. With [Listen] (or MP_LISTEN),
// poolworkers started with -connect dial this program and join as they
// come.
//
// It accepts the options of package pool and of this package. Workers sets
// the number of worker processes started on this machine (default: CPUs);
// with poolworkers, each node's capacity is its own -capacity, and Workers,
// if given, caps the chunks in flight across the cluster.
func New(opts ...pool.Option) (*pool.Pool, error) {
	WorkerMain()
	p, err := newDriver(opts)
	if err != nil {
		return nil, err
	}
	return backend.Wrap(p).(*pool.Pool), nil
}

// newDriver starts the backend of a cluster pool. See New.
func newDriver(opts []pool.Option) (*driver, error) {
	cfg, err := backend.NewConfig(opts)
	if err != nil {
		return nil, fmt.Errorf("cluster.New: %w", err)
	}
	s, err := newSettings(&cfg)
	if err != nil {
		return nil, fmt.Errorf("cluster.New: %w", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("cluster.New: cannot find this program's executable: %w", err)
	}
	p := &driver{
		cfg:  cfg,
		s:    s,
		exe:  exe,
		stop: make(chan struct{}),
		term: make(chan struct{}),
	}
	p.life = backend.NewLifecycle(p.stopMembers)
	p.objects = objects.NewStore(p, true, p.forget)
	p.sched.init(p)
	p.members.init(p)
	if len(s.addrs) == 0 && s.listen == "" {
		err = p.startEmbedded()
	} else {
		if cfg.WorkersSet {
			p.sched.limit = cfg.Workers
		}
		err = p.startRemote()
	}
	if err != nil {
		p.Terminate()
		p.wg.Wait() // nothing of this pool outlives New
		return nil, fmt.Errorf("cluster.New: %w", err)
	}
	go func() {
		p.wg.Wait()
		p.objects.Close()
		p.life.Exited()
	}()
	return p, nil
}

// forget tells every connected worker that value id of p's store is
// released, so that those which fetched it drop it.
func (p *driver) forget(id uint64) {
	p.sched.mu.Lock()
	conns := slices.Clone(p.sched.conns)
	p.sched.mu.Unlock()
	for _, w := range conns {
		w.codec.Send(wire.KindForget, wire.Forget{Store: p.objects.ID(), ID: id})
	}
}

// startEmbedded starts cfg.Workers worker processes at once, and waits for
// all: one that cannot start is a bug of the program (see WorkerMain).
func (p *driver) startEmbedded() error {
	p.token = newToken()
	members := make([]*member, p.cfg.Workers)
	conns := make([]*wconn, len(members))
	errs := make([]error, len(members))
	var wg sync.WaitGroup
	for i := range members {
		members[i] = &member{name: fmt.Sprintf("local worker %d", i)}
		wg.Go(func() { conns[i], errs[i] = p.connect(members[i]) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for i, w := range conns {
			if w != nil {
				w.kill()
			}
			members[i].reap()
		}
		return err
	}
	p.wg.Add(1) // held while members are added
	defer p.wg.Done()
	for i, m := range members {
		p.members.add(m, conns[i])
	}
	// Workers() counts them from New's return.
	p.members.waitReady(len(members), true, nil)
	return nil
}

// startRemote dials every address (names resolved), listens for workers
// that dial in, and waits for MinMembers connections.
func (p *driver) startRemote() error {
	p.wg.Add(1) // held while members are added
	defer p.wg.Done()
	var ln net.Listener
	if p.s.listen != "" {
		var err error
		if ln, err = net.Listen("tcp", p.s.listen); err != nil {
			return fmt.Errorf("listening for workers (cluster.Listen or MP_LISTEN): %w", err)
		}
		if err := checkToken(p.s.token, ln.Addr(), "cluster.Listen or MP_LISTEN"); err != nil {
			ln.Close()
			return err
		}
	}
	targets, names, rerrs := resolveAll(p.s.addrs)
	members := make([]*member, len(targets))
	conns := make([]*wconn, len(targets))
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		members[i] = &member{name: t.addr, addr: t.addr, origin: t.origin}
		wg.Go(func() { conns[i], errs[i] = p.connect(members[i]) })
	}
	wg.Wait()
	ready := 0
	for _, w := range conns {
		if w != nil {
			ready++
		}
	}
	if ready < p.s.minMembers && ln == nil {
		for _, w := range conns {
			if w != nil {
				w.kill()
			}
		}
		return p.startErr(ready, append(rerrs, errs...))
	}
	for _, err := range rerrs {
		p.logf(slog.LevelWarn, "name does not resolve; starting without it, and resolving it again", "cause", err)
	}
	for i, m := range members {
		if errs[i] != nil {
			p.logf(slog.LevelWarn, "worker unreachable; starting without it, and retrying it", "worker", m.name, "cause", errs[i])
			p.members.failed(m, errs[i])
		}
		if !p.members.add(m, conns[i]) && conns[i] != nil {
			conns[i].kill() // the same address twice
		}
	}
	if len(names) > 0 {
		p.wg.Add(1)
		go p.resolveLoop(names)
	}
	if ln != nil {
		p.logf(slog.LevelInfo, "listening for workers", "addr", ln.Addr().String())
		p.wg.Add(1)
		go p.acceptLoop(ln)
	}
	timeout := time.NewTimer(p.s.startTimeout)
	defer timeout.Stop()
	// Workers() counts those connected at first from New's return.
	if !p.members.waitReady(max(p.s.minMembers, ready), false, timeout.C) && p.members.readyCount() < p.s.minMembers {
		return p.startErr(p.members.readyCount(), append(rerrs, errs...))
	}
	return nil
}

// startErr says why New found fewer than MinMembers workers.
func (p *driver) startErr(ready int, errs []error) error {
	err := errors.Join(errs...)
	if ready == 0 && err != nil {
		return err
	}
	where := ""
	if p.s.listen != "" {
		where = fmt.Sprintf(" (waited %v for workers to dial in to %s)", p.s.startTimeout, p.s.listen)
	}
	if err == nil {
		return fmt.Errorf("%d of the %d workers needed (cluster.MinMembers) are ready%s", ready, p.s.minMembers, where)
	}
	return fmt.Errorf("%d of the %d workers needed (cluster.MinMembers) are ready%s: %w", ready, p.s.minMembers, where, err)
}

// Workers reports how many chunks the pool runs at once: the total capacity
// of the workers connected now, or the Workers cap given to a pool of
// poolworkers if that is lower. It changes as members come and go.
func (p *driver) Workers() int { return p.sched.workers() }

// Begin admits a call unless the pool is closed. See [backend.Backend].
func (p *driver) Begin() error { return p.life.Begin() }

// End ends a call admitted by Begin. See [backend.Backend].
func (p *driver) End() { p.life.End() }

// stopMembers closes every member's connection, once: worker processes exit
// when their session ends, and members are not restarted.
func (p *driver) stopMembers() {
	p.stopOnce.Do(func() {
		close(p.stop)
		for _, m := range p.members.stop() {
			m.shut()
		}
	})
}

// Submit sends t to the least loaded connection with a free slot (see
// sched), blocking while every worker is busy. See [backend.Backend].
func (p *driver) Submit(ctx context.Context, t *backend.Task) error {
	return p.dispatch(ctx, &flight{t: t, hi: t.Len()})
}

func (p *driver) dispatch(ctx context.Context, f *flight) error {
	for {
		w, err := p.sched.acquire(ctx)
		if err != nil {
			return err
		}
		if w.send(f) {
			return nil
		}
	}
}

// lost handles a chunk whose worker died: it is re-run elsewhere, or fails.
func (p *driver) lost(f *flight, w *wconn, cause error) {
	if f.t.Done() {
		return
	}
	select {
	case <-p.term:
		f.t.Fail(pool.ErrTerminated)
		return
	default:
	}
	if f.pinned {
		f.t.Fail(fmt.Errorf("%w: its worker %s: %v", pool.ErrActorLost, w.name, cause))
		return
	}
	f.attempts++
	if f.attempts > p.s.retries {
		f.t.Fail(fmt.Errorf("%w: a chunk of %d items was lost with %d workers (Retries is %d); the last, %s: %v",
			ErrWorkerLost, f.t.Len(), f.attempts, p.s.retries, w.name, cause))
		return
	}
	go func() {
		if err := p.dispatch(f.t.Context(), f); err != nil {
			f.t.Fail(err)
		}
	}()
}

// Close stops admitting calls; calls already admitted run to the end, then
// the worker processes are told to exit. It does not wait: use Join.
func (p *driver) Close() error {
	p.life.Close()
	return nil
}

// Terminate stops the pool at once: running and waiting chunks fail with
// pool.ErrTerminated, connections are closed and worker processes started
// by this pool are killed.
func (p *driver) Terminate() error {
	p.life.Close()
	p.termOnce.Do(func() { close(p.term) })
	p.stopMembers()
	for _, m := range p.members.stop() {
		m.kill()
	}
	return nil
}

// Join waits until every worker process started by this pool has exited
// and every connection is closed, or ctx is done.
func (p *driver) Join(ctx context.Context) error { return p.life.Join(ctx) }

// runMember keeps one member connected until the pool stops, or the member
// leaves: it is drained, it dialled in and its connection ended, or it is
// an embedded worker given up.
func (p *driver) runMember(m *member, w *wconn) {
	defer p.wg.Done()
	defer p.members.left(m)
	lastUp := time.Now()
	backoff := 50 * time.Millisecond
	failing := false
	for {
		if w != nil {
			m.setConn(w)
			err := w.serve()
			m.setConn(nil)
			p.reapLater(m, err != nil && !p.stopping())
			lastUp = time.Now()
			backoff = 50 * time.Millisecond
			w = nil
			failing = false
		}
		select {
		case <-p.stop:
			return
		default:
		}
		if m.gone() {
			return
		}
		var err error
		w, err = p.connect(m)
		if err == nil {
			continue
		}
		p.members.failed(m, err)
		if m.addr == "" && time.Since(lastUp) > p.s.reconnectFor {
			p.logf(slog.LevelError, "worker given up", "worker", m.name, "after", p.s.reconnectFor, "cause", err)
			return
		}
		if !failing && m.addr != "" {
			p.logf(slog.LevelWarn, "worker unreachable; retrying", "worker", m.name, "cause", err)
		}
		failing = true
		select {
		case <-p.stop:
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// stopping reports whether the pool is stopping its members.
func (p *driver) stopping() bool {
	select {
	case <-p.stop:
		return true
	default:
		return false
	}
}

func (p *driver) logf(level slog.Level, msg string, args ...any) {
	if p.s.log != nil {
		p.s.log.Log(context.Background(), level, msg, args...)
	}
}

// connect starts (embedded) or dials (poolworker) m's worker process.
func (p *driver) connect(m *member) (*wconn, error) {
	if m.addr != "" {
		return p.dial(m)
	}
	return p.spawn(m)
}

// sched hands chunks to connections. Each connection takes up to credits
// chunks: twice its capacity, so that round trips are hidden, and more, up
// to 32 times, while its chunks come back within a millisecond, so that
// tiny tasks are not throttled by the round trip; a chunk back after more
// than 20 ms halves them. Credits are earned for the work at hand only: a
// connection that goes idle is back to twice its capacity, so that a
// history of quick calls does not let one worker hoard the chunks of a
// later call of slow ones (slow chunks never deepen a pipeline: a chunk
// that takes a millisecond or more is never back within one).
//
// A chunk goes to the least loaded connection and, among equals, to the
// one busy for the shortest time, so that a worker stuck on a long chunk is
// passed over and a slow worker gets fewer chunks; among idle connections,
// to the one idle for the shortest time, whose process is most likely still
// awake (sequential Applies that alternate between two idle workers wait
// for a wake-up each time: their p50 measured 55-80 µs on one warm worker
// against 82-117 µs alternating). This affinity cannot make one worker
// hoard later work, since its credits are back to the minimum whenever it
// is idle. Callers waiting for a slot queue first come, first served, and a
// freed slot wakes exactly one of them. Every operation is O(connections)
// under one mutex.
//
// With a limit (pool.Workers given to a pool of poolworkers), at most limit
// chunks are in flight across all connections.
type sched struct {
	p        *driver
	mu       sync.Mutex
	conns    []*wconn
	waiters  []*waiter // FIFO
	limit    int       // most chunks in flight in all, actors' slots included; 0: no limit
	pinned   int       // slots pinned by actors
	total    int       // slots reserved on the connections in conns
	capacity int       // the connections' total capacity
}

type waiter struct {
	got chan *wconn // receives the connection whose slot was reserved for it
}

// waiters keeps waiters between acquires: a waiter goes back only once
// its channel is empty again.
var waiters = sync.Pool{New: func() any { return &waiter{got: make(chan *wconn, 1)} }}

func (s *sched) init(p *driver) { s.p = p }

func (s *sched) add(w *wconn) {
	s.mu.Lock()
	s.conns = append(s.conns, w)
	s.capacity += w.capacity
	s.handoffLocked()
	s.mu.Unlock()
}

func (s *sched) remove(w *wconn) {
	s.mu.Lock()
	if i := slices.Index(s.conns, w); i >= 0 {
		s.conns = slices.Delete(s.conns, i, i+1)
		s.capacity -= w.capacity
		s.total -= w.slots
		w.removed = true
		s.handoffLocked() // a slot under the limit may be free now
	}
	s.mu.Unlock()
}

// workers returns the connections' total capacity, capped by the limit.
func (s *sched) workers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.limit > 0 {
		return max(0, min(s.limit-s.pinned, s.capacity))
	}
	return s.capacity
}

// release frees one of w's slots and gives it to the first waiter, if any.
func (s *sched) release(w *wconn) {
	s.mu.Lock()
	s.releaseLocked(w)
	s.mu.Unlock()
}

func (s *sched) releaseLocked(w *wconn) {
	if !w.removed {
		s.total--
	}
	w.slots--
	if w.slots == 0 {
		// Idle: the depth earned by the chunks just answered says nothing
		// about the next ones.
		w.busySince = time.Time{}
		w.idleSince = time.Now()
		w.credits = minDepth * w.capacity
	}
	s.handoffLocked()
}

// Credit bounds, per unit of capacity, and the round trips that move them.
const (
	minDepth  = 2
	maxDepth  = 32
	quickTrip = time.Millisecond      // a chunk back this fast deepens the pipeline
	slowTrip  = 20 * time.Millisecond // one this slow halves it
)

// done frees the slot of a chunk answered after rtt and adapts w's credits.
func (s *sched) done(w *wconn, rtt time.Duration) {
	s.mu.Lock()
	switch {
	case rtt < quickTrip && w.credits < maxDepth*w.capacity:
		w.credits++
	case rtt > slowTrip && w.credits > minDepth*w.capacity:
		w.credits = max(minDepth*w.capacity, w.credits/2)
	}
	s.releaseLocked(w)
	s.mu.Unlock()
}

// pickLocked reserves a slot on the best connection, or returns nil.
func (s *sched) pickLocked() *wconn {
	var best *wconn
	for _, w := range s.conns {
		if w.slots >= w.credits || !w.usable() {
			continue
		}
		if best == nil || w.slots < best.slots || (w.slots == best.slots && w.busySince.After(best.busySince)) ||
			(w.slots == 0 && best.slots == 0 && w.idleSince.After(best.idleSince)) {
			best = w
		}
	}
	if best != nil {
		if best.slots == 0 {
			best.busySince = time.Now()
		}
		best.slots++
	}
	return best
}

// takeLocked reserves a slot as pickLocked does, within the limit.
func (s *sched) takeLocked() *wconn {
	if s.limit > 0 && s.total >= s.limit-s.pinned {
		return nil
	}
	w := s.pickLocked()
	if w != nil {
		s.total++
	}
	return w
}

// handoffLocked gives free slots to waiters, in arrival order.
func (s *sched) handoffLocked() {
	for len(s.waiters) > 0 {
		w := s.takeLocked()
		if w == nil {
			return
		}
		wt := s.waiters[0]
		s.waiters[0] = nil
		s.waiters = s.waiters[1:]
		wt.got <- w
	}
}

// acquire reserves a slot on the best connection, waiting for one behind
// the callers already waiting.
func (s *sched) acquire(ctx context.Context) (*wconn, error) {
	s.mu.Lock()
	if len(s.waiters) == 0 {
		if w := s.takeLocked(); w != nil {
			s.mu.Unlock()
			return w, nil
		}
	}
	wt := waiters.Get().(*waiter)
	s.waiters = append(s.waiters, wt)
	s.mu.Unlock()
	var err error
	select {
	case w := <-wt.got:
		waiters.Put(wt)
		return w, nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-s.p.term:
		err = pool.ErrTerminated
	case <-s.p.members.noWorkersChan():
		err = s.p.members.noWorkersErr()
	}
	s.mu.Lock()
	if i := slices.Index(s.waiters, wt); i >= 0 {
		s.waiters = slices.Delete(s.waiters, i, i+1)
	}
	s.mu.Unlock()
	select {
	case w := <-wt.got: // a slot came as we gave up: pass it on
		s.release(w)
	default:
	}
	// No slot can come now: handoffLocked sends only to listed waiters,
	// under s.mu.
	waiters.Put(wt)
	return nil, err
}

func newToken() string {
	return fmt.Sprintf("%x", randomBytes(32))
}
