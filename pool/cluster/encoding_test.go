package cluster_test

import (
	"bytes"
	"errors"
	"math/rand"
	"reflect"
	"strings"
	"testing"
	"testing/quick"
	"time"

	"github.com/mpgo/mp/pool"
	"github.com/mpgo/mp/pool/cluster"
	"github.com/mpgo/mp/pool/local"
)

func init() {
	pool.MustRegister(echoBytes)
	pool.MustRegister(growBytes)
	pool.MustRegister(echoGenerated)
}

func echoBytes(b []byte) []byte { return b }

// growBytes returns n bytes of n%251.
func growBytes(n int) []byte { return bytes.Repeat([]byte{byte(n % 251)}, n) }

// Chunks are sized by bytes as well as items: 200 items of 64 KiB under a
// 1 MiB message limit all cross, in several messages each way, and only an
// item that alone exceeds the limit fails, naming its index, its size and
// the option that raises the limit.
func TestChunksSizedByBytes(t *testing.T) {
	p, err := cluster.New(pool.Workers(2), cluster.MaxMessage(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer closeAndJoin(t, p)
	ctx := ctxFor(t, time.Minute)
	items := make([][]byte, 200)
	for i := range items {
		items[i] = bytes.Repeat([]byte{byte(i)}, 64<<10)
	}
	for _, cs := range []int{0, 200} {
		got, err := pool.Map(ctx, p, echoBytes, items, pool.Chunksize(cs))
		if err != nil {
			t.Fatalf("Chunksize(%d): %v", cs, err)
		}
		if !reflect.DeepEqual(got, items) {
			t.Fatalf("Chunksize(%d): results differ", cs)
		}
	}
	// Results larger than their arguments come back in parts.
	sizes := make([]int, 40)
	for i := range sizes {
		sizes[i] = 100<<10 + i
	}
	grown, err := pool.Map(ctx, p, growBytes, sizes, pool.Chunksize(40))
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range grown {
		if len(b) != sizes[i] || b[0] != byte(sizes[i]%251) {
			t.Fatalf("result %d: %d bytes", i, len(b))
		}
	}
	// One argument of 2 MiB.
	items[137] = make([]byte, 2<<20)
	_, err = pool.Map(ctx, p, echoBytes, items, pool.Chunksize(200))
	var te *pool.TaskError
	if !errors.As(err, &te) || te.Index != 137 || !errors.Is(err, pool.ErrEncoding) || !strings.Contains(err.Error(), "cluster.MaxMessage") || !strings.Contains(err.Error(), "2097") {
		t.Fatalf("an item of 2 MiB: %v, want item 137 named with its size and cluster.MaxMessage", err)
	}
	// One result of 2 MiB.
	_, err = pool.Map(ctx, p, growBytes, []int{1, 2 << 20, 3}, pool.Chunksize(3))
	if !errors.As(err, &te) || te.Index != 1 || !errors.Is(err, pool.ErrEncoding) || !strings.Contains(err.Error(), "cluster.MaxMessage") {
		t.Fatalf("a result of 2 MiB: %v, want item 1 named with cluster.MaxMessage", err)
	}
	if got, err := pool.Apply(ctx, p, slowSquare, 4); err != nil || got != 16 {
		t.Fatalf("after: %v %v", got, err)
	}
}

// Generated is what the property test generates: every kind of value
// testing/quick makes, nested.
type Generated struct {
	I   int
	I8  int8
	U64 uint64
	F32 float32
	F   float64
	S   string
	B   []byte
	M   map[string][]int16
	Q   *[2]uint32
	N   []Generated
	C   complex64
	Ok  bool
	T   map[int64]string
	U   uintptr
}

func echoGenerated(g Generated) Generated { return g }

// Property: for generated values, a cluster pool returns what a local pool
// (checking encoding) returns, and both return what was sent.
func TestPropertyClusterEqualsLocal(t *testing.T) {
	cp, err := cluster.New(pool.Workers(2))
	if err != nil {
		t.Fatal(err)
	}
	defer closeAndJoin(t, cp)
	lp, err := local.New(pool.Workers(2), pool.CheckEncoding(true))
	if err != nil {
		t.Fatal(err)
	}
	defer lp.Close()
	ctx := ctxFor(t, 2*time.Minute)
	cfg := &quick.Config{MaxCount: 50, Rand: rand.New(rand.NewSource(8))}
	prop := func(in []Generated) bool {
		fromCluster, err := pool.Map(ctx, cp, echoGenerated, in)
		if err != nil {
			t.Error(err)
			return false
		}
		fromLocal, err := pool.Map(ctx, lp, echoGenerated, in)
		if err != nil {
			t.Error(err)
			return false
		}
		return reflect.DeepEqual(fromCluster, fromLocal) && reflect.DeepEqual(fromCluster, in)
	}
	if err := quick.Check(prop, cfg); err != nil {
		t.Fatal(err)
	}
}
