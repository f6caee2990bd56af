package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mpgo/mp/examples/wordfreq"
	"github.com/mpgo/mp/pool"
	"github.com/mpgo/mp/pool/cluster"
	"github.com/mpgo/mp/pool/local"
)

// The put section: a read-only table shared by every item, by pool.Put
// and Ref, against the table inside every item; the wordfreq section:
// the example's Map over Go's sources, local and cluster. Bytes moved are
// what the driver process read and wrote through system calls meanwhile
// (/proc/self/io): on a cluster, the wire traffic to and from its workers,
// framing included.

func init() {
	pool.MustRegisterCtx(weighRef)
	pool.MustRegister(weighValue)
}

type byRef struct {
	Table pool.Ref[[]byte]
	I     int
}

func weighRef(ctx context.Context, w byRef) (byte, error) {
	t, err := w.Table.Get(ctx)
	if err != nil {
		return 0, err
	}
	return t[w.I%len(t)], nil
}

type byValue struct {
	Table []byte
	I     int
}

func weighValue(w byValue) byte { return w.Table[w.I%len(w.Table)] }

// ioCount returns the bytes this process has read and written by system
// calls (rchar, wchar of /proc/self/io), or an error off Linux.
func ioCount() (read, written int64, err error) {
	f, err := os.Open("/proc/self/io")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ": ")
		n, _ := strconv.ParseInt(v, 10, 64)
		switch k {
		case "rchar":
			read = n
		case "wchar":
			written = n
		}
	}
	return read, written, sc.Err()
}

type putRow struct {
	name        string
	items       int
	dur         time.Duration
	read, wrote int64
}

type putSizes struct {
	table, refItems, valueItems, workers int
}

func putSizesFor(quick bool) putSizes {
	if quick {
		return putSizes{table: 4 << 20, refItems: 100, valueItems: 10, workers: 4}
	}
	return putSizes{table: 64 << 20, refItems: 1000, valueItems: 100, workers: 4}
}

// putBench maps items that each read one byte of a table, over 4 worker
// processes: by Ref, then with the table in every item.
func putBench(s putSizes) ([]putRow, error) {
	// A message must hold an item with the whole table in it.
	p, err := cluster.New(pool.Workers(s.workers), cluster.MaxMessage(s.table+1<<20))
	if err != nil {
		return nil, err
	}
	defer p.Close()
	ctx := context.Background()
	table := make([]byte, s.table)
	for i := range table {
		table[i] = byte(i * 7)
	}
	var rows []putRow
	measure := func(name string, items int, run func() error) error {
		r0, w0, err := ioCount()
		if err != nil {
			return err
		}
		start := time.Now()
		if err := run(); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		d := time.Since(start)
		r1, w1, err := ioCount()
		if err != nil {
			return err
		}
		rows = append(rows, putRow{name, items, d, r1 - r0, w1 - w0})
		return nil
	}
	err = measure("pool.Put, a Ref in each item", s.refItems, func() error {
		ref, err := pool.Put(ctx, p, table)
		if err != nil {
			return err
		}
		defer ref.Release()
		items := make([]byRef, s.refItems)
		for i := range items {
			items[i] = byRef{ref, i * 4099}
		}
		_, err = pool.MapCtx(ctx, p, weighRef, items, pool.Chunksize(10))
		return err
	})
	if err != nil {
		return nil, err
	}
	err = measure("the table in each item", s.valueItems, func() error {
		items := make([]byValue, s.valueItems)
		for i := range items {
			items[i] = byValue{table, i * 4099}
		}
		_, err := pool.Map(ctx, p, weighValue, items, pool.Chunksize(1))
		return err
	})
	return rows, err
}

func reportPut(b *strings.Builder, s putSizes, rows []putRow) {
	fmt.Fprintf(b, "\n## A shared read-only value: pool.Put against the value in every item\n\n")
	fmt.Fprintf(b, "A %s table, items that each read one byte of it, %d embedded worker processes. Bytes: what the driver wrote and read meanwhile (the wire, framing included). One run each.\n\n", mib(int64(s.table)), s.workers)
	b.WriteString("| how | items | time | per item | driver wrote | driver read | copies of the table sent |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, r := range rows {
		fmt.Fprintf(b, "| %s | %d | %v | %v | %s | %s | %.1f |\n", r.name, r.items, r.dur.Round(time.Millisecond),
			(r.dur / time.Duration(r.items)).Round(time.Microsecond), mib(r.wrote), mib(r.read), float64(r.wrote)/float64(s.table))
	}
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

type wordfreqRow struct {
	name        string
	files       int
	dur         time.Duration
	read, wrote int64
}

// wordfreqBench runs the wordfreq example's Map over every .go file under
// GOROOT/src (at most limit files if limit > 0), on a local pool and on a
// cluster pool, and checks that both count the same.
func wordfreqBench(limit int) ([]wordfreqRow, error) {
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		return nil, fmt.Errorf("go env GOROOT: %w", err)
	}
	files, err := wordfreq.GoFiles(filepath.Join(strings.TrimSpace(string(out)), "src"))
	if err != nil {
		return nil, err
	}
	if limit > 0 && len(files) > limit {
		files = files[:limit]
	}
	// Read every file once first, so that neither backend pays for a cold
	// page cache.
	for _, f := range files {
		if _, err := os.ReadFile(f); err != nil {
			return nil, err
		}
	}
	var rows []wordfreqRow
	var first map[string]int
	for _, backend := range []string{"mp local", "mp cluster"} {
		var p *pool.Pool
		if backend == "mp local" {
			p, err = local.New()
		} else {
			p, err = cluster.New()
		}
		if err != nil {
			return nil, err
		}
		r0, w0, _ := ioCount()
		start := time.Now()
		counts, err := pool.MapErr(context.Background(), p, wordfreq.CountFile, files)
		d := time.Since(start)
		r1, w1, _ := ioCount()
		p.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", backend, err)
		}
		total := map[string]int{}
		for _, c := range counts {
			for k, v := range c.Idents {
				total[k] += v
			}
		}
		if first == nil {
			first = total
		} else if len(total) != len(first) {
			return nil, fmt.Errorf("wordfreq: %s counted %d identifiers, the first backend %d", backend, len(total), len(first))
		}
		row := wordfreqRow{name: backend, files: len(files), dur: d}
		if backend == "mp cluster" { // local reads the files itself: not wire bytes
			row.read, row.wrote = r1-r0, w1-w0
		}
		rows = append(rows, row)
	}
	return rows, nil
}

func reportWordfreq(b *strings.Builder, rows []wordfreqRow) {
	b.WriteString("\n## examples/wordfreq: identifiers in Go's own sources\n\n")
	b.WriteString("One pool.MapErr of wordfreq.CountFile over the .go files under GOROOT/src, a struct of counts per file; both backends give the same counts. Bytes: the cluster driver's wire traffic (the workers read the files themselves). One run each.\n\n")
	b.WriteString("| backend | files | time | driver wrote | driver read |\n| --- | ---: | ---: | ---: | ---: |\n")
	for _, r := range rows {
		wr, rd := "n/a", "n/a"
		if r.name == "mp cluster" {
			wr, rd = mib(r.wrote), mib(r.read)
		}
		fmt.Fprintf(b, "| %s | %d | %v | %s | %s |\n", r.name, r.files, r.dur.Round(time.Millisecond), wr, rd)
	}
}
