//go:build unix

package main

import "syscall"

// procAttr puts a worker process in a process group of its own (so that a
// terminal's Ctrl-C reaches poolworker, which drains, and not the workers
// directly), and has the kernel kill it if poolworker dies.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
