package local_test

import (
	"testing"

	"github.com/mpgo/mp/pool"
	"github.com/mpgo/mp/pool/local"
	"github.com/mpgo/mp/pool/pooltest"
)

// The shared benchmark set (see pooltest.Benchmarks) on the local backend.
var bench = pooltest.Benchmarks{
	New: func(b *testing.B, opts ...pool.Option) *pool.Pool {
		// Measure the pool, not the encoding check test binaries turn on.
		p, err := local.New(append([]pool.Option{pool.CheckEncoding(false)}, opts...)...)
		if err != nil {
			b.Fatal(err)
		}
		return p
	},
	MaxItems: 1e7,
}

func BenchmarkMap(b *testing.B)        { bench.Map(b) }
func BenchmarkImap(b *testing.B)       { bench.Imap(b) }
func BenchmarkApply(b *testing.B)      { bench.Apply(b) }
func BenchmarkApplyAsync(b *testing.B) { bench.ApplyAsync(b) }
func BenchmarkPi(b *testing.B)         { bench.Pi(b) }
func BenchmarkStartup(b *testing.B)    { bench.Startup(b) }
