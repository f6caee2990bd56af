//go:build !unix

package admit

func nofile() int { return 1024 }
