package reconcile

import (
	"context"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/tendhq/tend/reconcile/state"
)

// Kinds of the loop's scheduled jobs.
const (
	jobBackup = "backup"
	jobDrill  = "drill"
	jobScale  = "autoscale"
)

// job is a scheduled backup or drill of one server. Jobs run in the loop's
// goroutine between passes, under the apply lock, so a backup never sees a
// server half way through a change.
type job struct {
	kind, server string
	scale        *ScaleStatus // the decision of a jobScale
	// A job of Do: the revision to roll back to, and where the outcome goes.
	to    int64
	reply chan jobReply
}

// enqueue hands a job to the loop; when the queue is full (the loop is
// stuck in a long apply), the job is dropped and logged.
func (l *Loop) enqueue(j job) {
	l.init()
	select {
	case l.jobs <- j:
	default:
		l.Log.WithFields(logrus.Fields{"server": j.server, "job": j.kind}).Warn("scheduled job dropped: the queue is full")
	}
}

// RunJob runs a backup ("backup") or a restore drill ("drill") of server
// now, as its schedule would; tests and the API use it.
func (l *Loop) RunJob(ctx context.Context, kind, server string) error {
	l.init()
	return l.runJob(ctx, job{kind: kind, server: server})
}

func (l *Loop) runJob(ctx context.Context, j job) error {
	src := l.LastGood()
	if src == nil {
		return ErrStalled
	}
	e := l.Engine
	release, err := e.Lock(j.kind)
	if err != nil {
		l.logOnce("cannot take the lock for a scheduled job", logrus.Fields{"server": j.server, "job": j.kind, "error": err.Error()})
		return err
	}
	defer release()
	log := l.Log.WithFields(logrus.Fields{"server": j.server, "job": j.kind})
	bm, _ := l.Metrics.(BackupMetrics)
	switch j.kind {
	case jobBackup:
		b, err := e.Backup(ctx, src.Config, BackupRequest{Server: j.server, Trigger: state.TriggerSchedule})
		if bm != nil && b != nil {
			bm.ObserveBackup(j.server, err == nil, b.FinishedAt, b.Duration(), b.Size)
		}
		if err != nil {
			log.WithField("error", err.Error()).Error("scheduled backup failed")
			l.notify("backup", j.server, "", src.Revision, "backup failed: "+err.Error())
			return err
		}
		log.WithFields(logrus.Fields{"backup": b.ID, "size": b.Size}).Info("scheduled backup done")
	case jobScale:
		// Until it ends, the autoscaler does not queue another scale of
		// this server (its count is moving).
		defer func() {
			l.mu.Lock()
			delete(l.scaleQueued, j.server)
			l.mu.Unlock()
		}()
		// A scale that has started finishes its step on shutdown, as the
		// servers of an apply in flight do.
		return l.scale(context.WithoutCancel(ctx), src, *j.scale)
	case jobUpdate:
		if rep := l.runUpdate(ctx, src, j.server); rep.Error != "" {
			return fmt.Errorf("%s", rep.Error)
		}
	case jobDrill:
		res, err := e.Drill(ctx, src.Config, RestoreRequest{Server: j.server, Drill: true})
		if bm != nil {
			bm.ObserveDrill(j.server, err == nil, time.Now())
		}
		if err != nil {
			log.WithField("error", err.Error()).Error("restore drill failed")
			l.notify("backup", j.server, "", src.Revision, "restore drill failed: "+err.Error())
			return err
		}
		log.WithField("backup", res.Backup.ID).Info("restore drill passed")
	}
	return nil
}

// seedBackupMetrics sets the backup gauges from the catalog, so that a
// restarted daemon reports the age of the last backup at once.
func (l *Loop) seedBackupMetrics() {
	bm, ok := l.Metrics.(BackupMetrics)
	if !ok {
		return
	}
	good, _, err := l.Engine.Store.LatestBackups()
	if err != nil {
		return
	}
	for server, b := range good {
		bm.ObserveBackup(server, true, b.FinishedAt, b.Duration(), b.Size)
	}
	_, passed, err := l.Engine.Store.LatestDrills()
	if err != nil {
		return
	}
	for server, d := range passed {
		bm.ObserveDrill(server, true, d.FinishedAt)
	}
}
