package pool

import (
	"context"
	"iter"
	"sync"
	"time"
)

// Imap calls fn on the items of seq and yields the results lazily, in input
// order, as Python's Pool.imap. Unlike Python's, it never reads its input
// ahead: at most (workers+1) × chunksize items have been pulled from seq and
// not yet yielded, so an endless seq works in bounded memory.
//
// Each range over the returned sequence is a new call, admitted when the
// range starts (a Close before that makes it yield ErrClosed). The input is
// ranged over in the caller's goroutine: ctx is seen between items, not
// while seq blocks for its next one. The first error is
// yielded as (zero, err) and ends the sequence; so does ctx being done
// (err is ctx.Err()). The first error is the first in time: results of
// earlier items whose chunks were still running are not yielded, unlike
// Python's imap, which yields every result before the failing item (Map
// with [KeepGoing] returns them all). Breaking out of the loop stops the call: items already
// running are abandoned and seq is not read further.
//
// The default chunk size starts at 1 and doubles, up to 1024, while chunks
// take under 500µs, so slow items are balanced one by one and trivial ones
// are amortized; [Chunksize] fixes it.
func Imap[T, R any](ctx context.Context, p *Pool, fn func(T) R, seq iter.Seq[T], opts ...CallOption) iter.Seq2[R, error] {
	return imap(ctx, p, typed[T, R]{plain: fn}, seq, true, opts)
}

// ImapErr is [Imap] for functions that return an error.
func ImapErr[T, R any](ctx context.Context, p *Pool, fn func(T) (R, error), seq iter.Seq[T], opts ...CallOption) iter.Seq2[R, error] {
	return imap(ctx, p, typed[T, R]{errf: fn}, seq, true, opts)
}

// ImapCtx is [Imap] for functions that take a context.
func ImapCtx[T, R any](ctx context.Context, p *Pool, fn func(context.Context, T) (R, error), seq iter.Seq[T], opts ...CallOption) iter.Seq2[R, error] {
	return imap(ctx, p, typed[T, R]{ctxf: fn}, seq, true, opts)
}

// ImapUnordered is [Imap] that yields results as they complete, as Python's
// Pool.imap_unordered. Results of one chunk stay together, in input order.
func ImapUnordered[T, R any](ctx context.Context, p *Pool, fn func(T) R, seq iter.Seq[T], opts ...CallOption) iter.Seq2[R, error] {
	return imap(ctx, p, typed[T, R]{plain: fn}, seq, false, opts)
}

// ImapUnorderedErr is [ImapUnordered] for functions that return an error.
func ImapUnorderedErr[T, R any](ctx context.Context, p *Pool, fn func(T) (R, error), seq iter.Seq[T], opts ...CallOption) iter.Seq2[R, error] {
	return imap(ctx, p, typed[T, R]{errf: fn}, seq, false, opts)
}

// ImapUnorderedCtx is [ImapUnordered] for functions that take a context.
func ImapUnorderedCtx[T, R any](ctx context.Context, p *Pool, fn func(context.Context, T) (R, error), seq iter.Seq[T], opts ...CallOption) iter.Seq2[R, error] {
	return imap(ctx, p, typed[T, R]{ctxf: fn}, seq, false, opts)
}

// Values adapts a channel to an iter.Seq, for Imap over a channel: the
// sequence ends when ch is closed.
func Values[T any](ch <-chan T) iter.Seq[T] {
	return func(yield func(T) bool) {
		for v := range ch {
			if !yield(v) {
				return
			}
		}
	}
}

const (
	imapMaxChunk    = 1024
	imapGrowBelow   = 500 * time.Microsecond
	imapInitialSize = 1
)

type imapDone struct {
	t   task
	err error
}

// doneQueue carries finished chunks from the goroutines that finish them
// to the range's goroutine. It never blocks the sender: with KeepGoing a
// chunk whose item failed is followed by the rest of it, so the number of
// finishes is not bounded by the chunks in flight.
type doneQueue struct {
	mu     sync.Mutex
	q      []imapDone
	signal chan struct{} // holds a token while q may be non-empty
}

func (d *doneQueue) push(x imapDone) {
	d.mu.Lock()
	d.q = append(d.q, x)
	d.mu.Unlock()
	select {
	case d.signal <- struct{}{}:
	default:
	}
}

// pop returns the next finished chunk, or false once done is closed first.
func (d *doneQueue) pop(done <-chan struct{}) (imapDone, bool) {
	for {
		d.mu.Lock()
		if len(d.q) > 0 {
			x := d.q[0]
			d.q[0] = imapDone{}
			d.q = d.q[1:]
			d.mu.Unlock()
			return x, true
		}
		d.mu.Unlock()
		select {
		case <-d.signal:
		case <-done:
			return imapDone{}, false
		}
	}
}

func imap[T, R any](ctx context.Context, p *Pool, f typed[T, R], seq iter.Seq[T], ordered bool, opts []CallOption) iter.Seq2[R, error] {
	cfg := newCallConfig(opts)
	return func(yield func(R, error) bool) {
		var zero R
		if err := f.check(); err != nil {
			yield(zero, err)
			return
		}
		if seq == nil {
			yield(zero, errNilSeq)
			return
		}
		c, err := begin(ctx, p, f)
		if err != nil {
			yield(zero, err)
			return
		}
		defer c.end()
		c.keepGoing = cfg.keepGoing
		c.progress = startProgress(cfg.progress, 0)
		defer c.progress.end()
		m := &imapper[T, R]{
			c:       c,
			f:       &f,
			ctx:     ctx,
			yield:   yield,
			ordered: ordered,
			window:  max(p.Workers(), 1) + 1,
			size:    imapInitialSize,
			fixed:   cfg.chunksize >= 1,
			ready:   map[int]imapDone{},
		}
		if m.fixed {
			m.size = cfg.chunksize
		}
		m.finished.signal = make(chan struct{}, 1)
		c.onDone = func(t task, err error) { m.finished.push(imapDone{t, err}) }

		// The input is ranged over here, in the caller's goroutine, and
		// results are yielded between items: no goroutine, no coroutine
		// switch per item. An item is pulled only while fewer than window
		// chunks are unyielded, which bounds the lookahead.
		m.buf = make([]T, 0, m.size)
		for v := range seq {
			m.buf = append(m.buf, v)
			if len(m.buf) < m.size {
				continue
			}
			if !m.submit() {
				return
			}
			for m.inflight >= m.window {
				if !m.next() {
					return
				}
			}
		}
		if len(m.buf) > 0 && !m.submit() {
			return
		}
		for m.inflight > 0 {
			if !m.next() {
				return
			}
		}
		if err := c.result(ctx); err != nil {
			yield(zero, err)
		}
	}
}

// imapper is the state of one range over an Imap sequence.
type imapper[T, R any] struct {
	c        *call
	f        *typed[T, R]
	ctx      context.Context
	yield    func(R, error) bool
	ordered  bool
	window   int
	size     int              // current chunk size
	fixed    bool             // size set by Chunksize
	buf      []T              // the chunk being filled
	offset   int              // input index of buf[0]
	inflight int              // chunks submitted and not yet yielded
	yielded  int              // input index of the next result to yield (ordered)
	ready    map[int]imapDone // finished ahead of yielded, by their first index
	finished doneQueue
}

// submit hands the filled chunk to the pool. It returns false when the
// range must end (the error was yielded).
func (m *imapper[T, R]) submit() bool {
	var zero R
	if m.c.stop.Load() {
		m.yield(zero, m.c.result(m.ctx))
		return false
	}
	in := m.buf
	m.c.progress.read(len(in))
	t := newChunk(m.c, m.f, in, make([]R, len(in)), m.offset)
	m.offset += len(in)
	if m.c.submit(t) != nil {
		m.yield(zero, m.c.result(m.ctx))
		return false
	}
	m.inflight++
	m.buf = make([]T, 0, m.size)
	return true
}

// next waits for one chunk to finish and yields what is ready. It returns
// false when the range must end.
func (m *imapper[T, R]) next() bool {
	var zero R
	d, ok := m.finished.pop(m.c.ctx.Done())
	if !ok {
		m.yield(zero, m.c.result(m.ctx))
		return false
	}
	n := d.t.size() // the items d accounts for
	if d.err != nil {
		te, item := d.err.(*TaskError)
		if !item || !m.c.keepGoing || m.c.stop.Load() {
			m.yield(zero, m.c.result(m.ctx))
			return false
		}
		// KeepGoing: the chunk ran up to its failed item; the rest of it
		// is in flight as a chunk of its own.
		n = te.Index - d.t.base() + 1
		if n < d.t.size() {
			m.inflight++
		}
	} else if !m.fixed && m.size < imapMaxChunk && time.Since(d.t.sentAt()) < imapGrowBelow {
		m.size *= 2
	}
	if !m.ordered {
		m.inflight--
		return m.emit(d, n)
	}
	m.ready[d.t.base()] = d
	for {
		d, ok := m.ready[m.yielded]
		if !ok {
			return true
		}
		delete(m.ready, m.yielded)
		n := d.t.size()
		if d.err != nil {
			n = d.err.(*TaskError).Index - d.t.base() + 1
		}
		m.yielded += n
		m.inflight--
		if !m.emit(d, n) {
			return false
		}
	}
}

// emit yields the first n results of d's chunk; with an item's error, the
// last of them is the error.
func (m *imapper[T, R]) emit(d imapDone, n int) bool {
	out := d.t.(*chunk[T, R]).out[:n]
	if d.err != nil {
		out = out[:n-1]
	}
	for _, r := range out {
		if !m.yield(r, nil) {
			return false
		}
	}
	if d.err != nil {
		var zero R
		return m.yield(zero, d.err)
	}
	return true
}
