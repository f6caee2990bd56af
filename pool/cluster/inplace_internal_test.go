package cluster

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/mpgo/mp/internal/backend"
	"github.com/mpgo/mp/pool"
)

// work is a backend.Work whose results are out, as package pool's chunks
// are: ResultsAt hands out out's own room, SetResults copies.
type work struct {
	out    []int
	err    error
	copied bool
}

func (w *work) Context() context.Context     { return context.Background() }
func (w *work) Run() error                   { return nil }
func (w *work) RunChecked() error            { return nil }
func (w *work) Func() (*backend.Func, error) { return nil, errors.New("none") }
func (w *work) Len() int                     { return len(w.out) }
func (w *work) Args() any                    { return []int(nil) }
func (w *work) NewResults() any              { return new([]int) }
func (w *work) Finish(err error)             { w.err = err }
func (w *work) ResultsAt(lo, hi int) any     { s := w.out[lo:lo:hi]; return &s }
func (w *work) AfterCancel(f func()) func() bool {
	return context.AfterFunc(w.Context(), f)
}
func (w *work) SetResults(res any) (n int, _ error) {
	var rs []int
	switch v := res.(type) {
	case []int:
		rs = v
	case *[]int:
		rs = *v
	}
	if len(rs) > 0 && &rs[0] != &w.out[0] {
		w.copied = true
	}
	return copy(w.out, rs), nil
}

func newTask(out []int) (*backend.Task, *work) {
	w := &work{out: out}
	t := new(backend.Task)
	t.Init(w)
	return t, w
}

// decode appends xs to the flight's results as DecodeItems does: into
// the room ResultsAt gave.
func decode(f *flight, xs ...int) {
	if f.res == nil {
		f.res = f.t.ResultsAt(f.lo, f.hi)
	}
	p := f.res.(*[]int)
	*p = append(*p, xs...)
}

// A flight's results land in the call's own slice; on an item's error,
// what an earlier attempt left past the results that stand is zeroed.
func TestFlightResultsInPlace(t *testing.T) {
	t.Run("whole", func(t *testing.T) {
		t1, w := newTask(make([]int, 4))
		f := &flight{t: t1, lo: 0, hi: 4}
		decode(f, 1, 2, 3, 4)
		f.finish(nil)
		if !slices.Equal(w.out, []int{1, 2, 3, 4}) || w.err != nil || w.copied {
			t.Errorf("out %v, err %v, copied %v", w.out, w.err, w.copied)
		}
	})
	t.Run("error after a lost attempt", func(t *testing.T) {
		// A lost attempt decoded 9s; the re-run answered two items and
		// failed on the third.
		t1, w := newTask([]int{9, 9, 9, 9})
		f := &flight{t: t1, lo: 0, hi: 4}
		decode(f, 1, 2)
		f.finish(&pool.TaskError{Index: 2, Err: errors.New("boom")})
		if !slices.Equal(w.out, []int{1, 2, 0, 0}) {
			t.Errorf("out %v, want [1 2 0 0]", w.out)
		}
		var te *pool.TaskError
		if !errors.As(w.err, &te) || te.Index != 2 {
			t.Errorf("err %v", w.err)
		}
	})
	t.Run("split, an early part fails", func(t *testing.T) {
		t1, w := newTask([]int{9, 9, 9, 9, 9, 9})
		ps := &parts{}
		a := &flight{t: t1, lo: 0, hi: 3, parts: ps}
		b := &flight{t: t1, lo: 3, hi: 6, parts: ps}
		decode(b, 4, 5, 6)
		b.finish(nil) // answered first
		if w.err != nil || !slices.Equal(w.out[3:], []int{4, 5, 6}) {
			t.Fatalf("after the later part: out %v, err %v", w.out, w.err)
		}
		decode(a, 1)
		a.finish(&pool.TaskError{Index: 1, Err: errors.New("boom")})
		if !slices.Equal(w.out, []int{1, 0, 0, 0, 0, 0}) {
			t.Errorf("out %v, want the first result and zeros", w.out)
		}
		var te *pool.TaskError
		if !errors.As(w.err, &te) || te.Index != 1 {
			t.Errorf("err %v", w.err)
		}
	})
	t.Run("split, all answered", func(t *testing.T) {
		t1, w := newTask(make([]int, 5))
		ps := &parts{}
		a := &flight{t: t1, lo: 0, hi: 2, parts: ps}
		b := &flight{t: t1, lo: 2, hi: 5, parts: ps}
		decode(a, 1, 2)
		decode(b, 3, 4, 5)
		a.finish(nil)
		b.finish(nil)
		if !slices.Equal(w.out, []int{1, 2, 3, 4, 5}) || w.err != nil {
			t.Errorf("out %v, err %v", w.out, w.err)
		}
	})
}
