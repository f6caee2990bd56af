//go:build unix

package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"

	"github.com/mpgo/mp/internal/wire"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are poolworker's Prometheus metrics. They are kept whether or not
// -metrics-listen serves them; each update costs an atomic add.
type metrics struct {
	reg        *prometheus.Registry
	sessions   prometheus.Gauge
	chunks     *prometheus.CounterVec // by outcome
	items      *prometheus.CounterVec // by outcome
	handshakes *prometheus.CounterVec // failures, by reason
	refusals   prometheus.Counter
	uploads    prometheus.Counter
	evictions  prometheus.Counter
}

// Label values. A worker process reports its chunks by outcome: "ok" or the
// kind of the chunk's error (wire.ErrKind*); anything else is counted as
// "other", so that a worker process cannot grow the label set.
var (
	chunkOutcomes = []string{"ok", wire.ErrKindError, wire.ErrKindPanic, wire.ErrKindCanceled, wire.ErrKindDeadline,
		wire.ErrKindDecode, wire.ErrKindEncode, wire.ErrKindUnknown, wire.ErrKindInit, "other"}
	itemOutcomes     = []string{"ok", "error", "other"}
	handshakeReasons = []string{"auth", "version", "not_mp", "timeout", "closed", "shed", "other"}
)

// newMetrics returns poolworker's metrics in a registry of their own, with
// the Go runtime's and the process's. workers and cacheBytes are read at
// each scrape.
func newMetrics(workers func() int, cacheBytes func() int64) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mp_poolworker_sessions",
			Help: "Drivers' connections that passed the handshake and have not ended: in setup, or served by a worker process.",
		}),
		chunks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mp_poolworker_chunks_total",
			Help: "Chunks the worker processes answered, by outcome: ok, or the kind of the chunk's error.",
		}, []string{"outcome"}),
		items: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mp_poolworker_items_total",
			Help: "Items of chunks the worker processes ran, by outcome: ok (the function returned a result) or error (the item whose function failed).",
		}, []string{"outcome"}),
		handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mp_poolworker_handshake_failures_total",
			Help: "Connections whose handshake failed, by reason: auth (wrong token), version, not_mp (not an mp driver), timeout, closed (the peer hung up), other.",
		}, []string{"reason"}),
		refusals: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mp_poolworker_setup_refusals_total",
			Help: "Authenticated drivers refused during setup (wrong system, executable too large or not runnable here, protocol error); the reason is in the log.",
		}),
		uploads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mp_poolworker_uploads_total",
			Help: "Executables received from drivers and stored in the cache.",
		}),
		evictions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mp_poolworker_cache_evictions_total",
			Help: "Executables removed from the cache to keep it under -cache-max.",
		}),
	}
	for _, o := range chunkOutcomes {
		m.chunks.WithLabelValues(o)
	}
	for _, o := range itemOutcomes {
		m.items.WithLabelValues(o)
	}
	for _, r := range handshakeReasons {
		m.handshakes.WithLabelValues(r)
	}
	m.reg.MustRegister(m.sessions, m.chunks, m.items, m.handshakes, m.refusals, m.uploads, m.evictions,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mp_poolworker_worker_processes",
			Help: "Worker processes running.",
		}, func() float64 { return float64(workers()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mp_poolworker_cache_bytes",
			Help: "Bytes of executables in the cache directory, uploads in progress included.",
		}, func() float64 { return float64(cacheBytes()) }),
		collectors.NewBuildInfoCollector(),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// handshakeFailed counts a failed handshake.
func (m *metrics) handshakeFailed(err error) {
	m.handshakes.WithLabelValues(handshakeReason(err)).Inc()
}

// handshakeShed counts a connection closed before its handshake because
// too many were awaiting theirs (see server.admit).
func (m *metrics) handshakeShed() {
	m.handshakes.WithLabelValues("shed").Inc()
}

// handshakeReason is the label of a handshake error.
func handshakeReason(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, wire.ErrAuth):
		return "auth"
	case errors.Is(err, wire.ErrVersion):
		return "version"
	case errors.Is(err, wire.ErrNotMP):
		return "not_mp"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, os.ErrDeadlineExceeded):
		return "closed"
	}
	return "other"
}

// label returns o if it is in known, or "other".
func label(o string, known []string) string {
	for _, k := range known {
		if o == k {
			return o
		}
	}
	return "other"
}

// maxCountsLine bounds a line of counts from a worker process; a longer one
// is skipped.
const maxCountsLine = 4096

// readCounts reads a worker process's counts from r until EOF or an error
// (spec.md, "Counts"), and adds what each report adds to the totals seen
// so far to the counters. Each report holds cumulative totals, so a report
// lost or merged with the next costs nothing.
func (m *metrics) readCounts(r io.Reader) {
	br := bufio.NewReaderSize(r, maxCountsLine)
	seen := map[string]uint64{} // "chunks/outcome" or "items/outcome": last total
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			for errors.Is(err, bufio.ErrBufferFull) { // too long: skip it
				_, err = br.ReadSlice('\n')
			}
			continue
		}
		if err != nil {
			return
		}
		var c struct{ Chunks, Items map[string]uint64 }
		if json.Unmarshal(line, &c) != nil {
			continue
		}
		add(m.chunks, "chunks/", c.Chunks, chunkOutcomes, seen)
		add(m.items, "items/", c.Items, itemOutcomes, seen)
	}
}

// add adds to vec, by outcome, what totals holds beyond the totals seen
// before, and records them in seen. Unknown outcomes are summed as "other".
func add(vec *prometheus.CounterVec, prefix string, totals map[string]uint64, known []string, seen map[string]uint64) {
	sums := map[string]uint64{}
	for o, n := range totals {
		sums[label(o, known)] += n
	}
	for o, n := range sums {
		key := prefix + o
		if n > seen[key] {
			vec.WithLabelValues(o).Add(float64(n - seen[key]))
			seen[key] = n
		}
	}
}
