package pool_test

import (
	"context"
	"errors"
	"github.com/mpgo/mp/internal/backend"
	"strings"
	"testing"

	"github.com/mpgo/mp/pool"
	"github.com/mpgo/mp/pool/local"
)

// Two libraries that both register the same function do not clash; a
// different function under a taken name cannot be had (names come from the
// functions, so only the same function has its name).
func TestRegisterComposes(t *testing.T) {
	for range 2 {
		if err := pool.Register(strings.ToUpper); err != nil {
			t.Fatalf("Register(strings.ToUpper): %v", err)
		}
	}
}

func identity[T any](x T) T { return x }

// The error for an unregistered function of another module, or an
// instantiated generic function, says to wrap it in a function of one's
// own package instead of telling the user to edit package strings.
func TestUnregisteredElsewhere(t *testing.T) {
	p, err := local.New(pool.Workers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	for _, tc := range []struct {
		err  error
		want string
	}{
		{pool.Register(identity[int]), "instantiated generic"},
		{remoteErr(ctx, strings.ToLower), "wrap it in a top-level function of your own package"},
		{remoteErr(ctx, identity[string]), "wrap it in a top-level function of your own package"},
	} {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("got %v, want it to say %q", tc.err, tc.want)
		}
	}
}

// remoteErr is the error a pool that needs registration gives for fn: a
// Task's Func, as the cluster backend asks it.
func remoteErr(ctx context.Context, fn func(string) string) error {
	var err error
	p := &funcPool{}
	_, _ = pool.Apply(ctx, backend.Wrap(p).(*pool.Pool), fn, "x")
	err = p.err
	if !errors.Is(err, pool.ErrNotRegistered) {
		return errors.New("not ErrNotRegistered: " + err.Error())
	}
	return err
}

// funcPool is a Pool that only asks each task for its registered function,
// as a backend running functions in other processes does.
type funcPool struct{ err error }

func (p *funcPool) Workers() int { return 1 }
func (p *funcPool) Begin() error { return nil }
func (p *funcPool) End()         {}
func (p *funcPool) Submit(ctx context.Context, t *backend.Task) error {
	_, p.err = t.Func()
	t.Fail(p.err)
	return nil
}
func (p *funcPool) Close() error                   { return nil }
func (p *funcPool) Terminate() error               { return nil }
func (p *funcPool) Join(ctx context.Context) error { return nil }
func (p *funcPool) Pin(ctx context.Context) (backend.Pinned, error) {
	return nil, errors.New("funcPool: no actors")
}

func func7(x int) int { return x }

// A top-level function whose name looks like a closure's is one.
func TestRegisterFuncNamedLikeClosure(t *testing.T) {
	if err := pool.Register(func7); err != nil {
		t.Fatalf("Register(func7): %v", err)
	}
	if err := pool.Register(func(x int) int { return x }); err == nil || !strings.Contains(err.Error(), "closure") {
		t.Fatalf("Register(a closure) = %v", err)
	}
}
