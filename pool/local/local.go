// Package local runs a [pool.Pool] on goroutines in this process.
//
// A local pool costs a few goroutines and channels: a Map of trivial items
// with the default chunking costs a few nanoseconds per item beyond the
// function itself (see bench/). Functions need no registration; closures
// are fine.
package local

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/mpgo/mp/internal/backend"
	"github.com/mpgo/mp/internal/objects"
	"github.com/mpgo/mp/pool"
)

// goroutines is the backend: a set of goroutine workers.
type goroutines struct {
	cfg    backend.Config
	queue  chan *backend.Task
	ctx    context.Context // cancelled by Terminate
	cancel context.CancelFunc
	life   *backend.Lifecycle

	running []atomic.Pointer[backend.Task] // the task each worker runs, for Terminate
	pins    chan *pin                      // actors taking a worker
	pinned  atomic.Int64                   // workers taken by actors
	drained chan struct{}                  // closed with queue: pinned workers exit too
	wg      sync.WaitGroup
}

var _ backend.Backend = (*goroutines)(nil)

// New starts a pool of goroutine workers: by default one per CPU available
// (runtime.GOMAXPROCS). It starts them at once; each runs the Initializer,
// if any, when it takes its first task, before running it. Options of other
// backends are rejected.
func New(opts ...pool.Option) (*pool.Pool, error) {
	cfg, err := backend.NewConfig(opts)
	if err != nil {
		return nil, fmt.Errorf("local.New: %w", err)
	}
	if err := cfg.CheckBackend("local"); err != nil {
		return nil, fmt.Errorf("local.New: %w", err)
	}
	p := &goroutines{
		cfg:     cfg,
		queue:   make(chan *backend.Task),
		pins:    make(chan *pin),
		drained: make(chan struct{}),
		running: make([]atomic.Pointer[backend.Task], cfg.Workers),
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	// Once closed and idle, no call can submit again: closing the queue
	// lets the workers exit.
	p.life = backend.NewLifecycle(func() { close(p.queue); close(p.drained) })
	// Values of pool.Put: kept as they are, and encoded only to check
	// them as a cluster would.
	store := objects.NewStore(p, cfg.CheckEncoding, nil)
	p.wg.Add(cfg.Workers)
	for i := range cfg.Workers {
		go p.work(i)
	}
	go func() {
		p.wg.Wait()
		store.Close()
		p.life.Exited()
	}()
	return backend.Wrap(p).(*pool.Pool), nil
}

// Workers reports the number of worker goroutines not pinned by actors.
func (p *goroutines) Workers() int { return p.cfg.Workers - int(p.pinned.Load()) }

// worker is the state of one worker goroutine.
type worker struct {
	i           int
	tasks       int
	initErr     error
	initialized bool
}

func (p *goroutines) work(i int) {
	defer p.wg.Done()
	w := &worker{i: i}
	for {
		select {
		case t, ok := <-p.queue:
			if !ok {
				return
			}
			p.run(w, t)
		case pn := <-p.pins:
			if !p.servePin(w, pn) {
				return
			}
		case <-p.ctx.Done():
			return
		}
	}
}

// servePin runs the tasks of an actor's pin until it is released. It
// returns false if the worker must exit: the pool drained or terminated.
func (p *goroutines) servePin(w *worker, pn *pin) bool {
	defer close(pn.gone)
	for {
		select {
		case t := <-pn.tasks:
			p.run(w, t)
		case <-pn.released:
			return true
		case <-p.drained:
			return false
		case <-p.ctx.Done():
			return false
		}
	}
}

// run runs t on worker w, after the initializer if w has not run it yet.
func (p *goroutines) run(w *worker, t *backend.Task) {
	// Terminate sees the task from here on, even while the initializer
	// runs.
	p.running[w.i].Store(t)
	if !w.initialized {
		w.initErr = backend.RunInitializer(p.cfg.InitializerName, p.cfg.Initializer)
		w.initialized = true
	}
	switch {
	case w.initErr != nil:
		t.Fail(w.initErr)
		w.initialized = false // try again on the next task
	case p.ctx.Err() != nil:
		t.Fail(pool.ErrTerminated)
	case p.cfg.CheckEncoding:
		t.RunChecked()
	default:
		t.Run()
	}
	p.running[w.i].Store(nil)
	w.tasks++
	if m := p.cfg.MaxTasksPerWorker; m > 0 && w.tasks >= m {
		w.tasks, w.initialized = 0, false
	}
}

// pin is a worker goroutine reserved for an actor.
type pin struct {
	p        *goroutines
	tasks    chan *backend.Task
	released chan struct{}
	once     sync.Once
	gone     chan struct{} // closed when the worker stops serving the pin
}

// Pin takes an idle worker goroutine for an actor, waiting for one. See
// [backend.Backend].
func (p *goroutines) Pin(ctx context.Context) (backend.Pinned, error) {
	pn := &pin{p: p, tasks: make(chan *backend.Task), released: make(chan struct{}), gone: make(chan struct{})}
	select {
	case p.pins <- pn:
		p.pinned.Add(1)
		return pn, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-p.ctx.Done():
		return nil, pool.ErrTerminated
	}
}

// Submit hands t to the pinned worker. See [backend.Pinned].
func (pn *pin) Submit(ctx context.Context, t *backend.Task) error {
	select {
	case pn.tasks <- t:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-pn.gone:
		return fmt.Errorf("%w: its worker has exited", pool.ErrActorLost)
	case <-pn.p.ctx.Done():
		return pool.ErrTerminated
	}
}

// Release gives the worker back to the pool. See [backend.Pinned].
func (pn *pin) Release() {
	pn.once.Do(func() {
		close(pn.released)
		pn.p.pinned.Add(-1)
	})
}

// Begin admits a call unless the pool is closed. See [backend.Backend].
func (p *goroutines) Begin() error { return p.life.Begin() }

// End ends a call admitted by Begin. See [backend.Backend].
func (p *goroutines) End() { p.life.End() }

// Submit hands t to an idle worker, blocking until one takes it. See
// [backend.Backend].
func (p *goroutines) Submit(ctx context.Context, t *backend.Task) error {
	select {
	case p.queue <- t:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-p.ctx.Done():
		return pool.ErrTerminated
	}
}

// Close stops admitting calls; calls already admitted run to the end, then
// the workers exit. It does not wait: use Join.
func (p *goroutines) Close() error {
	p.life.Close()
	return nil
}

// Terminate stops the pool at once: every running or waiting task fails with
// pool.ErrTerminated, so pending calls return, and context-aware functions
// see their context cancelled. Plain functions already running go on until
// they return; Join waits for them.
func (p *goroutines) Terminate() error {
	p.life.Close()
	p.cancel()
	for i := range p.running {
		if t := p.running[i].Load(); t != nil {
			t.Fail(pool.ErrTerminated)
		}
	}
	return nil
}

// Join waits until every worker has exited, or ctx is done.
func (p *goroutines) Join(ctx context.Context) error { return p.life.Join(ctx) }
