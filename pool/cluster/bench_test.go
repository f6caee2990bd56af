package cluster_test

import (
	"testing"
	"time"

	"github.com/mpgo/mp/pool"
	"github.com/mpgo/mp/pool/cluster"
	"github.com/mpgo/mp/pool/pooltest"
)

// The shared benchmark set (see pooltest.Benchmarks) on the cluster backend, on worker processes started by
// re-executing this test binary (TestMain calls cluster.WorkerMain).
var bench = pooltest.Benchmarks{
	New: func(b *testing.B, opts ...pool.Option) *pool.Pool {
		p, err := cluster.New(opts...)
		if err != nil {
			b.Fatal(err)
		}
		return p
	},
	MaxItems: 1e6,
}

func BenchmarkMap(b *testing.B)        { bench.Map(b) }
func BenchmarkImap(b *testing.B)       { bench.Imap(b) }
func BenchmarkApply(b *testing.B)      { bench.Apply(b) }
func BenchmarkApplyAsync(b *testing.B) { bench.ApplyAsync(b) }
func BenchmarkPi(b *testing.B)         { bench.Pi(b) }
func BenchmarkStartup(b *testing.B)    { bench.Startup(b) }

// instrBench is bench with a heartbeat timeout of a minute, for runs under
// valgrind (bench/instructions.sh), where every process runs some 50 times
// slower and the default timeout would take workers for lost.
var instrBench = pooltest.Benchmarks{
	New: func(b *testing.B, opts ...pool.Option) *pool.Pool {
		return bench.New(b, append(opts, cluster.Heartbeat(time.Second, time.Minute))...)
	},
	MaxItems: 1e5,
}

// BenchmarkInstrApply and BenchmarkInstrMap are Apply and Map for counting
// instructions (bench/instructions.sh); their times mean nothing.
func BenchmarkInstrApply(b *testing.B) { instrBench.Apply(b) }
func BenchmarkInstrMap(b *testing.B)   { instrBench.Map(b) }

// BenchmarkInstrApplyAsync is ApplyAsync for counting instructions.
func BenchmarkInstrApplyAsync(b *testing.B) { instrBench.ApplyAsync(b) }
