// Command cgodriver is a driver linked with cgo, so dynamically against the
// C library and its loader: it starts a cluster pool on MP_ADDRESS (with
// MP_TOKEN) and prints the error, or "started". TestRefuseCgo builds it.
package main

// #include <stdlib.h>
import "C"

import (
	"fmt"
	"os"

	"github.com/mpgo/mp/pool/cluster"
)

func main() {
	C.free(C.malloc(1))
	p, err := cluster.New()
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	p.Close()
	fmt.Println("started")
}
