// Package wordfreq counts identifiers in Go source files: a batch job of the
// kind mp is for, run by the programs local and cluster, which differ in one
// line, the import of the pool backend. Run one over Go's own sources:
//
//	go run ./examples/wordfreq/local
//	go run ./examples/wordfreq/cluster
package wordfreq

import (
	"cmp"
	"go/scanner"
	"go/token"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/mpgo/mp/pool"
)

// Worker processes of the cluster find CountFile by name.
func init() {
	pool.MustRegisterErr(CountFile)
}

// FileCounts is what CountFile finds in one file: a struct result, as a
// real job's would be.
type FileCounts struct {
	Path   string
	Lines  int
	Idents map[string]int
}

// CountFile counts the identifiers of the Go source file at path, and its
// lines.
func CountFile(path string) (FileCounts, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return FileCounts{}, err
	}
	fset := token.NewFileSet()
	file := fset.AddFile(path, -1, len(src))
	var s scanner.Scanner
	s.Init(file, src, nil, 0) // syntax errors do not stop the count
	fc := FileCounts{Path: path, Idents: map[string]int{}}
	for {
		_, tok, lit := s.Scan()
		if tok == token.EOF {
			break
		}
		if tok == token.IDENT {
			fc.Idents[lit]++
		}
	}
	fc.Lines = file.LineCount()
	return fc, nil
}

// GoFiles lists the .go files under root, in lexical order.
func GoFiles(root string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && filepath.Ext(path) == ".go" {
			files = append(files, path)
		}
		return nil
	})
	return files, err
}

// A Count is an identifier and how often it occurs.
type Count struct {
	Ident string
	N     int
}

// Top merges the files' counts and returns the n most frequent identifiers
// (ties in lexical order), and the total of lines.
func Top(files []FileCounts, n int) ([]Count, int) {
	total := map[string]int{}
	lines := 0
	for _, f := range files {
		lines += f.Lines
		for id, c := range f.Idents {
			total[id] += c
		}
	}
	var counts []Count
	for _, id := range slices.Sorted(maps.Keys(total)) {
		counts = append(counts, Count{id, total[id]})
	}
	slices.SortStableFunc(counts, func(a, b Count) int { return cmp.Compare(b.N, a.N) })
	return counts[:min(n, len(counts))], lines
}
