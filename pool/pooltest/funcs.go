package pooltest

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mpgo/mp/pool"
)

// The functions the suite runs. They are registered so that backends that
// run functions in other processes find them; those processes must import
// this package (a test binary that calls Run does).
func init() {
	pool.MustRegister(Square)
	pool.MustRegister(PanicOnNegative)
	pool.MustRegister(Initialized)
	pool.MustRegister(Pair)
	pool.MustRegisterErr(FailOnNegative)
	pool.MustRegisterCtx(BlockOnNegative)
	pool.MustRegisterCtx(Sleep)
	pool.MustRegisterCtx(FailOrBlock)
	pool.MustRegister(Trivial)
	pool.MustRegister(Sample)
}

// Square returns x*x.
func Square(x int) int { return x * x }

// FailOnNegative returns x, or an error for a negative x.
func FailOnNegative(x int) (int, error) {
	if x < 0 {
		return 0, fmt.Errorf("negative item %d", x)
	}
	return x, nil
}

// PanicOnNegative returns x, and panics for a negative x.
func PanicOnNegative(x int) int {
	if x < 0 {
		panic(fmt.Sprintf("boom %d", x))
	}
	return x
}

// BlockOnNegative returns x, and for a negative x waits until its context is
// cancelled.
func BlockOnNegative(ctx context.Context, x int) (int, error) {
	if x < 0 {
		<-ctx.Done()
		return 0, ctx.Err()
	}
	return x, nil
}

// FailOrBlock fails for 0, waits until its context is cancelled for a
// negative x, and returns any other x.
func FailOrBlock(ctx context.Context, x int) (int, error) {
	if x == 0 {
		return 0, fmt.Errorf("item 0 fails")
	}
	return BlockOnNegative(ctx, x)
}

// Sleep sleeps for d, or until its context is cancelled, and returns d.
func Sleep(ctx context.Context, d time.Duration) (time.Duration, error) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return d, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// A Point is a struct argument, as starmap's tuples become in Go.
type Point struct {
	X, Y int
	Tag  string
}

// Pair joins a Point's fields: it checks that struct arguments and string
// results cross intact.
func Pair(p Point) string { return fmt.Sprintf("%d,%d,%s", p.X, p.Y, strings.ToUpper(p.Tag)) }

var initRuns atomic.Int64

// Init counts initializer runs in this process.
func Init() error {
	initRuns.Add(1)
	return nil
}

// Initialized returns 1 if Init has run in this process.
func Initialized(int) int {
	if initRuns.Load() > 0 {
		return 1
	}
	return 0
}

// InitOption is built at package level so that every process of a program
// (worker processes included) records the initializer by name.
var InitOption = pool.Initializer(Init)
