package cluster_test

import (
	"testing"

	"github.com/mpgo/mp/pool"
	"github.com/mpgo/mp/pool/cluster"
	"github.com/mpgo/mp/pool/pooltest"
)

// The shared benchmark set (see pooltest.Benchmarks) on the cluster backend, on worker processes started by
// re-executing this test binary (TestMain calls cluster.WorkerMain).
var bench = pooltest.Benchmarks{
	New: func(b *testing.B, opts ...pool.Option) pool.Pool {
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
