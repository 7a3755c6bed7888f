package reconcile

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/tendhq/tend/reconcile/state"
)

// autoscale samples and decides every ScaleInterval until ctx ends. The
// sampling runs beside the loop (it only reads); a decision that changes a
// count becomes a job, which the loop runs between passes under the apply
// lock, so a scale never interleaves with an apply.
func (l *Loop) autoscale(ctx context.Context) {
	every := l.ScaleInterval
	if every <= 0 {
		every = DefaultScaleInterval
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		l.evaluateScale(ctx)
	}
}

// EvaluateScale runs one autoscaler pass now and queues the scales it
// decides; tests use it.
func (l *Loop) EvaluateScale(ctx context.Context) []ScaleStatus {
	l.init()
	return l.evaluateScale(ctx)
}

func (l *Loop) evaluateScale(ctx context.Context) []ScaleStatus {
	src := l.LastGood()
	if src == nil || l.Autoscaler == nil {
		return nil
	}
	sts, err := l.Autoscaler.Evaluate(ctx, src)
	if err != nil {
		if ctx.Err() == nil {
			l.logOnce("autoscaler pass failed", logrus.Fields{"error": err.Error()})
		}
		return nil
	}
	sm, _ := l.Metrics.(ScaleMetrics)
	for _, st := range sts {
		if sm != nil {
			values := map[int]map[string]float64{}
			for _, s := range st.Samples {
				if len(s.Values) > 0 {
					values[s.Replica] = s.Values
				}
			}
			sm.SetScale(st.Server, st.Decision.Desired, st.Replicas, st.Running, values)
		}
		if !st.Decision.Changes() {
			continue
		}
		l.mu.Lock()
		if l.scaleQueued == nil {
			l.scaleQueued = map[string]bool{}
		}
		queued := l.scaleQueued[st.Server]
		l.scaleQueued[st.Server] = true
		l.mu.Unlock()
		if queued {
			continue
		}
		st := st
		l.Log.WithFields(logrus.Fields{"server": st.Server, "from": st.Decision.Current, "to": st.Decision.Desired, "reason": st.Decision.Reason}).Debug("autoscaler decided")
		l.enqueue(job{kind: jobScale, server: st.Server, scale: &st})
	}
	return sts
}

// scale applies one decision (the loop holds the apply lock).
func (l *Loop) scale(ctx context.Context, src *Source, st ScaleStatus) error {
	res, err := l.Autoscaler.Scale(ctx, src, st)
	log := l.Log.WithFields(logrus.Fields{"server": res.Server, "from": res.From, "to": res.To})
	if errors.Is(err, errScaleStale) {
		log.WithField("reason", err.Error()).Debug("autoscaler decision dropped")
		return nil
	}
	if err != nil {
		log.WithField("error", err.Error()).Error("autoscaling failed")
		return err
	}
	if res.Outcome == "" {
		return nil
	}
	if sm, ok := l.Metrics.(ScaleMetrics); ok {
		sm.ObserveScale(res.Server, res.To > res.From, res.Outcome)
	}
	log.WithFields(logrus.Fields{"outcome": res.Outcome, "decision": res.DecisionID, "revision_id": res.RevisionID}).Info("autoscaled")
	what := fmt.Sprintf("scaled from %d to %d replicas: %s", res.From, res.To, st.Decision.Reason)
	switch res.Outcome {
	case state.ScaleApplied:
		l.notify("scale", res.Server, "", src.Revision, what)
	case state.ScaleFailed:
		l.notify("scale", res.Server, "", src.Revision, fmt.Sprintf("scaling from %d to %d replicas failed, back at %d: %s", res.From, res.To, res.From, res.Message))
	case state.ScaleHeld:
		l.notify("scale", res.Server, "", src.Revision, res.Message)
	case state.ScaleInterrupted:
		// Goes with the server's other changes in the next pass.
		l.Trigger("autoscale")
	}
	return nil
}
