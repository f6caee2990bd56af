package approximatepi_test

import (
	"bytes"
	"math"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The parallel and cluster programs differ in exactly one line: the import
// of the backend.
func TestOneLineDiff(t *testing.T) {
	read := func(name string) []string {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Split(string(b), "\n")
	}
	par, clu := read("parallel/main.go"), read("cluster/main.go")
	if len(par) != len(clu) {
		t.Fatalf("parallel/main.go has %d lines, cluster/main.go %d", len(par), len(clu))
	}
	var diff []int
	for i := range par {
		if par[i] != clu[i] {
			diff = append(diff, i)
		}
	}
	if len(diff) != 1 {
		t.Fatalf("parallel/main.go and cluster/main.go differ in lines %v, want exactly one", diff)
	}
	i := diff[0]
	if got, want := strings.TrimSpace(par[i]), `mp "github.com/mpgo/mp/pool/local"`; got != want {
		t.Errorf("parallel/main.go:%d = %s, want %s", i+1, got, want)
	}
	if got, want := strings.TrimSpace(clu[i]), `mp "github.com/mpgo/mp/pool/cluster"`; got != want {
		t.Errorf("cluster/main.go:%d = %s, want %s", i+1, got, want)
	}
}

func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the programs")
	}
	goBin, err := exec.LookPath("go") // go test puts GOROOT/bin first in PATH
	if err != nil {
		t.Skip("no go command in PATH")
	}
	var (
		startup  = regexp.MustCompile(`^Pool start-up: \d+\.\d{3}s$`)
		estimate = regexp.MustCompile(`^pi ~= (\d+\.\d{6})$`)
		finished = regexp.MustCompile(`^Finished in: \d+\.\d{3}s$`)
	)
	for _, tc := range []struct {
		prog string
		want []*regexp.Regexp
	}{
		{"serial", []*regexp.Regexp{estimate, finished}},
		{"parallel", []*regexp.Regexp{startup, estimate, finished}},
	} {
		t.Run(tc.prog, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(goBin, "run", "./"+tc.prog, "-n", "2000000")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("go run ./%s: %v\n%s", tc.prog, err, stderr.Bytes())
			}
			lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
			if len(lines) != len(tc.want) {
				t.Fatalf("go run ./%s printed %d lines, want %d:\n%s", tc.prog, len(lines), len(tc.want), out)
			}
			for i, re := range tc.want {
				if !re.MatchString(lines[i]) {
					t.Errorf("line %d = %q, want a match for %s", i+1, lines[i], re)
				}
			}
			for _, line := range lines {
				if m := estimate.FindStringSubmatch(line); m != nil {
					pi, err := strconv.ParseFloat(m[1], 64)
					if err != nil {
						t.Fatal(err)
					}
					if math.Abs(pi-math.Pi) > 0.01 {
						t.Errorf("go run ./%s: pi ~= %v, want within 0.01 of %v", tc.prog, pi, math.Pi)
					}
				}
			}
		})
	}
}
