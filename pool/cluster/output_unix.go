//go:build unix

package cluster

import (
	"os"
	"syscall"
)

// redirectOutput points descriptors 1 and 2 at a new pipe and returns its
// reading end, a function that points them back, and a copy of the
// original stderr.
func redirectOutput() (r *os.File, restore func(), orig *os.File, err error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, nil, nil, err
	}
	defer w.Close()
	saved := [2]int{-1, -1}
	for i, fd := range []int{1, 2} {
		if saved[i], err = syscall.Dup(fd); err != nil {
			r.Close()
			return nil, nil, nil, err
		}
		syscall.CloseOnExec(saved[i])
	}
	for _, fd := range []int{1, 2} {
		if err := dupTo(int(w.Fd()), fd); err != nil {
			dupTo(saved[0], 1)
			dupTo(saved[1], 2)
			r.Close()
			return nil, nil, nil, err
		}
	}
	orig = os.NewFile(uintptr(saved[1]), "stderr")
	restore = func() {
		dupTo(saved[0], 1)
		dupTo(saved[1], 2)
		syscall.Close(saved[0])
	}
	return r, restore, orig, nil
}
