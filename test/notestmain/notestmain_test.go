// Package notestmain is a test binary without a TestMain, as a user's first
// test of a cluster pool often is. Its worker processes must run no test,
// and cluster.New must say what to add.
package notestmain

import (
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mpgo/mp/pool"
	"github.com/mpgo/mp/pool/cluster"
)

func double(x int) int { return 2 * x }

func init() { pool.MustRegister(double) }

var runs atomic.Int32

func TestNewWithoutTestMain(t *testing.T) {
	if cluster.IsWorker() {
		// A worker process that runs tests would get here; with the
		// arguments the driver gives it, none runs.
		os.Exit(42)
	}
	runs.Add(1)
	p, err := cluster.New(pool.Workers(1))
	if err == nil {
		p.Terminate()
		t.Fatal("cluster.New succeeded in a test binary without TestMain")
	}
	for _, want := range []string{"needs a TestMain that calls cluster.WorkerMain", "cluster.WorkerMain()", "os.Exit(m.Run())", "with status 0", "its last output:\n\tPASS"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if runs.Load() != 1 {
		t.Errorf("the test ran %d times in this process", runs.Load())
	}
}
