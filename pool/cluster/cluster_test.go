package cluster_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/mpgo/mp/internal/testenv"
	"github.com/mpgo/mp/pool"
	"github.com/mpgo/mp/pool/cluster"
	"github.com/mpgo/mp/pool/pooltest"
)

// Worker processes re-execute this test binary: they must serve, not test.
func TestMain(m *testing.M) {
	// TestNoWorkersLeft makes restarted workers crash: they find this file.
	if f := os.Getenv(crashEnv); f != "" && cluster.IsWorker() {
		if _, err := os.Stat(f); err == nil {
			os.Exit(7)
		}
	}
	// TestWorkerTakesAnotherPath: workers leave main before cluster.New.
	if os.Getenv(otherPathEnv) != "" && cluster.IsWorker() {
		fmt.Println("no input file given: nothing to do")
		os.Exit(0)
	}
	cluster.WorkerMain()
	testenv.Run(m)
}

const (
	crashEnv     = "MP_TEST_CRASH_MARKER"
	otherPathEnv = "MP_TEST_OTHER_PATH"
)

// A worker process whose main takes another path before cluster.New makes
// New fail with what happened: the exit status, the worker's last output,
// and where the README explains it.
func TestWorkerTakesAnotherPath(t *testing.T) {
	t.Setenv(otherPathEnv, "1")
	p, err := cluster.New(pool.Workers(1))
	if err == nil {
		p.Terminate()
		t.Fatal("New succeeded with workers that never reach it")
	}
	for _, want := range []string{"exited with status 0 before it reached cluster.New", "What runs twice", "no input file given: nothing to do"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func newCluster(t *testing.T, opts ...pool.Option) *pool.Pool {
	t.Helper()
	p, err := cluster.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// The whole conformance suite, on worker processes this pool starts and
// reaches over TCP on loopback.
func TestConformance(t *testing.T) {
	pooltest.Run(t, newCluster)
}
