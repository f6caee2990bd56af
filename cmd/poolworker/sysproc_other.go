//go:build unix && !linux

package main

import "syscall"

// procAttr puts a worker process in a process group of its own (so that a
// terminal's Ctrl-C reaches poolworker, which drains, and not the workers
// directly). Only Linux can have it killed when poolworker dies.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
