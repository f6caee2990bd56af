//go:build !unix

package cluster

// closeOnExec does nothing: poolworker, the only one to pass descriptors,
// runs on unix systems.
func closeOnExec(fd int) {}
