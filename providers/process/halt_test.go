package process

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/spec"
)

// TestHaltResume: a halted replica keeps its directory and is observed
// exited; Resume runs a new supervisor for the same directory; a replica
// tend has no directory of is refused; a supervisor that died is replaced,
// and the child it left behind goes first.
func TestHaltResume(t *testing.T) {
	p := newTestProvider(t, tempRoot(t))
	port := freePorts(t, 1)
	d := testDesired(t, "halt", port, "h1", nil)
	d.Server.Volumes = []*spec.Volume{{Name: "data", Path: "/data"}}
	inst := startTest(t, p, d, 0)
	ctx := context.Background()
	dir, _ := p.instanceDir(testManagedBy, "halt", 0)
	eventually(t, 5*time.Second, func() error { _, err := httpGet(port, "/health"); return err })
	firstSup := statusOf(t, p, "halt", 0).SupervisorPID
	firstChild := statusOf(t, p, "halt", 0).ChildPID

	if err := p.Halt(ctx, inst, time.Second); err != nil {
		t.Fatal(err)
	}
	if !pidGone(firstSup) || !pidGone(firstChild) {
		t.Errorf("after Halt, the supervisor (%d) or the child (%d) still runs", firstSup, firstChild)
	}
	if _, err := os.Stat(filepath.Join(dir, identityFile)); err != nil {
		t.Fatalf("Halt removed the instance directory: %v", err)
	}
	got := observeOne(t, p, "halt", 0)
	if got.State != providers.StateExited || got.Message != "halted by tend" {
		t.Errorf("a halted replica is observed %s (%s), want exited (halted by tend)", got.State, got.Message)
	}
	if err := p.Halt(ctx, inst, time.Second); err != nil {
		t.Errorf("Halt of a halted replica: %v", err)
	}
	other := inst
	other.Server = "never-started"
	if err := p.Halt(ctx, other, time.Second); err == nil {
		t.Error("Halt of a replica that does not exist: no error")
	}
	if _, err := p.Resume(ctx, other); err == nil {
		t.Error("Resume of a replica that does not exist: no error")
	}

	res, err := p.Resume(ctx, inst)
	if err != nil {
		t.Fatal(err)
	}
	if res.ID == "" || res.ID == strconv.Itoa(firstSup) || res.State.Failed() {
		t.Errorf("Resume returned ID %q state %s (%s), want a new supervisor's pid (not %d) and a replica not failed", res.ID, res.State, res.Message, firstSup)
	}
	if res.Identity != inst.Identity {
		t.Errorf("Resume returned identity %+v, want %+v", res.Identity, inst.Identity)
	}
	if _, err := os.Stat(filepath.Join(dir, haltedFile)); err == nil {
		t.Error("Resume left the halted marker")
	}
	eventually(t, 5*time.Second, func() error { _, err := httpGet(port, "/health"); return err })

	// A supervisor killed by someone: its child runs on, unsupervised;
	// Resume stops that child and starts a supervisor.
	st := statusOf(t, p, "halt", 0)
	if err := syscall.Kill(st.SupervisorPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() error {
		if got := observeOne(t, p, "halt", 0); got.State != providers.StateMissing {
			return fmt.Errorf("observed %s, want missing", got.State)
		}
		return nil
	})
	res, err = p.Resume(ctx, inst)
	if err != nil {
		t.Fatal(err)
	}
	if !pidGone(st.ChildPID) {
		t.Errorf("Resume left the orphaned child %d running beside the new one", st.ChildPID)
	}
	eventually(t, 5*time.Second, func() error {
		if got := observeOne(t, p, "halt", 0); got.State != providers.StateRunning {
			return fmt.Errorf("observed %s (%s), want running", got.State, got.Message)
		}
		return nil
	})
}
