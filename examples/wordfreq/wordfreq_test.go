package wordfreq_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mpgo/mp/examples/wordfreq"
)

func TestCountFile(t *testing.T) {
	fc, err := wordfreq.CountFile("testdata/src/a/b.go")
	if err != nil {
		t.Fatal(err)
	}
	if fc.Lines != 4 || fc.Idents["x"] != 2 || fc.Idents["f"] != 1 || fc.Idents["comment"] != 0 {
		t.Fatalf("CountFile = %+v", fc)
	}
}

// The local and cluster programs differ in the import line only, and print
// the same, exact counts.
func TestProgramsAgree(t *testing.T) {
	read := func(name string) string {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	loc, clu := read("local/main.go"), read("cluster/main.go")
	if strings.Replace(loc, `"github.com/mpgo/mp/pool/local"`, `"github.com/mpgo/mp/pool/cluster"`, 1) != clu {
		t.Fatal("local/main.go and cluster/main.go differ in more than the import of the backend")
	}
	want := "2 files, 9 lines, in Xs\n 1. x            5\n 2. int          4\n 3. f            3\n 4. a            2\n 5. g            1\n 6. y            1\n"
	dir := t.TempDir()
	for _, prog := range []string{"local", "cluster"} {
		bin := filepath.Join(dir, prog)
		if out, err := exec.Command("go", "build", "-o", bin, "./"+prog).CombinedOutput(); err != nil {
			t.Fatalf("go build ./%s: %v\n%s", prog, err, out)
		}
		out, err := exec.Command(bin, "-root", "testdata/src").Output()
		if err != nil {
			t.Fatalf("%s: %v", prog, err)
		}
		got := string(out)
		if i, j := strings.Index(got, " in "), strings.Index(got, "s\n"); i > 0 && j > i {
			got = got[:i] + " in X" + got[j:]
		}
		if got != want {
			t.Errorf("%s printed\n%s\nwant\n%s", prog, got, want)
		}
	}
}
