package pool

import (
	"cmp"
	"context"
	"fmt"
	"reflect"
	"slices"
)

// A Waitable is an [AsyncResult] of any result type, for [Wait].
type Waitable interface {
	// Done returns a channel closed when the call has finished.
	Done() <-chan struct{}
	finishedAt() uint64
}

// Wait waits until n of the calls rs have finished, or ctx is done, as
// Ray's ray.wait (a deadline on ctx is its timeout). It returns the indexes
// in rs of the first n calls to finish, in the order they finished, and of
// the others, in the order of rs; "finished" means successfully or not: Get
// tells which. If ctx is done first, done holds those finished by then and
// err is ctx.Err(). n must be from 0 to len(rs). Wait costs a select over
// the unfinished calls each time one finishes: for thousands of calls and
// a large n, wait in smaller groups.
func Wait(ctx context.Context, n int, rs ...Waitable) (done, pending []int, err error) {
	if n < 0 || n > len(rs) {
		return nil, nil, fmt.Errorf("pool.Wait: n is %d, but %d results were given: want 0 to %d", n, len(rs), len(rs))
	}
	for i, r := range rs {
		if r == nil || reflect.ValueOf(r).IsNil() {
			return nil, nil, fmt.Errorf("pool.Wait: result %d is nil", i)
		}
	}
	finished := make([]bool, len(rs))
	count := 0
	poll := func() {
		for i, r := range rs {
			if !finished[i] {
				select {
				case <-r.Done():
					finished[i] = true
					count++
				default:
				}
			}
		}
	}
	poll()
	for count < n && err == nil {
		cases := []reflect.SelectCase{{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())}}
		for i, r := range rs {
			if !finished[i] {
				cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(r.Done())})
			}
		}
		if chosen, _, _ := reflect.Select(cases); chosen == 0 {
			err = ctx.Err()
		}
		poll()
	}
	for i := range rs {
		if finished[i] {
			done = append(done, i)
		}
	}
	slices.SortFunc(done, func(a, b int) int { return cmp.Compare(rs[a].finishedAt(), rs[b].finishedAt()) })
	if len(done) > n {
		done = done[:n]
	}
	taken := make([]bool, len(rs))
	for _, i := range done {
		taken[i] = true
	}
	for i := range rs {
		if !taken[i] {
			pending = append(pending, i)
		}
	}
	return done, pending, err
}
