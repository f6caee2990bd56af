//go:build !linux

package cluster

import "syscall"

// procAttr: without Linux's parent-death signal, a worker process exits
// when its connection to the driver closes or goes silent.
func procAttr() *syscall.SysProcAttr { return nil }
