package s3test

import "syscall"

// sysProcAttr has the kernel kill the server when the test binary dies
// without running its cleanups (best effort: the signal follows the thread
// that started the server, and Go's threads live as long as the process).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
