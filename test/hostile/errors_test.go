package hostile

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mpgo/mp/internal/testenv"
	"github.com/mpgo/mp/pool/cluster"
)

// Issue 11: a node whose disk filled during an upload gave the driver
// "broken pipe", the reason only in the node's log. Now the driver's error
// says it, and the node lives. (A noexec cache is
// cmd/poolworker's TestUnstartableWorkerReason.)
func TestDiskFullReachesDriver(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("a full disk is a small tmpfs, and mounting one needs root")
	}
	bin := testenv.Poolworker(t)
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	n := startNode(t, bin, []string{"MP_TOKEN=" + strongToken}, "-listen", "127.0.0.1:0", "-cache-dir", dir)
	_, err := cluster.New(cluster.Addresses(n.addr), cluster.Token(strongToken), cluster.ReconnectFor(time.Second))
	if err == nil || !strings.Contains(err.Error(), "no space left on device") || strings.Contains(err.Error(), "broken pipe") {
		t.Fatalf("New against a node whose disk is full: %v, want the node's reason", err)
	}
	if !n.alive() {
		t.Fatal("poolworker died")
	}
}
