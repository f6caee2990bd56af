package pool_test

import (
	"context"
	"testing"

	"github.com/mpgo/mp/pool"
	"github.com/mpgo/mp/pool/local"
)

// TestApplyAsyncMany starts more ApplyAsync calls than the pool's queue of
// async calls keeps without compacting, all before collecting any, and
// checks every result, in a pool closed right after them.
func TestApplyAsyncMany(t *testing.T) {
	p, err := local.New(pool.Workers(1))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const n = 20000
	results := make([]*pool.AsyncResult[int], n)
	for i := range results {
		results[i] = pool.ApplyAsync(ctx, p, square, i)
	}
	p.Close()
	for i, r := range results {
		if v, err := r.Get(ctx); err != nil || v != i*i {
			t.Fatalf("ApplyAsync %d = %v, %v, want %d", i, v, err, i*i)
		}
	}
	if err := p.Join(ctx); err != nil {
		t.Fatal(err)
	}
}
