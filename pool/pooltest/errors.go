package pooltest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/mpgo/mp/pool"
)

func init() {
	pool.MustRegisterErr(Find)
	pool.MustRegisterError(ErrNotFound)
	pool.MustRegisterErrorType[*CodeError]()
}

// ErrNotFound is a registered sentinel: it keeps its identity everywhere.
var ErrNotFound = errors.New("pooltest: not found")

// errUnregisteredSentinel is not registered: it crosses as its message.
var errUnregisteredSentinel = errors.New("pooltest: unregistered sentinel")

// A CodeError is a registered error type with an exported field.
type CodeError struct{ Code int }

func (e *CodeError) Error() string { return fmt.Sprintf("code %d", e.Code) }

// Find fails in the way its key says.
func Find(key string) (int, error) {
	switch key {
	case "missing":
		return 0, fmt.Errorf("find %q: %w", key, ErrNotFound)
	case "code":
		return 0, fmt.Errorf("find %q: %w", key, &CodeError{Code: 7})
	case "unregistered":
		return 0, fmt.Errorf("find %q: %w", key, errUnregisteredSentinel)
	case "gave up":
		return 0, fmt.Errorf("find %q: %w", key, context.DeadlineExceeded)
	}
	return len(key), nil
}

// Registered errors keep their identity through errors.Is and errors.As on
// every backend, wrapped or not; unregistered ones keep their message and
// lose their identity on every backend alike (a local pool checking
// encoding does as the cluster does).
func (s *suite) registeredErrors(t *testing.T) {
	p := s.open(t, pool.CheckEncoding(true))
	ctx := testCtx(t)
	_, err := pool.ApplyErr(ctx, p, Find, "missing")
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("a wrapped registered sentinel: %v; errors.Is(err, ErrNotFound) is false", err)
	}
	checkTaskError(t, err, "Find", 0, `find "missing": pooltest: not found`)
	_, err = pool.ApplyErr(ctx, p, Find, "code")
	var ce *CodeError
	if !errors.As(err, &ce) || ce.Code != 7 {
		t.Errorf("a registered error type: %v; errors.As gave %v", err, ce)
	}
	_, err = pool.ApplyErr(ctx, p, Find, "gave up")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a wrapped context error: %v; errors.Is(err, context.DeadlineExceeded) is false", err)
	}
	_, err = pool.ApplyErr(ctx, p, Find, "unregistered")
	if errors.Is(err, errUnregisteredSentinel) {
		t.Errorf("an unregistered sentinel kept its identity: a cluster cannot do that, so no backend should")
	}
	checkTaskError(t, err, "Find", 0, "pooltest: unregistered sentinel")
}
