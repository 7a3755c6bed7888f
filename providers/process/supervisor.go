package process

import (
	"os"
	"path/filepath"

	"github.com/tendhq/tend/providers/process/supervisor"
)

// MaybeSupervise runs the supervisor of one replica when this process was
// started as one (EXE __tend-supervise INSTANCE_DIR), and then exits; it
// returns at once otherwise. Every program that starts replicas through
// this provider (tend's main, and test binaries, from TestMain) must call
// it first thing, before parsing flags: it is the supervisor when
// tend-supervise is not beside it.
func MaybeSupervise() { supervisor.MaybeRun() }

// supervisorProgram is the program that supervises replicas for the
// executable exe: tend-supervise in exe's directory when it is there (it
// links the supervisor alone and costs each replica about 1.4 MiB of
// private memory), else exe itself (about 6.4 MiB: tend's every package is
// initialised in each supervisor).
func supervisorProgram(exe string) string {
	prog := filepath.Join(filepath.Dir(exe), supervisor.Program)
	if fi, err := os.Stat(prog); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
		return prog
	}
	return exe
}
