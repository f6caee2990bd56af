package cluster

import "syscall"

// procAttr makes a worker process die with its driver, even if the driver
// is killed before it can close the connection.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
