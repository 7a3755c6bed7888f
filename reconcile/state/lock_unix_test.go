//go:build unix

package state

import (
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skipf("cannot run true: %v", err)
	}
	pid := cmd.Process.Pid
	// Ask the kernel directly rather than processAlive, which is under test.
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Skipf("pid %d was reused already (kill: %v)", pid, err)
	}
	return pid
}

func TestLockDeadHolderIsTakenOver(t *testing.T) {
	a := openStore(t)
	b := reopen(t, a.Path())
	pid := deadPID(t)
	dead := LockInfo{Owner: "tend apply", Operation: "apply", PID: pid} // on this host
	old, err := a.Lock(dead, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	id := mustBegin(t, a, Revision{Server: "web"}) // what the dead tend left pending

	lease, err := b.Lock(applyInfo, time.Hour)
	if err != nil {
		t.Fatalf("Lock over a dead holder: %v", err)
	}
	if lease.TookOverFrom == nil || lease.TookOverFrom.PID != pid || !strings.Contains(lease.TakeoverReason, "gone") {
		t.Fatalf("TookOverFrom = %+v (%q), want pid %d", lease.TookOverFrom, lease.TakeoverReason, pid)
	}
	if err := old.Refresh(time.Hour); !errors.Is(err, ErrLockLost) {
		t.Errorf("Refresh after takeover = %v, want ErrLockLost", err)
	}
	if n, err := b.MarkInterrupted(time.Time{}); err != nil || n != 1 {
		t.Errorf("MarkInterrupted = %d, %v", n, err)
	}
	if r, _ := b.Revision(id); r.Outcome != OutcomeInterrupted {
		t.Errorf("pending revision is %s after takeover", r.Outcome)
	}
}
