package pooltest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mpgo/mp/pool"
)

func init() {
	pool.MustRegisterActor(NewTally)
	pool.MustRegisterMethod((*Tally).Add)
	pool.MustRegisterMethod((*Tally).History)
	pool.MustRegisterMethod((*Tally).Pid)
	pool.MustRegisterMethod((*Tally).Exit)
	pool.MustRegisterMethodErr((*Tally).Fail)
	pool.MustRegisterMethodErr((*Tally).Exclusive)
	pool.MustRegisterMethodErr((*Tally).Meet)
	pool.MustRegisterMethodCtx((*Tally).Block)
}

// Tally is the actor the suite uses: a running sum and the log of what was
// added, in the order the calls ran.
type Tally struct {
	sum  int
	log  []int
	busy bool
}

// NewTally returns a Tally starting at start, or an error for a negative
// start.
func NewTally(start int) (*Tally, error) {
	if start < 0 {
		return nil, fmt.Errorf("negative start %d", start)
	}
	return &Tally{sum: start}, nil
}

// Add adds n and returns the sum.
func (t *Tally) Add(n int) int {
	t.sum += n
	t.log = append(t.log, n)
	return t.sum
}

// History returns what was added, in order.
func (t *Tally) History(struct{}) []int { return t.log }

// Pid returns the process the actor lives in.
func (t *Tally) Pid(struct{}) int { return os.Getpid() }

// Exit ends the actor's process with code: its worker is lost.
func (t *Tally) Exit(code int) int {
	os.Exit(code)
	return 0
}

// Fail returns an error with msg.
func (t *Tally) Fail(msg string) (int, error) { return 0, errors.New(msg) }

// Exclusive holds the actor for d and fails if another call holds it too.
func (t *Tally) Exclusive(d time.Duration) (bool, error) {
	if t.busy {
		return false, errors.New("two calls ran on one actor at once")
	}
	t.busy = true
	time.Sleep(d)
	t.busy = false
	return true, nil
}

// Meet connects to addr and returns the line it reads there: it returns
// only once the other end writes, which the suite does when every actor
// it waits for has connected.
func (t *Tally) Meet(addr string) (string, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(patience))
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

// Block waits for its context to end.
func (t *Tally) Block(ctx context.Context, _ struct{}) (int, error) {
	<-ctx.Done()
	return t.sum, ctx.Err()
}

// Actors: state lives on one worker across calls, calls to one actor run
// one at a time in the order they were made, calls to different actors
// run in parallel, an actor holds its worker until closed, and a method's
// error or panic leaves the actor alive.
func (s *suite) actors(t *testing.T) {
	p := s.open(t, pool.Workers(3))
	ctx := testCtx(t)
	w0 := p.Workers()
	a, err := pool.NewActor(ctx, p, NewTally, 10)
	if err != nil {
		t.Fatal(err)
	}
	if w := p.Workers(); w != w0-1 {
		t.Errorf("Workers with one actor = %d, want %d", w, w0-1)
	}
	if v, err := pool.Call(ctx, a, (*Tally).Add, 5); err != nil || v != 15 {
		t.Fatalf("Add(5) = %d, %v; want 15", v, err)
	}
	_, err = pool.CallErr(ctx, a, (*Tally).Fail, "no luck")
	if err == nil || !strings.Contains(err.Error(), "no luck") {
		t.Fatalf("Fail = %v", err)
	}
	var te *pool.TaskError
	if !errors.As(err, &te) {
		t.Fatalf("a method's error is a %T, want a *pool.TaskError", err)
	}
	// Calls made one after another run in that order, one at a time.
	adds := make([]*pool.AsyncResult[int], 100)
	for i := range adds {
		adds[i] = pool.CallAsync(ctx, a, (*Tally).Add, i)
	}
	want := 15
	for i, r := range adds {
		want += i
		if v, err := r.Get(ctx); err != nil || v != want {
			t.Fatalf("Add(%d) = %d, %v; want %d", i, v, err, want)
		}
	}
	hist, err := pool.Call(ctx, a, (*Tally).History, struct{}{})
	if err != nil || !slices.Equal(hist, append([]int{5}, ints(100)...)) {
		t.Fatalf("History = %v, %v; want 5 then 0..99", hist, err)
	}
	excl := make([]*pool.AsyncResult[bool], 8)
	for i := range excl {
		excl[i] = pool.CallAsyncErr(ctx, a, (*Tally).Exclusive, time.Millisecond)
	}
	for _, r := range excl {
		if _, err := r.Get(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// A call cancelled while it runs returns the context's error; the
	// actor lives on.
	callCtx, cancel := context.WithCancel(ctx)
	blocked := pool.CallAsyncCtx(callCtx, a, (*Tally).Block, struct{}{})
	time.AfterFunc(50*time.Millisecond, cancel)
	if _, err := blocked.Get(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled call = %v, want context.Canceled", err)
	}
	if v, err := pool.Call(ctx, a, (*Tally).Add, 0); err != nil || v != want {
		t.Fatalf("Add(0) after a cancelled call = %d, %v; want %d", v, err, want)
	}
	// The other workers run other calls meanwhile.
	if got, err := pool.Map(ctx, p, Square, ints(50)); err != nil || !slices.Equal(got, squares(50)) {
		t.Fatalf("Map beside an actor = %v, %v", got, err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("Close again = %v", err)
	}
	if w := p.Workers(); w != w0 {
		t.Errorf("Workers after Close = %d, want %d", w, w0)
	}
	if _, err := pool.Call(ctx, a, (*Tally).Add, 1); !errors.Is(err, pool.ErrActorLost) {
		t.Fatalf("Call after Close = %v, want ErrActorLost", err)
	}
	// A constructor's error is NewActor's, and the worker is given back.
	if _, err := pool.NewActor(ctx, p, NewTally, -1); err == nil || !strings.Contains(err.Error(), "negative start -1") {
		t.Fatalf("NewActor(-1) = %v", err)
	}
	if w := p.Workers(); w != w0 {
		t.Errorf("Workers after a failed NewActor = %d, want %d", w, w0)
	}
}

// ActorsInParallel: calls to two actors run at once. Each call waits,
// connected to the suite, until both have connected: run one after the
// other, the first would never return.
func (s *suite) actorsInParallel(t *testing.T) {
	p := s.open(t, pool.Workers(3))
	ctx := testCtx(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var calls []*pool.AsyncResult[string]
	for range 2 {
		a, err := pool.NewActor(ctx, p, NewTally, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		calls = append(calls, pool.CallAsyncErr(ctx, a, (*Tally).Meet, ln.Addr().String()))
	}
	var conns []net.Conn
	for len(conns) < 2 {
		ln.(*net.TCPListener).SetDeadline(time.Now().Add(patience))
		c, err := ln.Accept()
		if err != nil {
			t.Fatalf("waiting for both actors to call in: %v (%d did)", err, len(conns))
		}
		defer c.Close()
		conns = append(conns, c)
	}
	for _, c := range conns {
		fmt.Fprintln(c, "met")
	}
	for _, r := range calls {
		if v, err := r.Get(ctx); err != nil || v != "met" {
			t.Fatalf("Meet = %q, %v", v, err)
		}
	}
}

// ActorHoldsWorker: a pool of one worker holds one actor; a second waits
// (bounded by its context) until the first is closed. Closing the pool
// ends its actors: Join does not wait for them.
func (s *suite) actorHoldsWorker(t *testing.T) {
	p := s.open(t, pool.Workers(1))
	ctx := testCtx(t)
	a, err := pool.NewActor(ctx, p, NewTally, 1)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := pool.NewActor(short, p, NewTally, 2); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("NewActor with every worker held = %v, want DeadlineExceeded", err)
	}
	a.Close()
	b, err := pool.NewActor(ctx, p, NewTally, 3)
	if err != nil {
		t.Fatalf("NewActor after Close: %v", err)
	}
	if v, err := pool.Call(ctx, b, (*Tally).Add, 1); err != nil || v != 4 {
		t.Fatalf("Add = %d, %v", v, err)
	}
	p.Close()
	if err := p.Join(ctx); err != nil {
		t.Fatalf("Join with an actor open: %v", err)
	}
	if _, err := pool.Call(ctx, b, (*Tally).Add, 1); !errors.Is(err, pool.ErrClosed) {
		t.Fatalf("Call after the pool closed = %v, want ErrClosed", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("Close after the pool closed = %v", err)
	}
}

// ActorLost: an actor whose worker process dies fails its call and every
// later one with ErrActorLost, and the pool goes on. Backends whose
// workers are goroutines of this process cannot lose one.
func (s *suite) actorLost(t *testing.T) {
	p := s.open(t, pool.Workers(2))
	ctx := testCtx(t)
	a, err := pool.NewActor(ctx, p, NewTally, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	pid, err := pool.Call(ctx, a, (*Tally).Pid, struct{}{})
	if err != nil {
		t.Fatal(err)
	}
	if pid == os.Getpid() {
		t.Skip("the actor lives in this process (goroutine workers): its worker cannot be lost")
	}
	if _, err := pool.Call(ctx, a, (*Tally).Exit, 3); !errors.Is(err, pool.ErrActorLost) {
		t.Fatalf("Call whose worker died = %v, want ErrActorLost", err)
	}
	if _, err := pool.Call(ctx, a, (*Tally).Add, 1); !errors.Is(err, pool.ErrActorLost) {
		t.Fatalf("Call after the worker died = %v, want ErrActorLost", err)
	}
	if got, err := pool.Map(ctx, p, Square, ints(20)); err != nil || !slices.Equal(got, squares(20)) {
		t.Fatalf("Map after an actor was lost = %v, %v", got, err)
	}
	// A method that is not registered cannot run in another process: the
	// error names the line to add.
	b, err := pool.NewActor(ctx, p, NewTally, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_, err = pool.Call(ctx, b, (*Tally).unregistered, 1)
	if !errors.Is(err, pool.ErrNotRegistered) || !strings.Contains(err.Error(), "pool.MustRegisterMethod(") {
		t.Fatalf("an unregistered method = %v, want ErrNotRegistered naming pool.MustRegisterMethod", err)
	}
}

func (t *Tally) unregistered(n int) int { return n }
