//go:build unix

package main

import (
	"debug/elf"
	"errors"
	"os"
	"runtime"
)

// checkRunnable refuses an ELF executable this node cannot run: one for
// another machine or word size, or one linked dynamically against a
// program interpreter (the C loader, as a cgo build has) that this node
// lacks. Without the check, the exec would fail with a bare "no such file
// or directory" naming the executable, which exists. A file that is not
// ELF (a script) is left to exec. It reads only the ELF headers, from the
// open file (with ReadAt: file's offset does not move).
//
// It does not check the shared libraries a dynamic executable needs beyond
// its interpreter: the loader finds those by its own rules, and reports
// the ones missing when the process starts.
func checkRunnable(file *os.File) error {
	var magic [4]byte
	if _, err := file.ReadAt(magic[:], 0); err != nil || string(magic[:]) != elf.ELFMAG {
		return nil // not ELF
	}
	f, err := elf.NewFile(file)
	if err != nil {
		return refuse("the executable is not valid ELF: %v", err)
	}
	here := runtime.GOOS + "/" + runtime.GOARCH
	if m, ok := elfMachines[runtime.GOARCH]; ok && (f.Machine != m.machine || f.Class != m.class) {
		return refuse("the executable is for %s (%s); this node is %s: build the program with GOOS=%s GOARCH=%s",
			f.Machine, f.Class, here, runtime.GOOS, runtime.GOARCH)
	}
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		interp, err := readInterp(p)
		if err != nil {
			return refuse("the executable's program interpreter (PT_INTERP) is unreadable: %v", err)
		}
		if _, err := os.Stat(interp); err != nil {
			return refuse("the executable is dynamically linked (cgo) and needs the loader %s, which this node (%s) lacks: "+
				"build the program with CGO_ENABLED=0 to link it statically", interp, here)
		}
	}
	return nil
}

// readInterp returns the path a PT_INTERP segment holds.
func readInterp(p *elf.Prog) (string, error) {
	if p.Filesz == 0 || p.Filesz > 4096 {
		return "", errors.New("bad size")
	}
	b := make([]byte, p.Filesz)
	if _, err := p.ReadAt(b, 0); err != nil {
		return "", err
	}
	for i, c := range b {
		if c == 0 {
			b = b[:i]
			break
		}
	}
	if len(b) == 0 {
		return "", errors.New("empty path")
	}
	return string(b), nil
}

// elfMachines maps GOARCH to the ELF machine and class of its executables.
var elfMachines = map[string]struct {
	machine elf.Machine
	class   elf.Class
}{
	"386":     {elf.EM_386, elf.ELFCLASS32},
	"amd64":   {elf.EM_X86_64, elf.ELFCLASS64},
	"arm":     {elf.EM_ARM, elf.ELFCLASS32},
	"arm64":   {elf.EM_AARCH64, elf.ELFCLASS64},
	"loong64": {elf.EM_LOONGARCH, elf.ELFCLASS64},
	"ppc64":   {elf.EM_PPC64, elf.ELFCLASS64},
	"ppc64le": {elf.EM_PPC64, elf.ELFCLASS64},
	"riscv64": {elf.EM_RISCV, elf.ELFCLASS64},
	"s390x":   {elf.EM_S390, elf.ELFCLASS64},
}
