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
		running: make([]atomic.Pointer[backend.Task], cfg.Workers),
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	// Once closed and idle, no call can submit again: closing the queue
	// lets the workers exit.
	p.life = backend.NewLifecycle(func() { close(p.queue) })
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

// Workers reports the number of worker goroutines.
func (p *goroutines) Workers() int { return p.cfg.Workers }

func (p *goroutines) work(i int) {
	defer p.wg.Done()
	tasks := 0
	var initErr error
	initialized := false
	for {
		select {
		case t, ok := <-p.queue:
			if !ok {
				return
			}
			// Terminate sees the task from here on, even while the
			// initializer runs.
			p.running[i].Store(t)
			if !initialized {
				initErr = backend.RunInitializer(p.cfg.InitializerName, p.cfg.Initializer)
				initialized = true
			}
			switch {
			case initErr != nil:
				t.Fail(initErr)
				initialized = false // try again on the next task
			case p.ctx.Err() != nil:
				t.Fail(pool.ErrTerminated)
			case p.cfg.CheckEncoding:
				t.RunChecked()
			default:
				t.Run()
			}
			p.running[i].Store(nil)
			tasks++
			if m := p.cfg.MaxTasksPerWorker; m > 0 && tasks >= m {
				tasks, initialized = 0, false
			}
		case <-p.ctx.Done():
			return
		}
	}
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
