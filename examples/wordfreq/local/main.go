// This program counts identifiers in every .go file under a directory (by
// default Go's own sources, $(go env GOROOT)/src), one file per item of a
// pool.Map with a progress bar, and prints the 20 most frequent and the
// time it took.
//
// The local and cluster programs differ in one line, the import of mp.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/mpgo/mp/examples/wordfreq"
	"github.com/mpgo/mp/pool"
	mp "github.com/mpgo/mp/pool/local"
	"github.com/schollz/progressbar/v3"
)

func main() {
	// First, before any work: a cluster's worker processes run main up to
	// here.
	p, err := mp.New()
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	root := flag.String("root", "", "directory to count (default: $(go env GOROOT)/src)")
	top := flag.Int("top", 20, "how many identifiers to print")
	flag.Parse()
	if err := run(p, *root, *top); err != nil {
		log.Fatal(err)
	}
}

func run(p *pool.Pool, root string, top int) error {
	if root == "" {
		out, err := exec.Command("go", "env", "GOROOT").Output()
		if err != nil {
			return fmt.Errorf("go env GOROOT: %v (give -root)", err)
		}
		root = filepath.Join(strings.TrimSpace(string(out)), "src")
	}
	files, err := wordfreq.GoFiles(root)
	if err != nil {
		return err
	}
	start := time.Now()
	bar := progressbar.NewOptions(len(files), progressbar.OptionSetWriter(os.Stderr),
		progressbar.OptionSetDescription("files"), progressbar.OptionShowCount(), progressbar.OptionClearOnFinish())
	counts, err := pool.MapErr(context.Background(), p, wordfreq.CountFile, files,
		pool.Progress(func(done, total int) { bar.Set(done) }))
	bar.Finish()
	if err != nil {
		return err
	}
	best, lines := wordfreq.Top(counts, top)
	fmt.Printf("%d files, %d lines, in %.2fs\n", len(files), lines, time.Since(start).Seconds())
	for i, c := range best {
		fmt.Printf("%2d. %-12s %d\n", i+1, c.Ident, c.N)
	}
	return nil
}
