package cluster_test

import (
	"context"
	"github.com/mpgo/mp/internal/backend"
	"testing"
	"time"

	"github.com/mpgo/mp/internal/objects"
	"github.com/mpgo/mp/pool"
	"github.com/mpgo/mp/pool/cluster"
)

func init() {
	pool.MustRegisterCtx(weigh)
}

// A weighing asks for item I of a shared table.
type weighing struct {
	Table pool.Ref[[]byte]
	I     int
}

func weigh(ctx context.Context, w weighing) (byte, error) {
	t, err := w.Table.Get(ctx)
	if err != nil {
		return 0, err
	}
	return t[w.I%len(t)], nil
}

// A value shared by Ref crosses once per worker process that uses it,
// however many items refer to it: 1,000 items over 4 workers move at most
// 4 copies, not 1,000.
func TestPutSentOncePerWorker(t *testing.T) {
	p, err := cluster.New(pool.Workers(4))
	if err != nil {
		t.Fatal(err)
	}
	defer closeAndJoin(t, p)
	ctx := ctxFor(t, time.Minute)
	table := make([]byte, 4<<20)
	for i := range table {
		table[i] = byte(i * 7)
	}
	ref, err := pool.Put(ctx, p, table)
	if err != nil {
		t.Fatal(err)
	}
	items := make([]weighing, 1000)
	for i := range items {
		items[i] = weighing{ref, i * 4099}
	}
	got, err := pool.MapCtx(ctx, p, weigh, items, pool.Chunksize(10))
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range got {
		if b != table[i*4099%len(table)] {
			t.Fatalf("item %d = %d", i, b)
		}
	}
	served := objects.Of(backend.Unwrap(p)).Served()
	size := int64(len(table))
	if served < size || served > 4*(size+16) {
		t.Fatalf("the driver sent %d bytes for a %d-byte value and 4 workers: want 1 to 4 copies", served, size)
	}
	t.Logf("1,000 items over 4 workers: %d bytes sent, %.1f copies of the value", served, float64(served)/float64(size))
}
