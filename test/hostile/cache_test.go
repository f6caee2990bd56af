package hostile

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mpgo/mp/internal/testenv"
	"github.com/mpgo/mp/pool"
	"github.com/mpgo/mp/pool/cluster"
)

func init() { pool.MustRegister(uid) }

func uid(int) int { return os.Getuid() }

// nobody is the UID and GID of the user "nobody" on Debian and most Linux
// systems.
const nobody = 65534

// exeDigest returns this test binary's SHA-256 and size: what its Setup
// announces to a poolworker.
func exeDigest(t *testing.T) (string, int64) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil)), n
}

// script returns a shell script of exactly size bytes that creates marker.
func script(marker string, size int64) []byte {
	b := []byte("#!/bin/sh\ntouch " + marker + "\nexit 0\n#")
	pad := size - int64(len(b)) - 1
	return append(append(b, strings.Repeat("x", int(pad))...), '\n')
}

// Issue 11: with a world-writable cache, a file planted as nobody under the
// driver's SHA-256 with the right size was run for the next legitimate
// driver. Now a cache directory others can write is refused at start, and
// a planted file (another user's, a symbolic link, or the right size with
// other bytes) is never executed: the driver's executable is received
// again, hashed on the open file, and run from that file.
func TestPlantedExecutable(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("planting a file as another user (nobody) needs root")
	}
	bin := testenv.Poolworker(t)
	env := []string{"MP_TOKEN=" + strongToken}

	t.Run("world-writable cache refused", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "cache")
		os.Mkdir(dir, 0o777)
		os.Chmod(dir, 0o1777)
		code, stderr := runPoolworker(t, bin, env, "-listen", "127.0.0.1:0", "-cache-dir", dir)
		if code != 2 || !strings.Contains(stderr, "chmod 700") {
			t.Fatalf("exit code %d, want 2 and the chmod to run:\n%s", code, stderr)
		}
		os.Chmod(dir, 0o700)
		os.Chown(dir, nobody, nobody)
		code, stderr = runPoolworker(t, bin, env, "-listen", "127.0.0.1:0", "-cache-dir", dir)
		if code != 2 || !strings.Contains(stderr, "chown") {
			t.Fatalf("a cache owned by nobody: exit code %d, want 2 and the chown to run:\n%s", code, stderr)
		}
	})

	sum, size := exeDigest(t)
	plants := []struct {
		name  string
		plant func(t *testing.T, path, marker string)
	}{
		{"another user's file", func(t *testing.T, path, marker string) {
			os.WriteFile(path, script(marker, size), 0o755)
			os.Chown(path, nobody, nobody)
		}},
		{"a symbolic link", func(t *testing.T, path, marker string) {
			target := filepath.Join(t.TempDir(), "planted")
			os.WriteFile(target, script(marker, size), 0o755)
			os.Symlink(target, path)
		}},
		{"the right size, other bytes", func(t *testing.T, path, marker string) {
			os.WriteFile(path, script(marker, size), 0o755)
		}},
	}
	for _, pl := range plants {
		t.Run(pl.name, func(t *testing.T) {
			cache := filepath.Join(t.TempDir(), "cache")
			marker := filepath.Join(t.TempDir(), "ran")
			n := startNode(t, bin, env, "-listen", "127.0.0.1:0", "-capacity", "2", "-cache-dir", cache)
			pl.plant(t, filepath.Join(cache, sum), marker)
			p, err := cluster.New(cluster.Addresses(n.addr), cluster.Token(strongToken))
			if err != nil {
				t.Fatal(err)
			}
			closeAtEnd(t, p)
			mustMap(t, p, 100)
			if _, err := os.Stat(marker); err == nil {
				t.Fatal("the planted file was executed")
			}
			if !strings.Contains(n.log(), "ignoring a file in the cache") {
				t.Errorf("the log does not say the planted file was ignored:\n%s", n.log())
			}
			info, err := os.Lstat(filepath.Join(cache, sum))
			if err != nil || !info.Mode().IsRegular() || info.Size() != size {
				t.Errorf("the cache holds %v (%v), want the driver's executable", info, err)
			}
		})
	}
}

// poolworker -user runs worker processes as that user, although the cache
// stays 0700 and root's: they are executed from the descriptor poolworker
// opened, which needs no access to the directory.
func TestRunAsUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("-user needs root")
	}
	bin := testenv.Poolworker(t)
	cache := filepath.Join(t.TempDir(), "cache")
	n := startNode(t, bin, []string{"MP_TOKEN=" + strongToken}, "-listen", "127.0.0.1:0", "-capacity", "1",
		"-cache-dir", cache, "-user", "nobody")
	if strings.Contains(n.log(), "running as root") {
		t.Errorf("warned about root although -user is given:\n%s", n.log())
	}
	p, err := cluster.New(cluster.Addresses(n.addr), cluster.Token(strongToken))
	if err != nil {
		t.Fatal(err)
	}
	closeAtEnd(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	got, err := pool.Apply(ctx, p, uid, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got != nobody {
		t.Fatalf("the worker process ran as UID %d, want nobody's %d", got, nobody)
	}
	// Without -user, as root, poolworker warns.
	m := startNode(t, bin, []string{"MP_TOKEN=" + strongToken}, "-listen", "127.0.0.1:0", "-cache-dir", filepath.Join(t.TempDir(), "c"))
	if !strings.Contains(m.log(), "running as root") {
		t.Errorf("no warning about running as root:\n%s", m.log())
	}
}
