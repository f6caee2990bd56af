//go:build unix

package main

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// dynamicELF returns the contents of a dynamically linked executable of
// this system (/bin/sh) and its PT_INTERP segment, or skips the test.
func dynamicELF(t *testing.T) ([]byte, *elf.Prog) {
	t.Helper()
	f, err := elf.Open("/bin/sh")
	if err != nil {
		t.Skipf("no ELF /bin/sh to take a dynamically linked executable from: %v", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b, err := os.ReadFile("/bin/sh")
			if err != nil {
				t.Fatal(err)
			}
			return b, p
		}
	}
	t.Skip("/bin/sh is statically linked: no dynamically linked executable to test with")
	return nil, nil
}

// writeExe writes b to a new executable file and returns its path.
func writeExe(t *testing.T, b []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "exe")
	if err := os.WriteFile(path, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// checkRunnable accepts scripts, static and dynamic executables this node
// can run, and refuses, naming what to rebuild, an executable whose loader
// it lacks or that is for another machine.
func TestCheckRunnable(t *testing.T) {
	sh, interp := dynamicELF(t)
	static, err := os.Executable() // the test binary, static or not: it runs here
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{writeExe(t, []byte("#!/bin/sh\n")), writeExe(t, sh), static} {
		if err := checkRunnablePath(path); err != nil {
			t.Errorf("checkRunnable(%s): %v", path, err)
		}
	}

	// The same executable, built for a loader that is not here.
	missing := slices.Clone(sh)
	const fake = "/nonexistent/ld.so"
	if int(interp.Filesz) <= len(fake) {
		t.Skipf("PT_INTERP of /bin/sh is too short (%d bytes) to hold %s", interp.Filesz, fake)
	}
	copy(missing[interp.Off:interp.Off+interp.Filesz], append([]byte(fake), make([]byte, int(interp.Filesz)-len(fake))...))
	err = checkRunnablePath(writeExe(t, missing))
	var r *refusal
	if !errors.As(err, &r) || !strings.Contains(r.msg, "CGO_ENABLED=0") || !strings.Contains(r.msg, fake) {
		t.Errorf("an executable whose loader is missing: %v, want a refusal naming CGO_ENABLED=0 and %s", err, fake)
	}

	// The same executable, for another machine.
	other := slices.Clone(sh)
	m := elf.EM_AARCH64
	if runtime.GOARCH == "arm64" {
		m = elf.EM_X86_64
	}
	order := binary.ByteOrder(binary.LittleEndian)
	if other[elf.EI_DATA] == byte(elf.ELFDATA2MSB) {
		order = binary.BigEndian
	}
	order.PutUint16(other[18:20], uint16(m)) // e_machine
	err = checkRunnablePath(writeExe(t, other))
	if !errors.As(err, &r) || !strings.Contains(r.msg, "GOARCH="+runtime.GOARCH) {
		t.Errorf("an executable for %s: %v, want a refusal naming GOARCH=%s", m, err, runtime.GOARCH)
	}
}

// A cgo-linked driver sent to a poolworker whose system lacks the C
// loader fails in cluster.New with a message that says to rebuild with
// CGO_ENABLED=0. The poolworker (built static) runs in a chroot holding
// nothing but itself and its cache: a node without a C library, as a
// static container image is.
func TestRefuseCgo(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the poolworker runs in a chroot without the C loader")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to build the cgo driver: %v", err)
	}
	cc, _ := exec.Command(goTool, "env", "CC").Output()
	if _, err := exec.LookPath(strings.TrimSpace(string(cc))); err != nil {
		t.Skipf("no C compiler (go env CC = %q) to build a cgo driver: %v", strings.TrimSpace(string(cc)), err)
	}
	dir := t.TempDir()
	driver := filepath.Join(dir, "cgodriver")
	build := exec.Command(goTool, "build", "-o", driver, "./testdata/cgodriver")
	build.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the cgo driver: %v\n%s", err, out)
	}
	interp := interpOf(t, driver)
	if interp == "" {
		t.Fatal("the cgo driver is statically linked: nothing to test")
	}

	// The node: a chroot with a static poolworker and a cache directory.
	root := filepath.Join(dir, "root")
	if err := os.MkdirAll(filepath.Join(root, "cache"), 0o700); err != nil {
		t.Fatal(err)
	}
	build = exec.Command(goTool, "build", "-o", filepath.Join(root, "poolworker"), "github.com/mpgo/mp/cmd/poolworker")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building a static poolworker: %v\n%s", err, out)
	}
	if interpOf(t, filepath.Join(root, "poolworker")) != "" {
		t.Fatal("the poolworker built with CGO_ENABLED=0 is dynamically linked")
	}
	if _, err := os.Stat(filepath.Join(root, interp)); err == nil {
		t.Fatalf("the chroot has the loader %s", interp)
	}
	logPath := filepath.Join(dir, "poolworker.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	pw := exec.Command("/poolworker", "-listen", "127.0.0.1:0", "-log-format", "json", "-cache-dir", "/cache")
	pw.Env = []string{"MP_TOKEN=" + testToken}
	pw.Stderr = logFile
	pw.SysProcAttr = &syscall.SysProcAttr{Chroot: root, Pdeathsig: syscall.SIGKILL}
	pw.Dir = "/"
	if err := pw.Start(); err != nil {
		t.Fatalf("starting the poolworker in a chroot: %v", err)
	}
	d := &daemon{cmd: pw, logPath: logPath}
	t.Cleanup(func() {
		d.stop(t)
		if t.Failed() {
			t.Logf("poolworker log:\n%s", d.log())
		}
	})
	waitFor(t, func() bool { d.addr = d.listeningAddr(); return d.addr != "" }, "the poolworker to listen")

	run := exec.Command(driver)
	run.Env = append(daemonEnv(), "MP_ADDRESS="+d.addr, "MP_TOKEN="+testToken)
	out, err := run.CombinedOutput()
	if err == nil || bytes.Contains(out, []byte("started")) {
		t.Fatalf("the cgo driver started a pool on a node without its loader: %v\n%s", err, out)
	}
	for _, want := range []string{"CGO_ENABLED=0", interp} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("cluster.New's error does not mention %s:\n%s", want, out)
		}
	}
	t.Logf("the driver printed: %s", bytes.TrimSpace(out))
}

// interpOf returns the PT_INTERP path of the executable at path, or "".
func interpOf(t *testing.T, path string) string {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			s, err := readInterp(p)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	}
	return ""
}

// checkRunnablePath runs checkRunnable on the file at path.
func checkRunnablePath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return checkRunnable(f)
}
