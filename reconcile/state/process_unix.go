//go:build unix

package state

import (
	"errors"
	"syscall"
)

// processAlive reports whether a process with this PID exists on this host,
// by sending it signal 0. EPERM means it exists but belongs to another user.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
