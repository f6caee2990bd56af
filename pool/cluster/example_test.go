package cluster_test

import (
	"context"
	"fmt"
	"log"

	"github.com/mpgo/mp/pool"
	"github.com/mpgo/mp/pool/cluster"
)

// cube is registered so that worker processes find it by name.
func cube(x int) int { return x * x * x }

func init() { pool.MustRegister(cube) }

// A cluster pool with no configuration starts worker processes on this
// machine. This test binary's TestMain calls cluster.WorkerMain, so the
// processes serve instead of running the tests.
func ExampleNew() {
	p, err := cluster.New(pool.Workers(2))
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	cubes, err := pool.Map(context.Background(), p, cube, []int{1, 2, 3, 4})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(cubes)
	// Output: [1 8 27 64]
}
