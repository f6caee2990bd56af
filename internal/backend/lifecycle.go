package backend

import (
	"context"
	"sync"
)

// A Lifecycle is the bookkeeping of Close and Join that every backend
// needs: it admits calls until Close, runs the backend's drain function once
// the pool is closed and the last admitted call has ended, and lets Join wait
// until the backend reports its workers gone. A backend's Begin, End, Close
// and Join forward to it. Its methods are safe for concurrent use.
type Lifecycle struct {
	drain  func()
	exited chan struct{}
	exit   sync.Once

	mu      sync.Mutex
	closed  bool
	active  int
	drained bool
}

// NewLifecycle returns a Lifecycle that calls drain, once, when the pool is
// closed and no admitted call is left: the backend then lets its workers
// exit. drain runs without the Lifecycle's lock held.
func NewLifecycle(drain func()) *Lifecycle {
	return &Lifecycle{drain: drain, exited: make(chan struct{})}
}

// Begin admits a call, or returns ErrClosed after Close.
func (l *Lifecycle) Begin() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	l.active++
	return nil
}

// End ends a call admitted by Begin.
func (l *Lifecycle) End() {
	l.mu.Lock()
	l.active--
	l.maybeDrain()
}

// Close stops admitting calls; it is idempotent and does not wait.
func (l *Lifecycle) Close() {
	l.mu.Lock()
	l.closed = true
	l.maybeDrain()
}

// maybeDrain unlocks l.mu, and drains if the pool is closed and idle.
func (l *Lifecycle) maybeDrain() {
	run := l.closed && l.active == 0 && !l.drained
	if run {
		l.drained = true
	}
	l.mu.Unlock()
	if run {
		l.drain()
	}
}

// Exited reports that every worker of the backend has exited; Join returns
// from then on. It is idempotent.
func (l *Lifecycle) Exited() { l.exit.Do(func() { close(l.exited) }) }

// Join waits until Exited, or ctx is done. It returns ErrNotClosed before
// Close.
func (l *Lifecycle) Join(ctx context.Context) error {
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
	if !closed {
		return ErrNotClosed
	}
	select {
	case <-l.exited:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
