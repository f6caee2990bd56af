// Package testenv holds what the project's process-level tests share: the
// poolworker binary, built once per test binary; the live children of a
// process; and a TestMain tail that keeps the worker processes tests start
// quick to exit.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

var build struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// Poolworker builds cmd/poolworker, once per test binary, and returns the
// path of the executable. Run removes it when the tests end.
func Poolworker(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		goTool, err := exec.LookPath("go") // go test puts GOROOT/bin first in PATH
		if err != nil {
			build.err = err
			return
		}
		if build.dir, build.err = os.MkdirTemp("", "mp-poolworker-"); build.err != nil {
			return
		}
		build.path = filepath.Join(build.dir, "poolworker")
		out, err := exec.Command(goTool, "build", "-o", build.path, "github.com/mpgo/mp/cmd/poolworker").CombinedOutput()
		if err != nil {
			build.err = fmt.Errorf("building poolworker: %v\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.path
}

// Run runs the tests and exits with their status. Before, it spares each
// worker process the tests start the race detector's default one-second
// sleep at exit (GORACE atexit_sleep_ms, inherited); after, it removes the
// poolworker binary, if one was built. Call it at the end of TestMain.
func Run(m *testing.M) {
	if os.Getenv("GORACE") == "" {
		os.Setenv("GORACE", "atexit_sleep_ms=0")
	}
	code := m.Run()
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	os.Exit(code)
}

// Children lists the live (not zombie) child processes of pid, from /proc.
func Children(pid int) []int {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var kids []int
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 || f[0] == "Z" || f[1] != strconv.Itoa(pid) {
			continue
		}
		if kid, err := strconv.Atoi(strings.Fields(s)[0]); err == nil {
			kids = append(kids, kid)
		}
	}
	return kids
}
