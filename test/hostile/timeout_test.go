package hostile

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mpgo/mp/pool"
	"github.com/mpgo/mp/pool/cluster"
)

func init() { pool.MustRegister(hang) }

// hang never returns and ignores its context: its worker answers
// heartbeats but never its result.
func hang(int) int { select {} }

// A node that answers heartbeats but never results held a call forever.
// With cluster.ChunkTimeout the chunk's connection is taken for stuck, the
// chunk runs again up to Retries times, and the call fails with
// ErrWorkerLost naming ChunkTimeout; the pool goes on serving.
func TestChunkTimeout(t *testing.T) {
	p, err := cluster.New(pool.Workers(1), cluster.ChunkTimeout(200*time.Millisecond), cluster.Retries(1))
	if err != nil {
		t.Fatal(err)
	}
	closeAtEnd(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, err = pool.Apply(ctx, p, hang, 1)
	if !errors.Is(err, cluster.ErrWorkerLost) || !strings.Contains(err.Error(), "ChunkTimeout") {
		t.Fatalf("Apply(hang) = %v, want ErrWorkerLost naming ChunkTimeout", err)
	}
	mustMap(t, p, 100)

	if _, err := cluster.New(cluster.ChunkTimeout(0)); !errors.Is(err, pool.ErrConfig) {
		t.Errorf("ChunkTimeout(0): %v, want a configuration error", err)
	}
}
