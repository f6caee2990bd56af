package deploy

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestSlurm submits deploy/slurm/pi.sbatch to a live Slurm cluster, as the
// README says, from the repository's root, and checks the job's output: the
// π example's exact lines, from poolworkers on every node of the
// allocation, each of which served the driver and stopped cleanly.
//
// deploy/slurm/ci-setup.sh (run by .ci/run, as root) starts the cluster:
// three slurmd nodes, each in a network namespace of its own, so the job
// spans three network hosts. The nodes share this machine's file system and
// kernel.
func TestSlurm(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a Slurm job")
	}
	for _, tool := range []string{"sbatch", "sinfo", "scontrol", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("Slurm is not installed (no %s in PATH): deploy/slurm/ci-setup.sh installs and starts it, as root", tool)
		}
	}
	out, err := exec.Command("sinfo", "--noheader", "--Node", "--states=idle", "--format=%N").Output()
	nodes := strings.Fields(string(out))
	if err != nil || len(nodes) == 0 {
		t.Skipf("Slurm is not up (sinfo: %v, idle nodes %q): deploy/slurm/ci-setup.sh starts it, as root", err, nodes)
	}
	n := min(len(nodes), 3)                                   // the script asks for 3
	if _, err := os.ReadFile("slurm/pi.sbatch"); err != nil { // for go test's cache
		t.Fatal(err)
	}

	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	sbatch := exec.Command("sbatch", "--parsable", "--wait", "--nodes="+strconv.Itoa(n), "deploy/slurm/pi.sbatch")
	sbatch.Dir = root
	var stderr bytes.Buffer
	sbatch.Stderr = &stderr
	out, err = sbatch.Output()
	id := strings.TrimSpace(strings.Split(string(out), ";")[0])
	if id != "" {
		t.Cleanup(func() {
			files, _ := filepath.Glob(filepath.Join(root, "mp-pi-"+id+".*"))
			for _, f := range files {
				os.Remove(f)
			}
		})
	}
	outFile := filepath.Join(root, "mp-pi-"+id+".out")
	if err != nil {
		job, _ := os.ReadFile(outFile)
		t.Fatalf("sbatch --wait deploy/slurm/pi.sbatch: %v\n%s\njob output:\n%s", err, stderr.Bytes(), job)
	}
	job, err := os.ReadFile(outFile)
	if err != nil {
		t.Fatal(err)
	}

	lines := strings.Split(strings.TrimSuffix(string(job), "\n"), "\n")
	if len(lines) != len(piOutput)+1 {
		t.Fatalf("job output has %d lines, want the π example's %d and the poolworkers line:\n%s", len(lines), len(piOutput), job)
	}
	checkPi(t, strings.Join(lines[:len(piOutput)], "\n"))

	// The poolworkers line names every node of the allocation.
	var addrs []string
	for _, f := range strings.Fields(strings.Trim(strings.SplitN(lines[len(lines)-1], "(", 2)[1], ")")) {
		host, _, _ := strings.Cut(f, ":")
		addrs = append(addrs, host)
	}
	if want := fmt.Sprintf("poolworkers: %d (", n); !strings.HasPrefix(lines[len(lines)-1], want) || len(addrs) != n {
		t.Errorf("last line %q, want %q and %d addresses", lines[len(lines)-1], want, n)
	}
	for _, h := range addrs {
		if !strings.Contains(strings.Join(nodes, " "), h) {
			t.Errorf("the driver dialled %s, not a node of the cluster %v", h, nodes)
		}
	}

	// Each poolworker ran the driver's executable and stopped when the job ended.
	for task := range n {
		log, err := os.ReadFile(filepath.Join(root, fmt.Sprintf("mp-pi-%s.poolworker-%d.log", id, task)))
		if err != nil {
			t.Error(err)
			continue
		}
		for _, want := range []string{`msg="worker process started"`, `msg="signal received: draining"`, `msg=stopped`} {
			if !bytes.Contains(log, []byte(want)) {
				t.Errorf("poolworker %d's log lacks %s:\n%s", task, want, log)
			}
		}
	}
}
