package cluster

import (
	"io"
	"sync"
	"time"
)

// writeQueue is the writer under a worker's wire.Codec. It lets a runner
// that has more chunks waiting go on to the next one instead of waiting
// for its result to be written: the result waits in the queue, and the
// results of many chunks leave in one write, when the runner runs out of
// chunks (flush), or at the latest maxHold after the first of them was
// queued, whichever comes first, so that a long chunk does not hold back
// the results queued before it. A lone result (no chunk waiting), or a
// large one (maxHeldFrame) with nothing queued before it, is written at
// once, in the sender's goroutine, as without the queue.
//
// Frames leave in the order of the Write calls. After a failed write
// every Write returns that error, and onErr runs once with it. While
// maxQueuedWrite bytes or more wait behind a write in progress, Write
// waits, so that a peer that stops reading holds the senders up rather
// than making them queue without end.
type writeQueue struct {
	w     io.Writer
	later func() bool // whether the sender has more to do than wait for a write
	onErr func(error)
	hold  time.Duration // maxHold
	timer *time.Timer

	mu      sync.Mutex
	cond    sync.Cond // signals the senders waiting for room
	buf     []byte    // bytes queued, not yet being written
	spare   []byte
	writing bool // a write is in progress
	armed   bool // timer is set to flush
	closed  bool
	err     error
}

// maxHold is the longest a writeQueue holds a result back.
const maxHold = 50 * time.Microsecond

// maxHeldFrame is the size from which a frame that would wait alone is
// written at once instead: a write system call is worth more than
// copying a small frame, not a large one (a Map's chunk of 10,000
// results).
const maxHeldFrame = 64 << 10

// maxQueuedWrite is the bytes a writeQueue queues before it writes, or
// its senders wait (one more frame may go over it), as wire.Codec's own
// queue.
const maxQueuedWrite = 4 << 20

func newWriteQueue(w io.Writer, later func() bool, onErr func(error)) *writeQueue {
	q := &writeQueue{w: w, later: later, onErr: onErr, hold: maxHold}
	q.cond.L = &q.mu
	q.timer = time.AfterFunc(time.Hour, q.flush)
	q.timer.Stop()
	return q
}

func (q *writeQueue) Write(p []byte) (int, error) {
	q.mu.Lock()
	for q.writing && len(q.buf) >= maxQueuedWrite && q.err == nil && !q.closed {
		q.cond.Wait()
	}
	if q.err == nil && q.closed {
		q.err = io.ErrClosedPipe
	}
	if q.err != nil {
		err := q.err
		q.mu.Unlock()
		return 0, err
	}
	if !q.writing && len(q.buf) == 0 && (len(p) >= maxHeldFrame || !q.later()) {
		// Alone, or large enough to be worth its own write: write it
		// now, without a copy.
		q.writing = true
		q.mu.Unlock()
		_, err := q.w.Write(p)
		q.mu.Lock()
		q.failLocked(err)
		q.flushLocked()
		err = q.err
		q.mu.Unlock()
		if err != nil {
			return 0, err
		}
		return len(p), nil
	}
	q.buf = append(q.buf, p...)
	switch {
	case q.writing:
		// The write in progress is followed by this one.
	case len(q.buf) < maxQueuedWrite && q.later():
		if !q.armed {
			q.armed = true
			q.timer.Reset(q.hold)
		}
	default:
		q.writing = true
		q.flushLocked()
	}
	err := q.err
	q.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// flush writes what is queued now, unless a write is in progress (which
// writes it next).
func (q *writeQueue) flush() {
	q.mu.Lock()
	if !q.writing && len(q.buf) > 0 {
		q.writing = true
		q.flushLocked()
	}
	q.mu.Unlock()
}

// flushLocked writes what is queued until nothing is, then clears
// writing. It is called with q.mu held and writing set.
func (q *writeQueue) flushLocked() {
	if q.armed {
		q.armed = false
		q.timer.Stop()
	}
	for len(q.buf) > 0 && q.err == nil {
		q.buf, q.spare = q.spare[:0], q.buf
		q.cond.Broadcast() // room for the senders waiting
		q.mu.Unlock()
		_, err := q.w.Write(q.spare)
		q.mu.Lock()
		if cap(q.spare) > 1<<20 {
			q.spare = nil // one huge message does not pin its memory
		}
		q.failLocked(err)
	}
	q.writing = false
	q.cond.Broadcast()
}

func (q *writeQueue) failLocked(err error) {
	if err == nil || q.err != nil {
		return
	}
	q.err = err
	q.buf = nil
	if q.onErr != nil {
		go q.onErr(err)
	}
}

// close writes what is queued and makes later Writes fail.
func (q *writeQueue) close() {
	q.flush()
	q.mu.Lock()
	q.closed = true
	q.timer.Stop()
	q.cond.Broadcast()
	q.mu.Unlock()
}
