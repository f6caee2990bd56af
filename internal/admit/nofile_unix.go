//go:build unix

package admit

import "syscall"

func nofile() int {
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil && rl.Cur < 1<<20 {
		return int(rl.Cur)
	}
	return 1024
}
