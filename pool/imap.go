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
// Each range over the returned sequence is a new call. The first error is
// yielded as (zero, err) and ends the sequence; so does ctx being done
// (err is ctx.Err()). Breaking out of the loop stops the call: items already
// running are abandoned and seq is not read further.
//
// The default chunk size starts at 1 and doubles, up to 1024, while chunks
// take under 500µs, so slow items are balanced one by one and trivial ones
// are amortized; [Chunksize] fixes it.
func Imap[T, R any](ctx context.Context, p Pool, fn func(T) R, seq iter.Seq[T], opts ...CallOption) iter.Seq2[R, error] {
	return imap(ctx, p, typed[T, R]{plain: fn}, seq, true, opts)
}

// ImapErr is [Imap] for functions that return an error.
func ImapErr[T, R any](ctx context.Context, p Pool, fn func(T) (R, error), seq iter.Seq[T], opts ...CallOption) iter.Seq2[R, error] {
	return imap(ctx, p, typed[T, R]{errf: fn}, seq, true, opts)
}

// ImapCtx is [Imap] for functions that take a context.
func ImapCtx[T, R any](ctx context.Context, p Pool, fn func(context.Context, T) (R, error), seq iter.Seq[T], opts ...CallOption) iter.Seq2[R, error] {
	return imap(ctx, p, typed[T, R]{ctxf: fn}, seq, true, opts)
}

// ImapUnordered is [Imap] that yields results as they complete, as Python's
// Pool.imap_unordered. Results of one chunk stay together, in input order.
func ImapUnordered[T, R any](ctx context.Context, p Pool, fn func(T) R, seq iter.Seq[T], opts ...CallOption) iter.Seq2[R, error] {
	return imap(ctx, p, typed[T, R]{plain: fn}, seq, false, opts)
}

// ImapUnorderedErr is [ImapUnordered] for functions that return an error.
func ImapUnorderedErr[T, R any](ctx context.Context, p Pool, fn func(T) (R, error), seq iter.Seq[T], opts ...CallOption) iter.Seq2[R, error] {
	return imap(ctx, p, typed[T, R]{errf: fn}, seq, false, opts)
}

// ImapUnorderedCtx is [ImapUnordered] for functions that take a context.
func ImapUnorderedCtx[T, R any](ctx context.Context, p Pool, fn func(context.Context, T) (R, error), seq iter.Seq[T], opts ...CallOption) iter.Seq2[R, error] {
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
	t   *Task
	err error
}

func imap[T, R any](ctx context.Context, p Pool, f typed[T, R], seq iter.Seq[T], ordered bool, opts []CallOption) iter.Seq2[R, error] {
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
		window := max(p.Workers(), 1) + 1
		// Every task in flight sends to finished exactly once, and there are
		// never more than window of them: the sends never block.
		finished := make(chan imapDone, window)
		c.onDone = func(t *Task, err error) { finished <- imapDone{t, err} }

		next, stop := iter.Pull(seq)
		defer stop()

		fixed := cfg.chunksize >= 1
		size := imapInitialSize
		if fixed {
			size = cfg.chunksize
		}
		var (
			eof      bool
			inflight int               // submitted, not yet yielded
			seqNext  int               // sequence number of the next chunk to submit
			seqOut   int               // sequence number of the next chunk to yield
			ready    = map[int]*Task{} // finished out of order (ordered mode)
			order    = map[*Task]int{}
			offset   int
		)
		emit := func(t *Task) bool {
			k := t.impl.(*chunk[T, R])
			for _, r := range k.out {
				if !yield(r, nil) {
					return false
				}
			}
			return true
		}
		for {
			for !eof && inflight < window && !c.stop.Load() {
				in := make([]T, 0, size)
				for len(in) < size {
					v, ok := next()
					if !ok {
						eof = true
						break
					}
					in = append(in, v)
				}
				if len(in) == 0 {
					break
				}
				t := &Task{c: c, impl: &chunk[T, R]{f: &f, in: in, out: make([]R, len(in)), off: offset}}
				offset += len(in)
				order[t] = seqNext
				seqNext++
				if c.submit(t) != nil {
					break
				}
				inflight++
			}
			if inflight == 0 {
				if err := c.result(ctx); err != nil {
					yield(zero, err)
				}
				return
			}
			var d imapDone
			select {
			case d = <-finished:
			case <-c.ctx.Done():
				yield(zero, c.result(ctx))
				return
			}
			if d.err != nil {
				yield(zero, c.result(ctx))
				return
			}
			if !fixed && size < imapMaxChunk && time.Since(d.t.sent) < imapGrowBelow {
				size *= 2
			}
			if !ordered {
				inflight--
				delete(order, d.t)
				if !emit(d.t) {
					return
				}
				continue
			}
			ready[order[d.t]] = d.t
			delete(order, d.t)
			for {
				t, ok := ready[seqOut]
				if !ok {
					break
				}
				delete(ready, seqOut)
				seqOut++
				inflight--
				if !emit(t) {
					return
				}
			}
		}
	}
}
