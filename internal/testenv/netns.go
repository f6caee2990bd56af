package testenv

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// Cmd runs a command, failing t with its output if it fails.
func Cmd(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// RequireNetns skips t, saying why, unless network namespaces can be made
// here: Linux, root and iproute2's ip. what names the tests, for the message.
func RequireNetns(t testing.TB, what string) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skipf("%s need Linux network namespaces", what)
	}
	if os.Geteuid() != 0 {
		t.Skipf("%s need root to create network namespaces (CI runs as root)", what)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skipf("%s need the ip command (iproute2)", what)
	}
}

// Events records a pool's log: it is a slog.Handler, for cluster.Logger.
// The zero value is not ready; use NewEvents.
type Events struct {
	mu   sync.Mutex
	log  []Event
	wake chan struct{} // closed and replaced on each event
}

// An Event is one record: its time, message, the worker it names, and all
// its attributes as " key=value" text.
type Event struct {
	At     time.Time
	Msg    string
	Worker string
	Attrs  string
}

// NewEvents returns an empty recorder.
func NewEvents() *Events { return &Events{wake: make(chan struct{})} }

func (e *Events) Enabled(context.Context, slog.Level) bool { return true }
func (e *Events) WithAttrs([]slog.Attr) slog.Handler       { return e }
func (e *Events) WithGroup(string) slog.Handler            { return e }

// Handle records r.
func (e *Events) Handle(_ context.Context, r slog.Record) error {
	ev := Event{At: r.Time, Msg: r.Message}
	var b strings.Builder
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "worker" {
			ev.Worker = a.Value.String()
		}
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	ev.Attrs = b.String()
	e.Add(ev)
	return nil
}

// Add records ev.
func (e *Events) Add(ev Event) {
	e.mu.Lock()
	e.log = append(e.log, ev)
	close(e.wake)
	e.wake = make(chan struct{})
	e.mu.Unlock()
}

// Find returns the events msg whose worker contains who, at or after t0.
func (e *Events) Find(msg, who string, t0 time.Time) []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Event
	for _, ev := range e.log {
		if ev.Msg == msg && strings.Contains(ev.Worker, who) && !ev.At.Before(t0) {
			out = append(out, ev)
		}
	}
	return out
}

// Wait waits for an event msg about who, failing t after timeout (a
// generous bound that only stops a broken test from hanging).
func (e *Events) Wait(t testing.TB, msg, who string, timeout time.Duration) Event {
	t.Helper()
	deadline := time.After(timeout)
	for {
		e.mu.Lock()
		wake := e.wake
		e.mu.Unlock()
		if evs := e.Find(msg, who, time.Time{}); len(evs) > 0 {
			return evs[0]
		}
		select {
		case <-wake:
		case <-deadline:
			t.Fatalf("no %q event for %q within %v; the log:\n%s", msg, who, timeout, e)
		}
	}
}

// String lists the events, one a line.
func (e *Events) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var b strings.Builder
	for _, ev := range e.log {
		fmt.Fprintf(&b, "  %s%s\n", ev.Msg, ev.Attrs)
	}
	return b.String()
}
