//go:build !unix

// poolworker runs worker processes by passing them a connection as an
// inherited file descriptor, which needs a Unix system.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "poolworker runs on Unix systems (Linux, macOS, BSD); start it on one of those")
	os.Exit(2)
}
