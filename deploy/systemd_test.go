package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mpgo/mp/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Run(m) }

// TestSystemdUnit checks deploy/systemd/poolworker.service with
// systemd-analyze verify (syntax, directives, the executable), with
// ExecStart pointed at a poolworker built for the test. It is not started:
// these machines run no systemd.
func TestSystemdUnit(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("needs systemd-analyze (apt-get install systemd)")
	}
	unit, err := os.ReadFile("systemd/poolworker.service")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(unit), " -token ") {
		t.Error("the unit passes -token (visible in ps): use -token-file")
	}
	const installed = "/usr/local/bin/poolworker"
	if !strings.Contains(string(unit), "ExecStart="+installed+" ") {
		t.Fatalf("the unit's ExecStart does not run %s", installed)
	}
	path := filepath.Join(t.TempDir(), "poolworker.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), installed, testenv.Poolworker(t))), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("systemd-analyze", "verify", path).CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
