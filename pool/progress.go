package pool

import (
	"sync/atomic"
	"time"
)

// progressEvery is how often a Progress function is called at most.
const progressEvery = 100 * time.Millisecond

// Progress makes a call report how many of its items have finished: fn(done,
// total) is called from one goroutine of the call's own, at most every
// 100 ms while the count changes, and once more when the call ends, before
// the call returns (so that a bar can show the end). For Map and ForEach
// total is the number of items; for Imap it is the number of items read
// from its input so far. Items of a chunk count when the chunk finishes;
// an item that failed counts with KeepGoing. fn must not block for long: it
// delays the next report, not the work. It costs the call one goroutine.
func Progress(fn func(done, total int)) CallOption {
	return func(c *callConfig) { c.progress = fn }
}

// progress reports a call's finished items to the user's function.
type progress struct {
	fn          func(done, total int)
	done, total atomic.Int64
	stop        chan struct{}
	stopped     chan struct{}
}

// startProgress starts reporting to fn, or returns nil if fn is nil.
func startProgress(fn func(done, total int), total int) *progress {
	if fn == nil {
		return nil
	}
	p := &progress{fn: fn, stop: make(chan struct{}), stopped: make(chan struct{})}
	p.total.Store(int64(total))
	go p.run()
	return p
}

func (p *progress) run() {
	defer close(p.stopped)
	t := time.NewTicker(progressEvery)
	defer t.Stop()
	last := [2]int64{-1, -1}
	report := func() {
		now := [2]int64{p.done.Load(), p.total.Load()}
		if now != last {
			last = now
			p.fn(int(now[0]), int(now[1]))
		}
	}
	for {
		select {
		case <-t.C:
			report()
		case <-p.stop:
			report()
			return
		}
	}
}

// add counts n more finished items. A nil progress does nothing.
func (p *progress) add(n int) {
	if p != nil {
		p.done.Add(int64(n))
	}
}

// read counts n more items read from an Imap's input.
func (p *progress) read(n int) {
	if p != nil {
		p.total.Add(int64(n))
	}
}

// end makes the last report and waits for it.
func (p *progress) end() {
	if p != nil {
		close(p.stop)
		<-p.stopped
	}
}
