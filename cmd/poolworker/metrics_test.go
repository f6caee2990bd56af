//go:build unix

package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// exposed returns the value of series (as exposed, with its labels) on
// s's /metrics.
func exposed(t *testing.T, s *server, series string) float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	s.opsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d\n%s", rec.Code, rec.Body)
	}
	v, ok := metric(rec.Body.String(), series)
	if !ok {
		t.Fatalf("/metrics has no %s:\n%s", series, rec.Body)
	}
	return v
}

// readCounts adds what each report adds to the totals before it; unknown
// outcomes count as other, and a line too long or not JSON is skipped.
func TestReadCounts(t *testing.T) {
	s := newServer(config{cacheDir: t.TempDir()}, nil)
	in := strings.Join([]string{
		`{"chunks":{"ok":2},"items":{"ok":20}}`,
		`{"chunks":{"ok":5,"panic":1},"items":{"ok":50,"error":1}}`,
		`not json`,
		`{"chunks":{"ok":` + strings.Repeat(" ", 2*maxCountsLine) + `9}}`,
		`{"chunks":{"ok":4,"panic":1,"weird":3,"odd":4},"items":{"ok":50,"error":1}}`, // ok went down: ignored
		`{"chunks":{"ok":6,"panic":1,"weird":3,"odd":4},"items":{"ok":60,"error":1}}`,
		`{"chunks":{"ok":7}`, // no newline at EOF: cut short, not counted
	}, "\n")
	s.metrics.readCounts(strings.NewReader(in))
	for _, tt := range []struct {
		series string
		want   float64
	}{
		{`mp_poolworker_chunks_total{outcome="ok"}`, 6},
		{`mp_poolworker_chunks_total{outcome="panic"}`, 1},
		{`mp_poolworker_chunks_total{outcome="other"}`, 7},
		{`mp_poolworker_chunks_total{outcome="error"}`, 0},
		{`mp_poolworker_items_total{outcome="ok"}`, 60},
		{`mp_poolworker_items_total{outcome="error"}`, 1},
	} {
		if got := exposed(t, s, tt.series); got != tt.want {
			t.Errorf("%s = %v, want %v", tt.series, got, tt.want)
		}
	}
}
