//go:build unix

package cluster

import "syscall"

// closeOnExec keeps the descriptor fd from processes this one starts.
func closeOnExec(fd int) { syscall.CloseOnExec(fd) }
