package cluster

import "syscall"

// dupTo makes descriptor to a copy of from (dup2; Linux has dup3 on every
// architecture).
func dupTo(from, to int) error { return syscall.Dup3(from, to, 0) }
