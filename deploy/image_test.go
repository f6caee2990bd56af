// Package deploy holds the deployment files of mp (deploy/Containerfile,
// deploy/kubernetes, deploy/slurm) and the tests that check them on this
// machine.
package deploy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestImage builds deploy/Containerfile with podman and checks what users
// will run: the image's entrypoint, run as the image's user from the image's
// own filesystem, serves a driver (the π example the image also holds).
//
// This is not a container run. `podman run` fails on these machines (crun's
// setrlimit of RLIMIT_NOFILE is denied: "OCI permission denied"), so the test
// does what a runtime would do with the image's configuration, by hand:
// `podman image mount` the image, bind a fresh directory over its /cache (the
// volume), and start the configured entrypoint with the configured
// environment under `chroot --userspec=UID:GID` as the configured USER, in a
// private mount namespace (unshare). It shares the host's network (loopback)
// and has no seccomp, cgroup or user namespace of its own.
func TestImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the image (about a minute)")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: podman image mount and chroot run as root here")
	}
	for _, tool := range []string{"podman", "unshare", "chroot", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s in PATH (apt-get install podman; .ci/run installs it)", tool)
		}
	}

	// go test caches a passing result until a file the test opened changes;
	// podman's and the script's reads are not seen, so read them here too.
	for _, f := range []string{"Containerfile", "build-image.sh"} {
		if _, err := os.ReadFile(f); err != nil {
			t.Fatal(err)
		}
	}
	tag := fmt.Sprintf("localhost/mp-image-test:%d", os.Getpid())
	out, err := exec.Command("./build-image.sh", tag).CombinedOutput()
	if err != nil {
		t.Fatalf("deploy/build-image.sh: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("podman", "rmi", "--force", tag).CombinedOutput(); err != nil {
			t.Errorf("podman rmi %s: %v\n%s", tag, err, out)
		}
	})

	var cfg struct {
		User       string
		Entrypoint []string
		Env        []string
		Volumes    map[string]struct{}
	}
	out, err = exec.Command("podman", "image", "inspect", "--format", "{{json .Config}}", tag).Output()
	if err != nil {
		t.Fatalf("podman image inspect: %v", err)
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatalf("podman image inspect: %v\n%s", err, out)
	}
	uid, gid, ok := numericUser(cfg.User)
	if !ok || uid == 0 {
		t.Fatalf("image USER %q: want a numeric non-root UID:GID (a scratch image has no /etc/passwd)", cfg.User)
	}
	if _, ok := cfg.Volumes["/cache"]; !ok || !slices.Contains(cfg.Env, "POOLWORKER_CACHE_DIR=/cache") {
		t.Fatalf("image volumes %v, env %v: want the cache on the /cache volume", cfg.Volumes, cfg.Env)
	}
	if len(cfg.Entrypoint) == 0 {
		t.Fatal("image has no entrypoint")
	}

	out, err = exec.Command("podman", "image", "mount", tag).Output()
	if err != nil {
		t.Fatalf("podman image mount: %v", err)
	}
	root := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("podman", "image", "unmount", tag).Run() })
	if entries, err := os.ReadDir(root); err != nil {
		t.Fatal(err)
	} else {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if got := strings.Join(names, " "); got != "approximate_pi cache poolworker" {
			t.Errorf("image holds %q, want only approximate_pi, cache and poolworker", got)
		}
	}

	// The volume: a directory of the image's user, mode 0700, as a runtime
	// makes it from the image's /cache.
	cache := t.TempDir()
	if err := os.Chown(cache, uid, gid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(cache, 0o700); err != nil {
		t.Fatal(err)
	}

	const token = "image-test-token-5d2a8Kq3Wm7Rx1"
	args := append([]string{"--mount", "--", "sh", "-ec", runtimeScript,
		"sh", root, t.TempDir(), cache, cfg.User}, cfg.Entrypoint...)
	args = append(args, "-listen", "127.0.0.1:0", "-drain-timeout", "10s")
	node := exec.Command("unshare", args...)
	node.Env = append(append([]string{}, cfg.Env...), "MP_TOKEN="+token)
	stderr, err := node.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	addrc := make(chan string, 1)
	var (
		logMu  sync.Mutex
		logBuf bytes.Buffer
	)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logMu.Lock()
			logBuf.Write(sc.Bytes())
			logBuf.WriteByte('\n')
			logMu.Unlock()
			var rec map[string]any
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["msg"] == "listening" {
				addrc <- fmt.Sprint(rec["addr"])
			}
		}
		exited <- node.Wait()
	}()
	nodeLog := func() string {
		logMu.Lock()
		defer logMu.Unlock()
		return logBuf.String()
	}
	t.Cleanup(func() {
		node.Process.Kill()
		select {
		case <-exited:
		case <-time.After(time.Minute):
		}
	})
	var addr string
	select {
	case addr = <-addrc:
	case err := <-exited:
		t.Fatalf("the entrypoint exited: %v\n%s", err, nodeLog())
	case <-time.After(time.Minute):
		t.Fatalf("the entrypoint did not start listening\n%s", nodeLog())
	}

	// The driver: the image's own π example, run on the host.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	drv := exec.CommandContext(ctx, filepath.Join(root, "approximate_pi"), "-n", "2000000")
	drv.Env = append(os.Environ(), "MP_ADDRESS="+addr, "MP_TOKEN="+token)
	var drvErr bytes.Buffer
	drv.Stderr = &drvErr
	out, err = drv.Output()
	if err != nil {
		t.Fatalf("the π example against the image's poolworker: %v\n%s\npoolworker:\n%s", err, drvErr.Bytes(), nodeLog())
	}
	checkPi(t, string(out))

	// The node ran the driver's executable from the volume, as the image's user.
	files, err := os.ReadDir(cache)
	if err != nil {
		t.Fatal(err)
	}
	shipped := 0
	for _, f := range files {
		info, err := f.Info()
		if err != nil {
			t.Fatal(err)
		}
		st := info.Sys().(*syscall.Stat_t)
		if int(st.Uid) != uid {
			t.Errorf("cache file %s is owned by UID %d, want the image's user %d", f.Name(), st.Uid, uid)
		}
		if info.Mode().IsRegular() {
			shipped++
		}
	}
	if shipped == 0 {
		t.Errorf("no executable in the cache volume after a run; poolworker:\n%s", nodeLog())
	}

	// SIGTERM drains and exits 0, as on a pod's deletion.
	node.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("poolworker after SIGTERM: %v\n%s", err, nodeLog())
		}
	case <-time.After(time.Minute):
		t.Errorf("poolworker did not exit after SIGTERM\n%s", nodeLog())
	}
}

// runtimeScript does, in a private mount namespace, what a container runtime
// does with an image before it starts the entrypoint, as far as poolworker
// can tell: a root filesystem of the image's files, read-only (Kubernetes'
// readOnlyRootFilesystem), with /dev/null and /proc as every OCI runtime
// provides them (os/exec opens /dev/null for a child's missing stdin), and
// the volume on /cache. Then it runs the rest of its arguments there as the
// user given, with chroot --userspec.
//
// Arguments: the mounted image, an empty directory, the volume's directory,
// UID:GID, then the command.
const runtimeScript = `
image=$1 top=$2 volume=$3 user=$4; shift 4
mount -t tmpfs tmpfs "$top"
mkdir "$top/upper" "$top/work" "$top/root"
mount -t overlay overlay -o "lowerdir=$image,upperdir=$top/upper,workdir=$top/work" "$top/root"
mkdir "$top/root/dev" "$top/root/proc"
touch "$top/root/dev/null"
mount --bind /dev/null "$top/root/dev/null"
mount -t proc proc "$top/root/proc"
mount --bind "$volume" "$top/root/cache"
mount -o remount,bind,ro "$top/root"
exec chroot --userspec="$user" "$top/root" "$@"
`

// numericUser parses a USER of the form UID:GID.
func numericUser(s string) (uid, gid int, ok bool) {
	u, g, found := strings.Cut(s, ":")
	if !found {
		return 0, 0, false
	}
	uid, err1 := strconv.Atoi(u)
	gid, err2 := strconv.Atoi(g)
	return uid, gid, err1 == nil && err2 == nil
}

// piOutput is what the π cluster example prints, line by line.
var piOutput = []*regexp.Regexp{
	regexp.MustCompile(`^Pool start-up: \d+\.\d{3}s$`),
	regexp.MustCompile(`^pi ~= (\d\.\d{6})$`),
	regexp.MustCompile(`^Finished in: \d+\.\d{3}s$`),
}

// checkPi checks out, the π cluster example's output: exactly its three
// lines, and an estimate within 0.01 of π (from at least 10⁶ samples, the
// estimate's standard deviation is below 0.002).
func checkPi(t *testing.T, out string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != len(piOutput) {
		t.Fatalf("the π example printed %d lines, want %d:\n%s", len(lines), len(piOutput), out)
	}
	for i, re := range piOutput {
		m := re.FindStringSubmatch(lines[i])
		if m == nil {
			t.Fatalf("line %d = %q, want a match for %s", i+1, lines[i], re)
		}
		if len(m) > 1 {
			pi, err := strconv.ParseFloat(m[1], 64)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(pi-math.Pi) > 0.01 {
				t.Errorf("pi ~= %v, want within 0.01 of %v", pi, math.Pi)
			}
		}
	}
}
