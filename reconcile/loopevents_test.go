package reconcile

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// next waits for the next event of ch that kind matches.
func nextEvent(t *testing.T, ch <-chan LoopEvent, kind string) LoopEvent {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("the subscription closed while waiting for %q", kind)
			}
			if ev.Kind == kind {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %q event", kind)
		}
	}
}

func TestLoopEventsFanOutAndDropSlowSubscribers(t *testing.T) {
	h := newLoopHarness(t)
	h.waitPasses(1)
	fast, cancelFast, ok := h.loop.Subscribe(64)
	if !ok {
		t.Fatal("subscribe refused")
	}
	defer cancelFast()
	slow, cancelSlow, _ := h.loop.Subscribe(1) // never read
	defer cancelSlow()
	if n := h.loop.Subscribers(); n != 2 {
		t.Fatalf("%d subscribers, want 2", n)
	}

	h.mem.FailVersion["api@2.0.0"] = true
	h.write("2.0.0", false)
	h.pass()
	ev := nextEvent(t, fast, "rollback")
	if ev.Server != "api" || ev.Version != "2.0.0" || ev.Revision == "" || ev.Time.IsZero() {
		t.Fatalf("rollback event: %+v", ev)
	}
	if ev := nextEvent(t, fast, "pass"); ev.Message != PassFailed {
		t.Fatalf("pass event: %+v, want result %s", ev, PassFailed)
	}
	// The slow subscriber fell behind: it was dropped (its channel closed
	// after the one event it had room for), and the loop went on.
	<-slow
	if _, open := <-slow; open {
		t.Fatal("the slow subscriber was not dropped")
	}
	if n := h.loop.Subscribers(); n != 1 {
		t.Fatalf("%d subscribers after the drop, want 1", n)
	}
	for i := 0; i < 3; i++ {
		h.pass()
	}
	cancelFast()
	cancelFast() // idempotent
	if n := h.loop.Subscribers(); n != 0 {
		t.Fatalf("%d subscribers after cancel, want 0", n)
	}
}

func TestLoopSubscribeBound(t *testing.T) {
	l := &Loop{}
	var cancels []func()
	for i := 0; i < MaxSubscribers; i++ {
		_, c, ok := l.Subscribe(1)
		if !ok {
			t.Fatalf("subscriber %d refused", i)
		}
		cancels = append(cancels, c)
	}
	if _, _, ok := l.Subscribe(1); ok {
		t.Fatal("a subscriber past MaxSubscribers was accepted")
	}
	cancels[0]()
	if _, _, ok := l.Subscribe(1); !ok {
		t.Fatal("a freed place was not reused")
	}
}

func TestLoopDoRetryAndRollback(t *testing.T) {
	h := newLoopHarness(t)
	h.waitPasses(1)
	ctx := context.Background()
	events, cancel, _ := h.loop.Subscribe(64)
	defer cancel()

	// A held revision, released through the queue; the sync it asks for
	// holds it again (the version still fails).
	h.mem.FailVersion["api@2.0.0"] = true
	h.write("2.0.0", false)
	h.pass()
	msg, err := h.loop.Do(ctx, JobRetry, "api", 0)
	if err != nil || !strings.Contains(msg, "released 1 held revision(s) of api") {
		t.Fatalf("retry: %q %v", msg, err)
	}
	if ev := nextEvent(t, events, "job"); ev.Server != "api" || !strings.HasPrefix(ev.Message, "retry: released") {
		t.Fatalf("job event: %+v", ev)
	}
	nextEvent(t, events, "rollback") // the retried revision failed again

	// Roll back to a verified revision.
	delete(h.mem.FailVersion, "api@2.0.0")
	h.write("1.1.0", false)
	h.pass()
	hist, err := h.eng.Store.History("api", 0)
	if err != nil {
		t.Fatal(err)
	}
	var first, failed int64
	for _, r := range hist {
		if r.Version == "1.0.0" {
			first = r.ID
		}
		if r.Version == "2.0.0" {
			failed = r.ID
		}
	}
	if _, err := h.loop.Do(ctx, JobRollback, "api", failed); err == nil || !strings.Contains(err.Error(), "not verified") {
		t.Fatalf("rollback to a failed revision: %v", err)
	}
	if _, err := h.loop.Do(ctx, JobRollback, "worker", first); err == nil || !strings.Contains(err.Error(), "is not a revision of worker") {
		t.Fatalf("rollback to another server's revision: %v", err)
	}
	msg, err = h.loop.Do(ctx, JobRollback, "api", first)
	if err != nil || !strings.Contains(msg, "rolled api back to revision") {
		t.Fatalf("rollback: %q %v", msg, err)
	}
	if got := strings.Join(h.versions("api"), ","); got != "1.0.0,1.0.0" {
		t.Fatalf("after the rollback: %s", got)
	}
	if _, err := h.loop.Do(ctx, JobRetry, "nope", 0); err == nil || !strings.Contains(err.Error(), `"nope" is not a server`) {
		t.Fatalf("unknown server: %v", err)
	}
	if _, err := h.loop.Do(ctx, "format-disk", "api", 0); err == nil {
		t.Fatal("an unknown job was accepted")
	}
}

func TestLoopDoRefusesWhenTheQueueIsFull(t *testing.T) {
	l := &Loop{Fetcher: &DirFetcher{Dir: t.TempDir()}}
	l.init()
	for i := 0; i < cap(l.jobs); i++ {
		l.jobs <- job{kind: jobBackup, server: "x"}
	}
	if _, err := l.Do(context.Background(), JobBackup, "x", 0); !errors.Is(err, ErrBusy) {
		t.Fatalf("a full queue: %v, want ErrBusy", err)
	}
	// A job queued while no loop runs waits; the caller's context bounds it.
	<-l.jobs
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := l.Do(ctx, JobBackup, "x", 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("no loop running: %v", err)
	}
}
