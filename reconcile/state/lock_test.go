package state

import (
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

var applyInfo = LockInfo{Owner: "tend apply", Operation: "apply"}

func TestLockExclusive(t *testing.T) {
	backends(t, func(t *testing.T) {
		a := openStore(t)
		b := reopen(t, a.path)

		lease, err := a.Lock(applyInfo, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if lease.TookOverFrom != nil {
			t.Errorf("took over from %+v a free lock", lease.TookOverFrom)
		}
		if lease.Info.Host != hostname() || lease.Info.PID != os.Getpid() || lease.Info.Owner != "tend apply" {
			t.Errorf("lease info = %+v", lease.Info)
		}
		if d := lease.Info.ExpiresAt.Sub(lease.Info.AcquiredAt); d != time.Hour {
			t.Errorf("ttl = %v", d)
		}

		_, err = b.Lock(LockInfo{Owner: "alice", Operation: "rollback"}, time.Hour)
		var locked *LockedError
		if !errors.As(err, &locked) {
			t.Fatalf("second Lock = %v, want *LockedError", err)
		}
		if locked.Holder != lease.Info {
			t.Errorf("LockedError holder = %+v, want %+v", locked.Holder, lease.Info)
		}
		msg := err.Error()
		for _, want := range []string{"state is locked by tend apply (pid ", " on " + hostname() + ", apply) since ", "; it expires at ", "run `tend unlock`"} {
			if !strings.Contains(msg, want) {
				t.Errorf("message %q lacks %q", msg, want)
			}
		}
		t.Log(msg)

		h, err := b.LockHolder()
		if err != nil || h == nil || *h != lease.Info {
			t.Errorf("LockHolder = %+v, %v; want %+v", h, err, lease.Info)
		}

		if err := lease.Refresh(2 * time.Hour); err != nil {
			t.Fatal(err)
		}
		if h, _ := b.LockHolder(); !h.ExpiresAt.Equal(lease.Info.ExpiresAt) || h.ExpiresAt.Sub(h.AcquiredAt) < 2*time.Hour-time.Second {
			t.Errorf("after Refresh holder = %+v, lease = %+v", h, lease.Info)
		}

		if err := lease.Release(); err != nil {
			t.Fatal(err)
		}
		if err := lease.Release(); err != nil {
			t.Errorf("second Release = %v", err)
		}
		if err := lease.Refresh(time.Hour); !errors.Is(err, ErrLockLost) {
			t.Errorf("Refresh after Release = %v, want ErrLockLost", err)
		}
		if h, err := b.LockHolder(); err != nil || h != nil {
			t.Fatalf("LockHolder after Release = %+v, %v", h, err)
		}
		lb, err := b.Lock(LockInfo{Owner: "alice", Operation: "rollback"}, time.Hour)
		if err != nil {
			t.Fatalf("Lock after Release: %v", err)
		}
		if lb.TookOverFrom != nil {
			t.Errorf("took over from %+v a released lock", lb.TookOverFrom)
		}
	})
}

func TestLockExpiredIsTakenOver(t *testing.T) {
	backends(t, func(t *testing.T) {
		a := openStore(t)
		b := reopen(t, a.path)
		a.now = func() time.Time { return time.Now().Add(-time.Hour) } // a took the lock an hour ago
		old, err := a.Lock(applyInfo, time.Minute)
		if err != nil {
			t.Fatal(err)
		}

		lease, err := b.Lock(LockInfo{Owner: "tend daemon", Operation: "run"}, time.Minute)
		if err != nil {
			t.Fatalf("Lock over an expired lock: %v", err)
		}
		if lease.TookOverFrom == nil || *lease.TookOverFrom != old.Info {
			t.Fatalf("TookOverFrom = %+v, want %+v", lease.TookOverFrom, old.Info)
		}
		if !strings.Contains(lease.TakeoverReason, "expired") {
			t.Errorf("TakeoverReason = %q", lease.TakeoverReason)
		}

		// The old holder's lease is lost: it can neither refresh nor release.
		if err := old.Refresh(time.Hour); !errors.Is(err, ErrLockLost) || !strings.Contains(err.Error(), "tend daemon") {
			t.Errorf("Refresh after takeover = %v, want ErrLockLost naming the new holder", err)
		}
		if err := old.Release(); !errors.Is(err, ErrLockLost) {
			t.Errorf("Release after takeover = %v, want ErrLockLost", err)
		}
		if h, _ := b.LockHolder(); h == nil || *h != lease.Info {
			t.Errorf("old Release freed the new holder's lock: holder %+v", h)
		}
		if err := lease.Refresh(time.Minute); err != nil {
			t.Errorf("new holder's Refresh: %v", err)
		}
	})
}

// On another host only expiry counts: a PID there means nothing here.
func TestLockOtherHostNotTakenOver(t *testing.T) {
	backends(t, func(t *testing.T) {
		a := openStore(t)
		b := reopen(t, a.path)
		other := LockInfo{Owner: "tend apply", Operation: "apply", Host: "elsewhere.example", PID: 1 << 22} // no such PID here, were it here
		if _, err := a.Lock(other, time.Hour); err != nil {
			t.Fatal(err)
		}
		_, err := b.Lock(applyInfo, time.Hour)
		var locked *LockedError
		if !errors.As(err, &locked) || locked.Holder.Host != "elsewhere.example" {
			t.Fatalf("Lock = %v, want *LockedError from elsewhere.example", err)
		}
	})
}

func TestForceUnlock(t *testing.T) {
	backends(t, func(t *testing.T) {
		a := openStore(t)
		b := reopen(t, a.path)
		if h, err := b.ForceUnlock(); err != nil || h != nil {
			t.Fatalf("ForceUnlock of a free lock = %+v, %v", h, err)
		}
		lease, err := a.Lock(applyInfo, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		h, err := b.ForceUnlock()
		if err != nil || h == nil || *h != lease.Info {
			t.Fatalf("ForceUnlock = %+v, %v; want %+v", h, err, lease.Info)
		}
		if h, _ := a.LockHolder(); h != nil {
			t.Fatalf("lock still held by %+v", h)
		}
		if err := lease.Refresh(time.Hour); !errors.Is(err, ErrLockLost) || !strings.Contains(err.Error(), "removed") {
			t.Errorf("Refresh after ForceUnlock = %v", err)
		}
		if err := lease.Release(); !errors.Is(err, ErrLockLost) {
			t.Errorf("Release after ForceUnlock = %v", err)
		}
		if _, err := b.Lock(applyInfo, time.Hour); err != nil {
			t.Errorf("Lock after ForceUnlock: %v", err)
		}
	})
}

func TestLockBadTTL(t *testing.T) {
	backends(t, func(t *testing.T) {
		s := openStore(t)
		if _, err := s.Lock(applyInfo, 0); err == nil {
			t.Error("Lock accepted ttl 0")
		}
	})
}

// Eight tends racing for the lock through eight handles: exactly one wins,
// the others see it held by the winner.
func TestLockConcurrent(t *testing.T) {
	backends(t, func(t *testing.T) {
		first := openStore(t)
		const n = 8
		stores := []*Store{first}
		for len(stores) < n {
			stores = append(stores, reopen(t, first.path))
		}
		var (
			wg     sync.WaitGroup
			start  = make(chan struct{})
			leases = make([]*Lease, n)
			errs   = make([]error, n)
		)
		for i := range n {
			wg.Go(func() {
				<-start
				leases[i], errs[i] = stores[i].Lock(LockInfo{Owner: "racer", Operation: "apply"}, time.Hour)
			})
		}
		close(start)
		wg.Wait()

		var winner *Lease
		for i := range n {
			var locked *LockedError
			switch {
			case errs[i] == nil:
				if winner != nil {
					t.Fatalf("two winners: %+v and %+v", winner.Info, leases[i].Info)
				}
				winner = leases[i]
			case errors.As(errs[i], &locked):
			default:
				t.Errorf("racer %d: %v", i, errs[i])
			}
		}
		if winner == nil {
			t.Fatal("nobody won the lock")
		}
		if winner.TookOverFrom != nil {
			t.Errorf("winner took over from %+v", winner.TookOverFrom)
		}
		for i := range n {
			var locked *LockedError
			if errors.As(errs[i], &locked) && locked.Holder != winner.Info {
				t.Errorf("racer %d saw holder %+v, want the winner %+v", i, locked.Holder, winner.Info)
			}
		}
	})
}
