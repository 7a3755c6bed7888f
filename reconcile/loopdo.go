package reconcile

import (
	"context"
	"errors"
	"fmt"

	"github.com/tendhq/tend/reconcile/state"
)

// Kinds of the jobs a person asks for through Do.
const (
	JobBackup   = jobBackup  // take a backup now
	JobRetry    = "retry"    // release the holds of a server, then sync
	JobRollback = "rollback" // roll back to a verified revision
)

// ErrBusy is returned by Do when the loop's queue is full.
var ErrBusy = errors.New("the daemon is busy: its job queue is full; try again shortly")

type jobReply struct {
	msg string
	err error
}

// Do runs a job that a person asked for (the dashboard's actions) in the
// loop's goroutine, between passes and under the apply lock, as scheduled
// backups run: never while a pass applies. It waits for the outcome until
// ctx ends (the job still runs then). to is the revision of a JobRollback.
func (l *Loop) Do(ctx context.Context, kind, server string, to int64) (string, error) {
	l.init()
	switch kind {
	case JobBackup, JobRetry, JobRollback:
	default:
		return "", fmt.Errorf("unknown job %q", kind)
	}
	reply := make(chan jobReply, 1)
	select {
	case l.jobs <- job{kind: kind, server: server, to: to, reply: reply}:
	default:
		return "", ErrBusy
	}
	select {
	case r := <-reply:
		return r.msg, r.err
	case <-ctx.Done():
		return "", fmt.Errorf("%s of %s was queued; it runs after the current pass: %w", kind, server, ctx.Err())
	}
}

// runQueued runs a job of the queue, answers Do and tells subscribers.
func (l *Loop) runQueued(ctx context.Context, j job) {
	if j.reply == nil {
		_ = l.runJob(ctx, j)
		return
	}
	msg, err := l.runManual(ctx, j)
	j.reply <- jobReply{msg: msg, err: err}
	ev := LoopEvent{Kind: "job", Server: j.server, Message: j.kind + ": " + msg}
	if err != nil {
		ev.Message = j.kind + " failed"
	}
	l.publish(ev)
}

// runManual runs one job of Do under the apply lock.
func (l *Loop) runManual(ctx context.Context, j job) (string, error) {
	src := l.LastGood()
	if src == nil {
		return "", ErrStalled
	}
	if src.Config.Servers[j.server] == nil {
		return "", fmt.Errorf("%q is not a server of revision %s", j.server, src.Revision)
	}
	e := l.Engine
	release, err := e.Lock(j.kind)
	if err != nil {
		return "", err
	}
	defer release()
	switch j.kind {
	case JobBackup:
		b, err := e.Backup(ctx, src.Config, BackupRequest{Server: j.server, Trigger: state.TriggerManual})
		if bm, ok := l.Metrics.(BackupMetrics); ok && b != nil {
			bm.ObserveBackup(j.server, err == nil, b.FinishedAt, b.Duration(), b.Size)
		}
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("backup %s taken (%d bytes)", b.ID, b.Size), nil
	case JobRetry:
		n, err := e.Retry(j.server)
		if err != nil {
			return "", err
		}
		defer l.Trigger("retry")
		if n == 0 {
			return j.server + " has no held revision", nil
		}
		return fmt.Sprintf("released %d held revision(s) of %s; syncing", n, j.server), nil
	default: // JobRollback
		r, err := e.Store.Revision(j.to)
		if err != nil || r.Server != j.server {
			return "", fmt.Errorf("revision %d is not a revision of %s", j.to, j.server)
		}
		if r.Outcome != state.OutcomeVerified {
			return "", fmt.Errorf("revision %d of %s is %s, not verified: roll back to a verified revision", j.to, j.server, r.Outcome)
		}
		target, id, err := e.Rollback(ctx, src.Dir, j.server, j.to, "")
		if err != nil {
			return "", err
		}
		defer l.Trigger("rollback")
		return fmt.Sprintf("rolled %s back to revision %d (%s), verified as revision %d; the state it left is held", j.server, target.ID, target.Version, id), nil
	}
}
