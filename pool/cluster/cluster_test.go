package cluster_test

import (
	"os"
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
	cluster.WorkerMain()
	testenv.Run(m)
}

const crashEnv = "MP_TEST_CRASH_MARKER"

func newCluster(t *testing.T, opts ...pool.Option) pool.Pool {
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
