//go:build linux

package main

import "syscall"

// procAttr puts a worker process in a process group of its own (so that a
// terminal's Ctrl-C reaches poolworker, which drains, and not the workers
// directly), has the kernel kill it if poolworker dies, and with -user (u
// not nil) runs it as that user, with that user's group and no
// supplementary groups.
func procAttr(u *runAs) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if u != nil {
		a.Credential = &syscall.Credential{Uid: u.uid, Gid: u.gid, Groups: []uint32{}}
	}
	return a
}

// fdDir is where a process finds its own open descriptors by number.
const fdDir = "/proc/self/fd/"
