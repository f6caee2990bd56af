package backend

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
)

// A Task is one chunk of items of one call, as a backend sees it. Tasks
// are made by the operations of package pool and handed to
// [Backend.Submit]; a backend finishes each exactly once, by running it
// here (Run, RunChecked) or elsewhere (Complete), or by failing it.
type Task struct {
	w     Work
	state atomic.Uint32 // 0 pending, 1 finished
}

// Work is a task's typed part, implemented by package pool.
type Work interface {
	// Context is the context of the task's call.
	Context() context.Context
	// Run runs the items here, storing their results, and returns the
	// error that stopped them (a *pool.TaskError indexed within the task).
	Run() error
	// RunChecked is Run through the cluster's encoding (see Task.RunChecked).
	RunChecked() error
	// Func is the registered function, or an error naming the fix.
	Func() (*Func, error)
	// Len is the number of items.
	Len() int
	// Args is the items, a []T.
	Args() any
	// NewResults is a *[]R to decode results into.
	NewResults() any
	// ResultsAt is a *[]R of length 0 whose capacity is the task's
	// results lo to hi, where the call reads them: what is appended to it,
	// up to hi-lo items, needs no copy when the task completes.
	ResultsAt(lo, hi int) any
	// SetResults stores results (a []R or *[]R) and reports how many.
	SetResults(results any) (int, error)
	// Finish is called once, when the task finishes, with its error.
	Finish(err error)
	// AfterCancel is Task.AfterCancel.
	AfterCancel(f func()) (stop func() bool)
}

// Init makes t the task of w. Package pool calls it once, before Submit.
func (t *Task) Init(w Work) { t.w = w }

// Run runs the task in this process and finishes it. It recovers panics of
// the user function; it never panics itself.
func (t *Task) Run() {
	if t.Done() {
		return
	}
	t.finish(t.w.Run())
}

// RunChecked is Run for a backend that checks encoding (see
// pool.CheckEncoding): if the task's function is registered, its arguments
// and results pass through the encoding the cluster uses, as if they
// crossed to a worker process, so that the function sees, and the caller
// gets, what a cluster pool would give, or the same pool.ErrEncoding. It
// costs an encoding and a decoding of every argument and result. Functions
// that are not registered run as by Run: they cannot run on a cluster at
// all.
func (t *Task) RunChecked() {
	if t.Done() {
		return
	}
	t.finish(t.w.RunChecked())
}

// Context returns the context of the task's call. It is cancelled when the
// call ends, for any reason; a backend running the task remotely should
// then cancel it there.
func (t *Task) Context() context.Context { return t.w.Context() }

// AfterCancel arranges for f to run, in a goroutine of its own, once the
// task's call is cancelled (its Context is done), as
// context.AfterFunc(t.Context(), f) would, and returns a stop function
// with the same meaning as AfterFunc's. It costs less: a call keeps one
// list of such functions for all its tasks, and watches the caller's
// context at most once, instead of a watch per task on the call's context
// (its allocations and its children map).
func (t *Task) AfterCancel(f func()) (stop func() bool) { return t.w.AfterCancel(f) }

// Func returns the registered function the task runs, or an error wrapping
// pool.ErrNotRegistered that names the function and says what line to add.
func (t *Task) Func() (*Func, error) { return t.w.Func() }

// Len returns the number of items in the task.
func (t *Task) Len() int { return t.w.Len() }

// Args returns the task's arguments as a []T, for a backend to encode.
func (t *Task) Args() any { return t.w.Args() }

// NewResults returns a pointer to an empty []R for a backend to decode
// results into before passing it to Complete.
func (t *Task) NewResults() any { return t.w.NewResults() }

// ResultsAt returns a pointer to a []R of length 0 and capacity hi-lo
// whose items are the task's results lo to hi (0 <= lo <= hi <= Len), for
// a backend to decode the results of items lo to hi straight into: passed
// to Complete, such a slice (for lo = 0) is not copied again. Appending
// past its capacity moves it elsewhere, as append does. Until Complete,
// a backend must write it from one goroutine at a time, and only while
// the task is not done, or while its call can no longer return the
// results (it failed with an error that is not an item's).
func (t *Task) ResultsAt(lo, hi int) any { return t.w.ResultsAt(lo, hi) }

// Complete finishes a task run elsewhere. results must be a []R or *[]R
// with one result per item run, in order; err is the error that stopped
// the chunk, if any. A *pool.TaskError's Index must count from the start
// of the chunk; Complete makes it count from the start of the call's
// input. Complete and Fail after the first have no effect.
func (t *Task) Complete(results any, err error) {
	if t.Done() {
		return
	}
	n, serr := t.w.SetResults(results)
	if serr == nil && err == nil && n != t.w.Len() {
		serr = fmt.Errorf("pool: backend returned %d results for %d items", n, t.w.Len())
	}
	if serr != nil && err == nil {
		err = serr
	}
	t.finish(err)
}

// Fail finishes the task with err without running it, or abandons it
// while it runs: its call fails with err. Fail after the task has finished
// has no effect.
func (t *Task) Fail(err error) {
	if err == nil {
		err = errors.New("pool: task failed with a nil error")
	}
	t.finish(err)
}

// Done reports whether the task has finished.
func (t *Task) Done() bool { return t.state.Load() != 0 }

func (t *Task) finish(err error) {
	if !t.state.CompareAndSwap(0, 1) {
		return
	}
	t.w.Finish(err)
}
