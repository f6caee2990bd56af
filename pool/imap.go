package pool

import (
	"context"
	"iter"
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
		if cfg.keepGoing {
			yield(zero, configError("pool.KeepGoing is for Map, MapAsync and ForEach, not Imap"))
			return
		}
		c, err := begin(ctx, p, f)
		if err != nil {
			yield(zero, err)
			return
		}
		defer c.end()
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
			ready:   map[int]task{},
		}
		if m.fixed {
			m.size = cfg.chunksize
		}
		// Every task in flight sends to finished exactly once, and there are
		// never more than window of them: the sends never block.
		m.finished = make(chan imapDone, m.window)
		c.onDone = func(t task, err error) { m.finished <- imapDone{t, err} }

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
	size     int          // current chunk size
	fixed    bool         // size set by Chunksize
	buf      []T          // the chunk being filled
	offset   int          // input index of buf[0]
	inflight int          // chunks submitted and not yet yielded
	yielded  int          // input index of the next result to yield (ordered)
	ready    map[int]task // finished ahead of yielded, by their first index
	finished chan imapDone
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
	var d imapDone
	select {
	case d = <-m.finished:
	case <-m.c.ctx.Done():
		m.yield(zero, m.c.result(m.ctx))
		return false
	}
	if d.err != nil {
		m.yield(zero, m.c.result(m.ctx))
		return false
	}
	if !m.fixed && m.size < imapMaxChunk && time.Since(d.t.sentAt()) < imapGrowBelow {
		m.size *= 2
	}
	if !m.ordered {
		m.inflight--
		return m.emit(d.t)
	}
	m.ready[d.t.base()] = d.t
	for {
		t, ok := m.ready[m.yielded]
		if !ok {
			return true
		}
		delete(m.ready, m.yielded)
		m.yielded += t.size()
		m.inflight--
		if !m.emit(t) {
			return false
		}
	}
}

func (m *imapper[T, R]) emit(t task) bool {
	for _, r := range t.(*chunk[T, R]).out {
		if !m.yield(r, nil) {
			return false
		}
	}
	return true
}
