package reconcile

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	autoupdate "github.com/tendhq/tend/reconcile/update"
	"github.com/tendhq/tend/reconcile/versions"
	"github.com/tendhq/tend/spec"
)

// jobUpdate is the loop's job kind of an update run; its server field
// holds the job's key (autoupdate.Job.Key).
const jobUpdate = "update"

// UpdateMetrics is what the loop reports of automatic updates, when its
// Metrics has it.
type UpdateMetrics interface {
	// ObserveUpdate records a run: when, whether it failed, whether it
	// pushed a commit, and per server whether an update is available.
	ObserveUpdate(at time.Time, failed, pushed bool, available map[string]bool)
}

// UpdateStatus is one server's line of the daemon's update status: what
// the last run of its update job found and did.
type UpdateStatus struct {
	versions.Available
	Job    string    `json:"job"`
	At     time.Time `json:"at"`
	Commit bool      `json:"commit"`           // the settings commit
	Branch string    `json:"branch,omitempty"` // where the commit went
	Pushed string    `json:"pushed,omitempty"` // the commit that moved it
	Failed string    `json:"failed,omitempty"` // the run failed
}

// updateJobs returns the cron entries of the update jobs of cfg:
// "EXPR=update:KEY".
func (l *Loop) updateJobs(cfg *spec.Config) []string {
	if l.Updater == nil {
		return nil
	}
	var out []string
	for _, j := range autoupdate.Jobs(cfg) {
		out = append(out, j.Schedule+"="+jobUpdate+":"+j.Key)
	}
	return out
}

// runUpdate runs the update job key of src (a job whose settings changed
// since it was scheduled is not found and does nothing), then reports.
func (l *Loop) runUpdate(ctx context.Context, src *Source, key string) autoupdate.Report {
	var job *autoupdate.Job
	for _, j := range autoupdate.Jobs(src.Config) {
		if j.Key == key {
			job = &j
			break
		}
	}
	if job == nil || l.Updater == nil {
		return autoupdate.Report{Job: key}
	}
	rep := l.Updater.Run(ctx, src.Config, src.Files, *job)
	l.reportUpdate(src, *job, rep)
	return rep
}

func (l *Loop) reportUpdate(src *Source, job autoupdate.Job, rep autoupdate.Report) {
	log := l.Log.WithFields(logrus.Fields{"job": job.Key, "servers": strings.Join(job.Servers(), ","), "commit": job.Commit})
	moves := rep.Moves()
	var lines []string
	for _, m := range moves {
		lines = append(lines, fmt.Sprintf("%s %s → %s (%s)", m.Server, m.Locked, m.To, m.Bump))
	}
	switch {
	case rep.Error != "":
		log.WithFields(logrus.Fields{"error": rep.Error, "available": strings.Join(lines, "; ")}).Error("update failed")
	case rep.Pushed != "":
		log.WithFields(logrus.Fields{"branch": rep.Branch, "pushed": rep.Pushed, "attempts": rep.Attempts, "updated": strings.Join(lines, "; ")}).Info("update committed")
	case len(moves) > 0:
		log.WithField("available", strings.Join(lines, "; ")).Info("updates available; commit is off, so they are only reported")
	default:
		log.Info("update run: nothing to update")
	}
	for _, a := range rep.Servers {
		if a.Error != "" {
			log.WithFields(logrus.Fields{"server": a.Server, "error": a.Error}).Warn("update: cannot resolve the server")
		}
	}
	l.storeUpdate(job, rep)
	if um, ok := l.Metrics.(UpdateMetrics); ok {
		avail := map[string]bool{}
		for _, a := range rep.Servers {
			avail[a.Server] = a.Moves() && rep.Pushed == ""
		}
		um.ObserveUpdate(rep.At, rep.Error != "", rep.Pushed != "", avail)
	}
	l.notifyUpdate(src, rep, moves)
	if rep.Pushed != "" && rep.Branch == l.Updater.Watched {
		// The commit is on the branch tend watches: the normal loop takes
		// it now rather than at the next poll.
		l.Trigger("update")
	}
}

// notifyUpdate sends update events: per server moved (committed, or
// available without commit), and one for a failed run. A run that finds
// what the previous run of the job found, without committing, sends
// nothing again.
func (l *Loop) notifyUpdate(src *Source, rep autoupdate.Report, moves []versions.Available) {
	sig := rep.Error
	for _, m := range moves {
		sig += "|" + m.Server + "=" + m.To
	}
	l.mu.Lock()
	if l.updateSent == nil {
		l.updateSent = map[string]string{}
	}
	same := l.updateSent[rep.Job] == sig && rep.Pushed == ""
	l.updateSent[rep.Job] = sig
	l.mu.Unlock()
	if same {
		return
	}
	for _, m := range moves {
		msg := fmt.Sprintf("%s → %s (%s) available; commit is off, so tend only reports it", m.Locked, m.To, m.Bump)
		switch {
		case rep.Pushed != "":
			msg = fmt.Sprintf("%s → %s (%s), committed %s to %s", m.Locked, m.To, m.Bump, short(rep.Pushed), rep.Branch)
		case rep.Error != "":
			msg = fmt.Sprintf("%s → %s (%s) available, and not committed: %s", m.Locked, m.To, m.Bump, rep.Error)
		}
		l.notify("update", m.Server, m.To, src.Revision, msg)
	}
	if rep.Error != "" && len(moves) == 0 {
		l.notify("update", "", "", src.Revision, "update failed: "+rep.Error)
	}
}

func short(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}

// storeUpdate keeps, per server, the last run of its job for the status.
func (l *Loop) storeUpdate(job autoupdate.Job, rep autoupdate.Report) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.updates == nil {
		l.updates = map[string]UpdateStatus{}
	}
	for _, a := range rep.Servers {
		l.updates[a.Server] = UpdateStatus{Available: a, Job: job.Key, At: rep.At, Commit: job.Commit, Branch: rep.Branch, Pushed: rep.Pushed, Failed: rep.Error}
	}
	if len(rep.Servers) == 0 && rep.Error != "" {
		for _, n := range job.Servers() {
			l.updates[n] = UpdateStatus{Available: versions.Available{Server: n, Policy: job.Policies[n]}, Job: job.Key, At: rep.At, Commit: job.Commit, Branch: rep.Branch, Failed: rep.Error}
		}
	}
}

// updateStatusLocked lists the servers' update status by name, leaving out
// servers that no longer have update settings.
func (l *Loop) updateStatusLocked() []UpdateStatus {
	var out []UpdateStatus
	var cfg *spec.Config
	if l.lastGood != nil {
		cfg = l.lastGood.Config
	}
	for n, u := range l.updates {
		if cfg != nil && cfg.UpdateOf(n) == nil {
			continue
		}
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Server < out[j].Server })
	return out
}
