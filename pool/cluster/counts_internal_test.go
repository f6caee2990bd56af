package cluster

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"reflect"
	"testing"
)

// A reporter writes cumulative totals, one JSON line per report, and its
// last report, written by close, holds every chunk counted.
func TestReporter(t *testing.T) {
	var none *reporter // counts nothing, and does not fail
	none.chunk(outcomeOK, 1, 0)
	none.close()

	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	r := newReporter(pw)
	for range 5 {
		r.chunk(outcomeOK, 10, 0)
	}
	r.chunk("panic", 3, 1)
	r.close()
	var last counts
	lines := 0
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		lines++
		last = counts{}
		if err := json.Unmarshal(sc.Bytes(), &last); err != nil {
			t.Fatalf("report %q: %v", sc.Bytes(), err)
		}
	}
	want := counts{Chunks: map[string]uint64{"ok": 5, "panic": 1}, Items: map[string]uint64{"ok": 53, "error": 1}}
	if lines == 0 || !reflect.DeepEqual(last, want) {
		t.Fatalf("%d reports, the last %+v; want %+v", lines, last, want)
	}
}

// The cost a worker process pays per chunk for its counts.
func BenchmarkReporterChunk(b *testing.B) {
	pr, pw, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	defer pr.Close()
	go io.Copy(io.Discard, pr)
	r := newReporter(pw)
	defer r.close()
	results := make([]int, 100)
	b.ReportAllocs()
	for b.Loop() {
		r.chunk(outcomeOK, lenOf(results), 0)
	}
}
