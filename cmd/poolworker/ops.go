//go:build unix

package main

import (
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// liveWait is how long /healthz waits for the server's lock before it
// declares the server stuck.
const liveWait = time.Second

// opsHandler serves the operators' endpoints of -metrics-listen:
//
//   - /healthz: 200 while the process answers and the server's state is not
//     deadlocked (its lock is taken within a second); draining is live.
//   - /readyz: 200 while the server accepts drivers; 503 before it listens
//     and from SIGTERM on (draining).
//   - /metrics: Prometheus metrics, in the text exposition format.
func (s *server) opsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if !s.responsive(liveWait) {
			http.Error(w, fmt.Sprintf("stuck: the server's lock was not free within %v", liveWait), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		switch state := s.state(); state {
		case "serving":
			fmt.Fprintln(w, "ready")
		default:
			http.Error(w, state, http.StatusServiceUnavailable)
		}
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	return mux
}

// responsive reports whether the server's lock could be taken within wait.
// A goroutine left waiting for a stuck lock ends if it is ever freed.
func (s *server) responsive(wait time.Duration) bool {
	got := make(chan struct{})
	go func() {
		s.mu.Lock()
		//lint:ignore SA2001 taking the lock is the check: a stuck accept loop holds it
		s.mu.Unlock()
		close(got)
	}()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-got:
		return true
	case <-t.C:
		return false
	}
}

// state is "serving" while the server accepts connections, "draining" once
// Shutdown has begun, and "not listening" before Serve (never with
// -connect, which dials the driver instead).
func (s *server) state() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closing:
		return "draining"
	case len(s.listeners) == 0 && s.cfg.connect == "": // -connect dials instead
		return "not listening"
	}
	return "serving"
}
