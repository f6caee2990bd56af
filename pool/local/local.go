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

	"github.com/mpgo/mp/internal/objects"
	"github.com/mpgo/mp/pool"
)

// Pool is a set of goroutine workers. Make one with [New]; use it with the
// operations of package pool. It is safe for concurrent use.
type Pool struct {
	cfg    pool.Config
	queue  chan *pool.Task
	ctx    context.Context // cancelled by Terminate
	cancel context.CancelFunc
	life   *pool.Lifecycle

	running []atomic.Pointer[pool.Task] // the task each worker runs, for Terminate
	wg      sync.WaitGroup
}

var _ pool.Pool = (*Pool)(nil)

// New starts a pool of goroutine workers: by default one per CPU available
// (runtime.GOMAXPROCS). It starts them at once; each runs the Initializer,
// if any, when it takes its first task, before running it. Options of other
// backends are rejected.
func New(opts ...pool.Option) (*Pool, error) {
	cfg, err := pool.NewConfig(opts...)
	if err != nil {
		return nil, fmt.Errorf("local.New: %w", err)
	}
	if err := cfg.CheckBackend("local"); err != nil {
		return nil, fmt.Errorf("local.New: %w", err)
	}
	p := &Pool{
		cfg:     cfg,
		queue:   make(chan *pool.Task),
		running: make([]atomic.Pointer[pool.Task], cfg.Workers),
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	// Once closed and idle, no call can submit again: closing the queue
	// lets the workers exit.
	p.life = pool.NewLifecycle(func() { close(p.queue) })
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
	return p, nil
}

// Workers reports the number of worker goroutines.
func (p *Pool) Workers() int { return p.cfg.Workers }

func (p *Pool) work(i int) {
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
				initErr = pool.RunInitializer(p.cfg.InitializerName, p.cfg.Initializer)
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

// Begin admits a call unless the pool is closed. See [pool.Pool].
func (p *Pool) Begin() error { return p.life.Begin() }

// End ends a call admitted by Begin. See [pool.Pool].
func (p *Pool) End() { p.life.End() }

// Submit hands t to an idle worker, blocking until one takes it. See
// [pool.Pool].
func (p *Pool) Submit(ctx context.Context, t *pool.Task) error {
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
func (p *Pool) Close() error {
	p.life.Close()
	return nil
}

// Terminate stops the pool at once: every running or waiting task fails with
// pool.ErrTerminated, so pending calls return, and context-aware functions
// see their context cancelled. Plain functions already running go on until
// they return; Join waits for them.
func (p *Pool) Terminate() error {
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
func (p *Pool) Join(ctx context.Context) error { return p.life.Join(ctx) }
