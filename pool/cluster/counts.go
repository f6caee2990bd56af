package cluster

import (
	"encoding/json"
	"os"
	"reflect"
	"sync"
	"time"
)

// countsInterval is the shortest time between two reports: a worker
// process running many short chunks writes at most this often.
const countsInterval = 100 * time.Millisecond

// Outcomes of a chunk besides the kinds of wire.RemoteError.
const outcomeOK = "ok"

// counts is what a worker process reports: cumulative totals since it
// started, by outcome. Its JSON form is one line on the pipe.
type counts struct {
	Chunks map[string]uint64 `json:"chunks"`
	Items  map[string]uint64 `json:"items"`
}

// reporter keeps a worker process's counts and writes them to the
// poolworker's pipe: after a change, at most every countsInterval, and once
// more when it closes. Counting costs a mutex and two map updates per chunk,
// about 100ns and no allocation (BenchmarkReporterChunk); a report is one
// small write. A nil *reporter counts nothing.
type reporter struct {
	f    *os.File
	kick chan struct{} // a change to report; capacity 1
	done chan struct{} // closed by close
	wg   sync.WaitGroup

	mu  sync.Mutex
	now counts
}

// newReporter returns a reporter writing to f, or nil if f is nil.
func newReporter(f *os.File) *reporter {
	if f == nil {
		return nil
	}
	r := &reporter{
		f:    f,
		kick: make(chan struct{}, 1),
		done: make(chan struct{}),
		now:  counts{Chunks: map[string]uint64{}, Items: map[string]uint64{}},
	}
	r.wg.Add(1)
	go r.loop()
	return r
}

// chunk counts one answered chunk: its outcome ("ok" or the kind of its
// error), the items whose function returned (ok), and the item that failed
// (failed, 0 or 1).
func (r *reporter) chunk(outcome string, ok, failed int) {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.now.Chunks[outcome]++
	if ok > 0 {
		r.now.Items[outcomeOK] += uint64(ok)
	}
	if failed > 0 {
		r.now.Items["error"] += uint64(failed)
	}
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// loop writes a report after each change, at most every countsInterval,
// until close.
func (r *reporter) loop() {
	defer r.wg.Done()
	for {
		select {
		case <-r.kick:
		case <-r.done:
			return
		}
		if r.write() != nil {
			return // the poolworker is gone: nobody reads
		}
		select {
		case <-time.After(countsInterval):
		case <-r.done:
			return
		}
	}
}

// write writes the current counts as one line.
func (r *reporter) write() error {
	r.mu.Lock()
	b, err := json.Marshal(r.now)
	r.mu.Unlock()
	if err != nil {
		return err
	}
	_, err = r.f.Write(append(b, '\n'))
	return err
}

// close writes the final counts and closes the pipe. It waits at most a
// second for a poolworker that does not read.
func (r *reporter) close() {
	if r == nil {
		return
	}
	close(r.done)
	r.wg.Wait()
	wrote := make(chan struct{})
	go func() {
		r.write()
		close(wrote)
	}()
	select {
	case <-wrote:
	case <-time.After(time.Second):
	}
	r.f.Close()
}

// lenOf is the length of results, a []R, or 0 if it is not a slice.
func lenOf(results any) int {
	if v := reflect.ValueOf(results); v.Kind() == reflect.Slice {
		return v.Len()
	}
	return 0
}
