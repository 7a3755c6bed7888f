package dashboard

import (
	"fmt"
	"io"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/tendhq/tend/reconcile"
	"github.com/tendhq/tend/reconcile/state"
)

// bigFleet is n servers as a large fleet shows them: two replicas each,
// a backup, every tenth held, every seventh waiting, every fifth scaled.
func bigFleet(n int) *fakeData {
	now := time.Now()
	f := &fakeData{events: make(chan reconcile.LoopEvent)}
	for i := 0; i < n; i++ {
		st := status(fmt.Sprintf("server-%04d", i), fmt.Sprintf("docker.host%d", i%8), "healthy")
		st.LastRevision.Message = "updated 1.0.0 → 1.1.0, verified: 2 replicas healthy for 30s"
		good := &state.Backup{ID: "b", Outcome: state.BackupOK, FinishedAt: now.Add(-time.Hour)}
		st.Backup = &reconcile.BackupStatus{LastGood: good, Last: good}
		if i%10 == 0 {
			st.Health = "degraded"
			st.Held = []state.Hold{{Version: "1.2.0", Reason: "verification failed: replica 1 exited (exit code 3) during verify_for"}}
			st.Pending = "held: 1.2.0 failed verification; `tend retry` releases it"
		}
		if i%7 == 0 {
			st.Pending, st.Waiting = "update, waiting for window \"weekdays\" (opens Mon 09:00 UTC)", true
		}
		if i%5 == 0 {
			st.Scaling = &reconcile.ScalingStatus{By: "tend", Min: 2, Max: 10, Declared: 2, Autoscaled: 4}
		}
		f.fleet.Servers = append(f.fleet.Servers, st)
	}
	f.fleet.Daemon = reconcile.LoopStatus{Ready: true, Source: "https://git.example.com/fleet.git@main", Revision: "0123456789ab", LastPass: now, LastResult: "no-change"}
	return f
}

func fleetHandler(n int) *Handler {
	log := logrus.New()
	log.SetOutput(io.Discard)
	return New(bigFleet(n), Options{Token: "t", Log: log})
}

// TestFleetPageOfAThousandServersStaysUnderOneMiB: the size target of the
// fleet page (the time target is BenchmarkFleetPage1000).
func TestFleetPageOfAThousandServersStaysUnderOneMiB(t *testing.T) {
	h := fleetHandler(1000)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 200 {
		t.Fatalf("status %d", rec.Code)
	}
	if n := rec.Body.Len(); n >= 1<<20 {
		t.Fatalf("the fleet page of 1,000 servers is %d bytes, over 1 MiB", n)
	} else {
		t.Logf("the fleet page of 1,000 servers: %d bytes", n)
	}
}

// BenchmarkFleetPage1000 renders the fleet page of 1,000 servers, from the
// status to the last byte of HTML; the target is under 300 ms.
func BenchmarkFleetPage1000(b *testing.B) {
	h := fleetHandler(1000)
	req := httptest.NewRequest("GET", "/", nil)
	var size int
	b.ResetTimer()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		size = rec.Body.Len()
	}
	b.ReportMetric(float64(size), "html-bytes")
}
