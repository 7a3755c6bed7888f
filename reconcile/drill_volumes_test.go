package reconcile

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/memory"
	"github.com/tendhq/tend/reconcile/state"
	"github.com/tendhq/tend/spec"
)

// volRemover is the memory provider with providers.VolumeRemover: it
// refuses while the replica is there, as the real providers do, records
// every call with the number of copy-ins made by then (0: before the drill
// restored anything), and fails those that fail says to.
type volRemover struct {
	*memory.Provider
	mu    sync.Mutex
	calls []string
	fail  func(copyIns int) error
}

func (v *volRemover) RemoveVolumes(ctx context.Context, d *providers.Desired, replica int) error {
	for _, in := range v.Observe(ctx, providers.ObserveRequest{ManagedBy: d.ManagedBy, Server: d.Server.Name}).Instances {
		if in.Replica == replica {
			return fmt.Errorf("%s replica %d still exists", d.Server.Name, replica)
		}
	}
	n := len(v.CopyIns)
	v.mu.Lock()
	v.calls = append(v.calls, fmt.Sprintf("%s/%d after %d", d.Server.Name, replica, n))
	v.mu.Unlock()
	if v.fail != nil {
		return v.fail(n)
	}
	return nil
}

func (v *volRemover) Calls() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return strings.Join(v.calls, ",")
}

func newDrillHarness(t *testing.T) (*backupHarness, *volRemover, *state.Backup) {
	t.Helper()
	h := newBackupHarness(t, fleetParts{})
	vr := &volRemover{Provider: h.mem}
	h.eng.Registry.Add("process.mem", vr)
	h.apply()
	h.setData("v1")
	b := h.backup(state.TriggerManual)
	return h, vr, b
}

func (h *backupHarness) drill() (*RestoreResult, error) {
	h.t.Helper()
	var res *RestoreResult
	var err error
	h.locked("drill", func() {
		res, err = h.eng.Restore(context.Background(), h.source().Config, RestoreRequest{Server: "db", Drill: true})
	})
	return res, err
}

// TestDrillRemovesVolumes: with a provider that removes volumes, a drill
// removes the volumes of its replica once the replica is stopped, and
// first those an earlier drill may have left; it says nothing of data
// left behind.
func TestDrillRemovesVolumes(t *testing.T) {
	h, vr, b := newDrillHarness(t)
	res, err := h.drill()
	if err != nil || res.Outcome != DrillPassed || res.Backup.ID != b.ID {
		t.Fatalf("drill: %+v, %v\n%s", res, err, h.progress)
	}
	if got, want := vr.Calls(), "db-drill/0 after 0,db-drill/0 after 1"; got != want {
		t.Errorf("RemoveVolumes calls: %s, want %s (before the drill, and after its copy-in once the replica was stopped)", got, want)
	}
	if got := h.mem.Servers(); strings.Join(got, ",") != "db" {
		t.Errorf("servers after the drill: %v", got)
	}
	for _, no := range []string{"cannot remove volumes", "warning", "earlier drill"} {
		if strings.Contains(h.progress.String(), no) {
			t.Errorf("the progress says %q:\n%s", no, h.progress)
		}
	}
}

// TestDrillClearsAnEarlierDrill: a replica of db-drill that a killed drill
// left is stopped before its volumes are removed and the drill starts.
func TestDrillClearsAnEarlierDrill(t *testing.T) {
	h, vr, _ := newDrillHarness(t)
	left := &spec.Server{Name: "db-drill", Version: "1.0.0", Replicas: 1}
	if r := h.mem.StartReplica(context.Background(), providers.StartRequest{Desired: &providers.Desired{Server: left, ManagedBy: "test"}, Replica: 0}); r.Err != nil {
		t.Fatal(r.Err)
	}
	res, err := h.drill()
	if err != nil || res.Outcome != DrillPassed {
		t.Fatalf("drill: %+v, %v\n%s", res, err, h.progress)
	}
	if !strings.Contains(h.progress.String(), "db-drill: drill: removing replica 0 of db-drill, which an earlier drill left (running)") {
		t.Errorf("the progress does not tell of the earlier drill's replica:\n%s", h.progress)
	}
	if got, want := vr.Calls(), "db-drill/0 after 0,db-drill/0 after 1"; got != want {
		t.Errorf("RemoveVolumes calls: %s, want %s", got, want)
	}
	if got := h.mem.Servers(); strings.Join(got, ",") != "db" {
		t.Errorf("servers after the drill: %v", got)
	}
}

// TestDrillVolumeRemovalFails: volumes an earlier drill left that cannot
// be removed fail the drill before it starts (on Docker, whose CopyIn
// merges, their files could hide a file missing from the archive); volumes
// of this drill that cannot be removed afterwards are a warning, and the
// drill's outcome stands.
func TestDrillVolumeRemovalFails(t *testing.T) {
	t.Run("before", func(t *testing.T) {
		h, vr, _ := newDrillHarness(t)
		vr.fail = func(int) error { return errors.New("volume busy") }
		res, err := h.drill()
		if err == nil || res.Outcome != DrillFailed || !strings.Contains(err.Error(), "removing what an earlier drill left") || !strings.Contains(err.Error(), "volume busy") {
			t.Fatalf("drill: %+v, %v", res, err)
		}
		if len(h.mem.CopyIns) != 0 || h.mem.Starts != 2 {
			t.Errorf("the drill went on: copy-ins %v, %d starts (2 are db's)", h.mem.CopyIns, h.mem.Starts)
		}
	})
	t.Run("after", func(t *testing.T) {
		h, vr, _ := newDrillHarness(t)
		vr.fail = func(copyIns int) error {
			if copyIns > 0 {
				return errors.New("volume busy")
			}
			return nil
		}
		res, err := h.drill()
		if err != nil || res.Outcome != DrillPassed {
			t.Fatalf("drill: %+v, %v", res, err)
		}
		if !strings.Contains(h.progress.String(), "db-drill: warning: removing the drill's volumes failed, and the data restored into them is still there: volume busy") {
			t.Errorf("no warning in the progress:\n%s", h.progress)
		}
	})
}

// TestDrillWithoutVolumeRemover: a provider that cannot remove volumes is
// said once to keep the drill's data.
func TestDrillWithoutVolumeRemover(t *testing.T) {
	h := newBackupHarness(t, fleetParts{})
	h.apply()
	h.setData("v1")
	h.backup(state.TriggerManual)
	res, err := h.drill()
	if err != nil || res.Outcome != DrillPassed {
		t.Fatalf("drill: %+v, %v", res, err)
	}
	if n := strings.Count(h.progress.String(), "cannot remove volumes, so the data the drill restores stays at the provider"); n != 1 {
		t.Errorf("the progress says %d times that the data stays, want once:\n%s", n, h.progress)
	}
}
