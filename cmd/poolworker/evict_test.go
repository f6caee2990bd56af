//go:build unix

package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mpgo/mp/internal/wire"
)

// script returns an executable of exactly 1000 bytes that says it started
// (as cluster.WorkerMain does), writes name on the connection and exits.
func script(name string) []byte {
	s := "#!/bin/sh\nprintf x >&4\nprintf " + name + " >&3\n#"
	return []byte(s + strings.Repeat("x", 999-len(s)) + "\n")
}

// holdScript returns an executable of 1000 bytes that says it started,
// writes name on the connection and then waits until the driver closes it.
func holdScript(name string) []byte {
	s := "#!/bin/sh\nprintf x >&4\nprintf " + name + " >&3\ncat <&3 >/dev/null\n#"
	return []byte(s + strings.Repeat("x", 999-len(s)) + "\n")
}

// The cache keeps at most -cache-max bytes: the least recently used
// executables go first, and one in use by a worker process stays until the
// process exits.
func TestCacheEviction(t *testing.T) {
	s := startServer(t, func(c *config) { c.cacheMax = 2500 })
	sum := func(exe []byte) string { return setupFor(exe).SHA256 }
	holding := 0 // worker processes the test keeps running
	run := func(exe []byte, name string) {
		t.Helper()
		if err := installAndRead(s.addr, exe, name); err != nil {
			t.Fatal(err)
		}
		// The process has closed the connection; wait until it is reaped
		// and its executable no longer in use.
		waitFor(t, func() bool { return s.workerProcesses() == holding }, "the worker process to be reaped")
	}
	cache := func(want ...[]byte) {
		t.Helper()
		var sums []string
		for _, exe := range want {
			sums = append(sums, sum(exe))
		}
		slices.Sort(sums)
		got := cachedFiles(t, s.cfg.cacheDir)
		slices.Sort(got)
		if !slices.Equal(got, sums) {
			t.Fatalf("cache holds %q, want %q", got, sums)
		}
	}
	a, b, c := script("a"), script("b"), script("c")
	run(a, "a")
	run(b, "b")
	run(a, "a") // a is used after b
	cache(a, b)
	run(c, "c") // 3000 bytes: b, the least recently used, goes
	cache(a, c)
	if n := exposed(t, s.server, "mp_poolworker_cache_evictions_total"); n != 1 {
		t.Fatalf("%v evictions, want 1", n)
	}

	// d runs while the cache overflows: it is the least recently used
	// but stays.
	d := holdScript("d")
	held := mustDial(t, s.addr)
	if _, err := held.install(d); err != nil {
		t.Fatal(err)
	}
	if got, err := readN(held.raw, 1); err != nil || got != "d" {
		t.Fatalf("d wrote %q, %v", got, err)
	}
	holding = 1
	cache(c, d) // a went: least recently used
	run(c, "c") // now d is the least recently used
	e := script("e")
	run(e, "e")
	cache(d, e) // c went, not d, which runs
	if n := s.uploads.Load(); n != 5 {
		t.Fatalf("%d uploads, want 5", n)
	}

	held.conn.Close()
	holding = 0
	waitFor(t, func() bool { return s.workerProcesses() == 0 }, "d to exit")
	f := script("f")
	run(f, "f")
	cache(e, f) // d is no longer in use: it went
	if n := exposed(t, s.server, "mp_poolworker_cache_evictions_total"); n != 4 {
		t.Fatalf("%v evictions, want 4", n)
	}
	if !strings.Contains(s.logs.String(), "removed an executable from the cache") {
		t.Error("evictions are not logged")
	}
}

// readN reads n bytes from conn.
func readN(conn net.Conn, n int) (string, error) {
	b := make([]byte, n)
	_, err := conn.Read(b)
	return string(b), err
}

// Issue 11: hashLocks never shrank (40,000 Setups took poolworker's RSS
// from 12 to 29 MB). A lock is forgotten once no session holds or waits
// for it.
func TestHashLocksForget(t *testing.T) {
	s := newServer(config{cacheDir: t.TempDir()}, nil)
	for i := range 40000 {
		unlock, err := s.lockHash(fmt.Sprintf("%064x", i))
		if err != nil {
			t.Fatal(err)
		}
		unlock()
	}
	// Two sessions on one executable: the second waits, then both leave.
	unlock, _ := s.lockHash("a")
	got := make(chan func())
	go func() { u, _ := s.lockHash("a"); got <- u }()
	unlock()
	(<-got)()
	if n := len(s.hashLocks); n != 0 {
		t.Fatalf("%d upload locks left after 40,002 sessions ended, want 0", n)
	}
}

// A cached executable is hashed once, not at every session, while its
// inode, size and modification time stay; a change to its bytes (which
// changes its modification time) is hashed again and refused.
func TestVerifiedOnce(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	if err := prepareCache(dir, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	s := newServer(config{cacheDir: dir}, nil)
	content := []byte("#!/bin/sh\nexit 0\n")
	sum := sha256.Sum256(content)
	setup := wire.Setup{SHA256: hex.EncodeToString(sum[:]), Size: int64(len(content))}
	path := filepath.Join(dir, setup.SHA256)
	if err := os.WriteFile(path, content, 0o755); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		f, why := s.openVerified(path, setup)
		if f == nil {
			t.Fatalf("openVerified: %s", why)
		}
		f.Close()
	}
	if n := s.hashes.Load(); n != 1 {
		t.Fatalf("hashed %d times in 3 sessions, want 1", n)
	}
	// The same size, other bytes, written in place.
	if err := os.WriteFile(path, []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if f, why := s.openVerified(path, setup); f != nil || !strings.Contains(why, "SHA-256") {
		t.Fatalf("openVerified after the bytes changed: %v, %q; want a refusal naming the SHA-256", f, why)
	}
	if n := s.hashes.Load(); n != 2 {
		t.Fatalf("hashed %d times, want 2: the change must be hashed", n)
	}
}
