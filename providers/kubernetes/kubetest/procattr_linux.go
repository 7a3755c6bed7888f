package kubetest

import "syscall"

// sysProcAttr has the kernel kill a component when the test binary dies
// without running its cleanups (best effort: the signal follows the thread
// that started the component, and Go's threads live as long as the process).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
