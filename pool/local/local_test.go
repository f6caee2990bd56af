package local_test

import (
	"context"
	"errors"
	"github.com/mpgo/mp/internal/backend"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mpgo/mp/pool"
	"github.com/mpgo/mp/pool/local"
	"github.com/mpgo/mp/pool/pooltest"
)

func TestConformance(t *testing.T) {
	pooltest.Run(t, func(t *testing.T, opts ...pool.Option) *pool.Pool {
		p, err := local.New(opts...)
		if err != nil {
			t.Fatal(err)
		}
		return p
	})
}

func TestBadOptions(t *testing.T) {
	for _, tc := range []struct {
		opt  pool.Option
		want string
	}{
		{pool.Workers(0), "Workers(0)"},
		{pool.MaxTasksPerWorker(-1), "MaxTasksPerWorker(-1)"},
		{pool.Initializer(nil), "Initializer(nil)"},
		{nil, "nil Option"},
	} {
		_, err := local.New(tc.opt)
		if !errors.Is(err, pool.ErrConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("local.New with %s: %v", tc.want, err)
		}
	}
}

// Local pools run closures and unregistered functions.
func TestClosures(t *testing.T) {
	p, err := local.New(pool.Workers(4))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var calls atomic.Int64
	k := 3
	got, err := pool.Map(context.Background(), p, func(x int) int { calls.Add(1); return x * k }, []int{1, 2, 3})
	if err != nil || !slices.Equal(got, []int{3, 6, 9}) || calls.Load() != 3 {
		t.Fatalf("Map(closure) = %v, %v after %d calls", got, err, calls.Load())
	}
}

// After the first error, Map hands out no new chunks: with one worker and
// chunks of one item, the items after the failing one never run.
func TestMapStopsAfterError(t *testing.T) {
	p, err := local.New(pool.Workers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var ran atomic.Int64
	in := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	_, err = pool.MapErr(context.Background(), p, func(x int) (int, error) {
		ran.Add(1)
		if x == 3 {
			return 0, errors.New("three")
		}
		return x, nil
	}, in, pool.Chunksize(1))
	var te *pool.TaskError
	if !errors.As(err, &te) || te.Index != 3 {
		t.Fatalf("err = %v", err)
	}
	// Item 3 fails; at most the chunk handed to the worker while item 3 ran
	// (the unbuffered queue holds none) may have started.
	if n := ran.Load(); n > 5 {
		t.Fatalf("%d items ran; Map kept handing out work after the error", n)
	}
}

// A closure given to a backend that needs registration is named in the
// error; local pools need none.
func TestRegisterRejects(t *testing.T) {
	k := 2
	err := pool.Register(func(x int) int { return x * k })
	if err == nil || !strings.Contains(err.Error(), "closure") {
		t.Errorf("Register(closure) = %v", err)
	}
	// Registering the same function twice is allowed (two packages may
	// both register one they share).
	if err := pool.Register(double); err != nil {
		t.Fatal(err)
	}
	if err := pool.Register(double); err != nil {
		t.Errorf("Register twice = %v", err)
	}
	var s sq
	if err := pool.Register(s.apply); err == nil || !strings.Contains(err.Error(), "method value") {
		t.Errorf("Register(method value) = %v", err)
	}
	if f, ok := backend.Lookup("github.com/mpgo/mp/pool/local_test.double"); !ok || f.Name() != "github.com/mpgo/mp/pool/local_test.double" {
		t.Errorf("Lookup(double) = %v, %v", f, ok)
	}
}

func double(x int) int { return 2 * x }

type sq struct{}

func (sq) apply(x int) int { return x * x }

// Terminate fails a task whose worker is still running the initializer.
func TestTerminateDuringInitializer(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	p, err := local.New(pool.Workers(1), pool.Initializer(func() error { <-release; return nil }))
	if err != nil {
		t.Fatal(err)
	}
	res := pool.ApplyAsync(context.Background(), p, double, 2)
	time.Sleep(50 * time.Millisecond) // the worker is in the initializer
	p.Terminate()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := res.Get(ctx); !errors.Is(err, pool.ErrTerminated) {
		t.Fatalf("Apply waiting on the initializer after Terminate: %v", err)
	}
}
