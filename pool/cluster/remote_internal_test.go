package cluster

import (
	"context"
	"errors"
	"testing"
)

// A chunk cancelled while it waited in the worker ends with its context's
// error alone, not a function's *pool.TaskError: the driver must still see
// context.Canceled (or DeadlineExceeded) through errors.Is. It saw an
// opaque error with the same text, which AsyncQueued caught now and then,
// when the worker's answer beat the call's own cancellation.
func TestRemoteContextErrors(t *testing.T) {
	for _, want := range []error{context.Canceled, context.DeadlineExceeded} {
		got := fromRemote(toRemote(want), "w")
		if !errors.Is(got, want) {
			t.Errorf("%v across the wire = %v (%T), which is not %v", want, got, got, want)
		}
	}
}
