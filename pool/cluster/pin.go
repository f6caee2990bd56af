package cluster

import (
	"context"
	"fmt"
	"sync"

	"github.com/mpgo/mp/internal/backend"
	"github.com/mpgo/mp/pool"
)

// pinned is a slot of a worker process reserved for an actor: the
// connection's capacity counts one fewer until Release, so the scheduler
// gives that process one chunk fewer at a time, and the actor's calls,
// sent one at a time, always find the slot free. The actor's state lives
// in the process, so its calls are never re-run elsewhere: when the
// connection ends, they fail with pool.ErrActorLost.
type pinned struct {
	w    *wconn
	once sync.Once
}

// Pin reserves a slot for an actor on the least loaded connection,
// waiting for one as Submit does. See [backend.Backend].
func (p *driver) Pin(ctx context.Context) (backend.Pinned, error) {
	w, err := p.sched.acquire(ctx)
	if err != nil {
		return nil, err
	}
	p.sched.pin(w)
	return &pinned{w: w}, nil
}

// Submit sends t to the pinned worker process. See [backend.Pinned].
func (pn *pinned) Submit(ctx context.Context, t *backend.Task) error {
	if !pn.w.send(&flight{t: t, hi: t.Len(), pinned: true}) {
		return fmt.Errorf("%w: its worker %s is gone", pool.ErrActorLost, pn.w.name)
	}
	return nil
}

// Release gives the slot back. See [backend.Pinned].
func (pn *pinned) Release() { pn.once.Do(func() { pn.w.p.sched.unpin(pn.w) }) }

// pin turns the slot acquire reserved on w into one pinned for an actor:
// w's capacity shrinks by one, and so does the limit, if any.
func (s *sched) pin(w *wconn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w.slots--
	if !w.removed {
		s.total--
		s.capacity--
	}
	s.pinned++
	w.capacity--
	w.credits = min(w.credits, maxDepth*w.capacity)
	s.handoffLocked()
}

// unpin gives w back the capacity pin took.
func (s *sched) unpin(w *wconn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w.capacity++
	if !w.removed {
		s.capacity++
	}
	s.pinned--
	w.credits = max(w.credits, minDepth*w.capacity)
	s.handoffLocked()
}
