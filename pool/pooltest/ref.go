package pooltest

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/mpgo/mp/pool"
)

func init() {
	pool.MustRegisterCtx(LookUp)
}

// A Query asks LookUp for the item at Index of a shared table.
type Query struct {
	Table pool.Ref[[]int]
	Index int
}

// LookUp returns the item of the query's table.
func LookUp(ctx context.Context, q Query) (int, error) {
	table, err := q.Table.Get(ctx)
	if err != nil {
		return 0, err
	}
	return table[q.Index], nil
}

// Put shares one value with every task by Ref; Release frees it; a Ref of
// another pool and a value that cannot cross are clear errors.
func (s *suite) putRef(t *testing.T) {
	p := s.open(t, pool.Workers(2), pool.CheckEncoding(true))
	ctx := testCtx(t)
	table := squares(10_000)
	ref, err := pool.Put(ctx, p, table)
	if err != nil {
		t.Fatal(err)
	}
	queries := make([]Query, 1000)
	for i := range queries {
		queries[i] = Query{ref, i * 7}
	}
	got, err := pool.MapCtx(ctx, p, LookUp, queries, pool.Chunksize(10))
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		if v != table[i*7] {
			t.Fatalf("item %d = %d, want %d", i, v, table[i*7])
		}
	}
	if v, err := ref.Get(ctx); err != nil || len(v) != len(table) {
		t.Fatalf("Get in the caller: %d items, %v", len(v), err)
	}

	ref.Release()
	_, err = pool.MapCtx(ctx, p, LookUp, queries[:4], pool.Chunksize(1))
	if !errors.Is(err, pool.ErrReleased) {
		t.Errorf("a released Ref: %v, want ErrReleased", err)
	}
	if _, err := ref.Get(ctx); !errors.Is(err, pool.ErrReleased) {
		t.Errorf("Get of a released Ref in the caller: %v", err)
	}

	other := s.open(t, pool.Workers(1), pool.CheckEncoding(true))
	foreign, err := pool.Put(ctx, other, []int{1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	_, err = pool.ApplyCtx(ctx, p, LookUp, Query{foreign, 1})
	if !errors.Is(err, pool.ErrReleased) || !contains(err, "another pool") {
		t.Errorf("a Ref of another pool: %v", err)
	}

	if _, err := pool.Put(ctx, p, []any{Opaque{1}}); !errors.Is(err, pool.ErrEncoding) {
		t.Errorf("Put of a value that cannot cross: %v, want ErrEncoding", err)
	}
}

func contains(err error, s string) bool {
	return err != nil && strings.Contains(err.Error(), s)
}
