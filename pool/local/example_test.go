package local_test

import (
	"context"
	"fmt"
	"log"
	"unicode/utf8"

	"github.com/mpgo/mp/pool"
	"github.com/mpgo/mp/pool/local"
)

func ExampleNew() {
	p, err := local.New(pool.Workers(4))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()

	n, err := pool.Map(ctx, p, utf8.RuneCountInString, []string{"Go", "π", "café"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(p.Workers(), n)

	// Close stops new calls; Join waits for the workers to exit.
	p.Close()
	if err := p.Join(ctx); err != nil {
		log.Fatal(err)
	}
	// Output: 4 [2 1 4]
}
