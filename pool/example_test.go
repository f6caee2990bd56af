package pool_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mpgo/mp/pool"
	"github.com/mpgo/mp/pool/local"
)

// init registers cube, so that the workers of the cluster backend, which
// find functions by name, can run it. Local pools need no registration.
func init() {
	pool.MustRegister(cube)
}

func square(n int) int { return n * n }

func cube(n int) int { return n * n * n }

func ExampleMap() {
	p, err := local.New()
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	squares, err := pool.Map(context.Background(), p, square, []int{1, 2, 3, 4, 5})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(squares)
	// Output: [1 4 9 16 25]
}

func ExampleMapErr() {
	p, err := local.New()
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	_, err = pool.MapErr(context.Background(), p, strconv.Atoi, []string{"1", "2", "three", "4"})
	var te *pool.TaskError
	if errors.As(err, &te) {
		fmt.Println("item", te.Index, "failed:", te.Err)
	}
	// Output: item 2 failed: strconv.Atoi: parsing "three": invalid syntax
}

func invert(n int) int { return 100 / n }

func ExampleMap_panic() {
	p, err := local.New()
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	_, err = pool.Map(context.Background(), p, invert, []int{1, 2, 0, 4})
	var pe *pool.PanicError
	if errors.As(err, &pe) {
		fmt.Println(pe.Value)
	}
	// Output: runtime error: integer divide by zero
}

// slow waits for d, or until ctx is cancelled.
func slow(ctx context.Context, d time.Duration) (time.Duration, error) {
	select {
	case <-time.After(d):
		return d, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func ExampleMapCtx() {
	p, err := local.New()
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(10*time.Millisecond, cancel)

	_, err = pool.MapCtx(ctx, p, slow, []time.Duration{time.Hour, time.Hour})
	fmt.Println(err)
	// Output: context canceled
}

// naturals yields 0, 1, 2, … forever.
func naturals(yield func(int) bool) {
	for i := 0; ; i++ {
		if !yield(i) {
			return
		}
	}
}

func ExampleImap() {
	p, err := local.New()
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	for sq, err := range pool.Imap(context.Background(), p, square, naturals) {
		if err != nil {
			log.Fatal(err)
		}
		if sq > 50 {
			break // stops the call; naturals is not read further
		}
		fmt.Print(sq, " ")
	}
	fmt.Println()
	// Output: 0 1 4 9 16 25 36 49
}

func ExampleImapUnordered() {
	p, err := local.New()
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	// Results arrive in completion order; their sum does not depend on it.
	sum := 0
	for sq, err := range pool.ImapUnordered(context.Background(), p, square, slices.Values([]int{1, 2, 3, 4, 5})) {
		if err != nil {
			log.Fatal(err)
		}
		sum += sq
	}
	fmt.Println(sum)
	// Output: 55
}

func ExampleApply() {
	p, err := local.New()
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	s, err := pool.Apply(context.Background(), p, strings.ToUpper, "hello")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(s)
	// Output: HELLO
}

func ExampleApplyAsync() {
	p, err := local.New()
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()

	res := pool.ApplyAsync(ctx, p, square, 12)
	// Callbacks run when the call finishes, before Get returns.
	res.Then(
		func(v int) { fmt.Println("callback:", v) },
		func(err error) { fmt.Println("error callback:", err) },
	)
	v, err := res.Get(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("get:", v)
	// Output:
	// callback: 144
	// get: 144
}

// powArgs holds the arguments of power, as a tuple does for Python's
// starmap.
type powArgs struct{ Base, Exp int }

func power(a powArgs) int {
	r := 1
	for range a.Exp {
		r *= a.Base
	}
	return r
}

// Python's starmap is Map over a slice of structs.
func ExampleMap_starmap() {
	p, err := local.New()
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	args := []powArgs{{2, 5}, {3, 2}, {10, 3}}
	res, err := pool.Map(context.Background(), p, power, args)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res)
	// Output: [32 9 1000]
}

// Functions that the cluster backend's workers run are registered in an
// init function (see the top of this file), by which they are known under
// their fully qualified names. Registering one again does nothing.
func ExampleRegister() {
	fmt.Println(pool.Register(cube))

	// Closures carry state that cannot cross a process boundary.
	k := 2
	err := pool.Register(func(n int) int { return n * k })
	fmt.Println(err != nil)
	// Output:
	// <nil>
	// true
}

// A shape stored in an interface field: to cross to a cluster worker with
// its type, each concrete type is registered.
type Shape interface{ Area() float64 }

type Rect struct{ W, H float64 }

func (r Rect) Area() float64 { return r.W * r.H }

type Circle struct{ R float64 }

func (c Circle) Area() float64 { return 3 * c.R * c.R }

type Measured struct {
	Shape Shape
	Area  float64
}

func measure(s Shape) Measured { return Measured{s, s.Area()} }

func init() {
	pool.MustRegisterType[Rect]()
	pool.MustRegisterType[Circle]()
	pool.MustRegister(measure)
}

func ExampleRegisterType() {
	// CheckEncoding(true) makes this local pool encode values as a cluster
	// pool would (it is the default under go test).
	p, err := local.New(pool.CheckEncoding(true))
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	ms, err := pool.Map(context.Background(), p, measure, []Shape{Rect{2, 3}, Circle{1}})
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range ms {
		fmt.Printf("%T %v\n", m.Shape, m.Area)
	}
	// Output:
	// pool_test.Rect 6
	// pool_test.Circle 3
}

type secret struct{ V int }

func (s secret) Area() float64 { return 0 }

func ExampleErrEncoding() {
	p, err := local.New(pool.CheckEncoding(true))
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	// secret is not registered: a cluster could not send it, so neither
	// does a local pool that checks encoding.
	_, err = pool.Map(context.Background(), p, measure, []Shape{Rect{1, 1}, secret{}})
	var te *pool.TaskError
	fmt.Println(errors.Is(err, pool.ErrEncoding), errors.As(err, &te) && te.Index == 1)
	// Output: true true
}

// Counter is an actor's state: it stays on one worker across calls.
type Counter struct{ n int }

func NewCounter(start int) (*Counter, error) { return &Counter{n: start}, nil }

func (c *Counter) Add(k int) int { c.n += k; return c.n }

func init() {
	// For a cluster, as functions are.
	pool.MustRegisterActor(NewCounter)
	pool.MustRegisterMethod((*Counter).Add)
}

func ExampleNewActor() {
	p, err := local.New(pool.Workers(2))
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()

	a, err := pool.NewActor(ctx, p, NewCounter, 10)
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()
	fmt.Println(p.Workers()) // the actor holds one

	// Calls made one after another run in that order, one at a time.
	r1 := pool.CallAsync(ctx, a, (*Counter).Add, 5)
	r2 := pool.CallAsync(ctx, a, (*Counter).Add, 1)
	v1, _ := r1.Get(ctx)
	v2, _ := r2.Get(ctx)
	fmt.Println(v1, v2)
	// Output:
	// 1
	// 15 16
}
