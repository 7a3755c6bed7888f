package approval

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/tendhq/tend/reconcile/state"
	"github.com/tendhq/tend/spec"
)

// Run is one revision of a server in the environment a version is promoted
// from.
type Run struct {
	ID         int64
	Version    string
	Outcome    state.Outcome
	StartedAt  time.Time
	FinishedAt time.Time
}

// History reads another environment's revisions of a server, newest first.
type History interface {
	Runs(ctx context.Context, server string) ([]Run, error)
}

// historyLimit is how many revisions of a server are read: the API's
// largest page.
const historyLimit = 1000

// historyTimeout bounds one read of another tend's history.
const historyTimeout = 10 * time.Second

// NewHistory returns the history source of a promotion rule: the other
// tend's API (url, token) or its state directory (store).
func NewHistory(p *spec.Promotion, client *http.Client) History {
	if p.Store != "" {
		return storeHistory{dir: p.Store}
	}
	if client == nil {
		client = &http.Client{Timeout: historyTimeout}
	}
	return apiHistory{base: strings.TrimRight(p.URL, "/"), token: p.Token.Reveal(), client: client}
}

type storeHistory struct{ dir string }

func (h storeHistory) Runs(_ context.Context, server string) ([]Run, error) {
	st, err := state.OpenReadOnly(filepath.Join(h.dir, "state.db"))
	if err != nil {
		return nil, err
	}
	defer st.Close()
	revs, err := st.History(server, historyLimit)
	if err != nil {
		return nil, err
	}
	return runs(revs), nil
}

type apiHistory struct {
	base, token string
	client      *http.Client
}

func (h apiHistory) Runs(ctx context.Context, server string) ([]Run, error) {
	ctx, cancel := context.WithTimeout(ctx, historyTimeout)
	defer cancel()
	u := h.base + "/api/v1/history?" + url.Values{"server": {server}, "limit": {fmt.Sprint(historyLimit)}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	if h.token != "" {
		req.Header.Set("Authorization", "Bearer "+h.token)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is said by the caller
		}
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		if e.Error == "" {
			e.Error = http.StatusText(resp.StatusCode)
		}
		return nil, fmt.Errorf("it answered %d: %s", resp.StatusCode, e.Error)
	}
	var revs []state.Revision
	if err := json.Unmarshal(body, &revs); err != nil {
		return nil, fmt.Errorf("its answer is not a list of revisions: %v", err)
	}
	return runs(revs), nil
}

func runs(revs []state.Revision) []Run {
	out := make([]Run, 0, len(revs))
	for _, r := range revs {
		out = append(out, Run{ID: r.ID, Version: r.Version, Outcome: r.Outcome, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt})
	}
	return out
}

// Verdict is what a promotion rule says of a version.
type Verdict struct {
	OK bool `json:"ok"`
	// Reason says why, in words, for the plan.
	Reason string `json:"reason"`
	// Until is when the soak ends and the version may go (zero when no
	// time will tell: it failed, or it is unknown).
	Until time.Time `json:"until,omitzero"`
	// Failed: the version failed verification in the other environment.
	Failed bool `json:"failed,omitempty"`
}

// Decide says whether version may be promoted from the environment from,
// after soak, given that environment's runs of the server (newest first)
// or the error reading them. The newest run of the version that ended
// decides: failed or rolled back, it is not promoted; verified, it is, once
// soak has passed since the first of the verified runs that follow its
// last failure.
func Decide(from string, soak time.Duration, version string, history []Run, readErr error, now time.Time) Verdict {
	if readErr != nil {
		return Verdict{Reason: fmt.Sprintf("the history of %s cannot be read (%v); %s is not promoted until it can", from, readErr, version)}
	}
	var since time.Time
	var sinceID int64
	pending := false
	for _, r := range history {
		if r.Version != version {
			continue
		}
		switch r.Outcome {
		case state.OutcomeVerified:
			since, sinceID = r.FinishedAt, r.ID
			continue
		case state.OutcomeFailed, state.OutcomeRolledBack:
			if since.IsZero() {
				return Verdict{Failed: true, Reason: fmt.Sprintf("%s failed verification in %s (revision %d, %s); it is not promoted", version, from, r.ID, clock(r.FinishedAt, now))}
			}
		case state.OutcomePending:
			if since.IsZero() {
				pending = true
			}
			continue
		default:
			continue // interrupted, deleted: they say nothing of the version
		}
		break
	}
	if since.IsZero() {
		if pending {
			return Verdict{Reason: fmt.Sprintf("%s is being verified in %s; it is promoted once it is verified there and %s has passed", version, from, roundDuration(soak))}
		}
		return Verdict{Reason: fmt.Sprintf("%s has no record of %s; it is promoted once it was verified there and %s has passed", from, version, roundDuration(soak))}
	}
	age := now.Sub(since)
	until := since.Add(soak)
	if age < soak {
		return Verdict{Until: until, Reason: fmt.Sprintf("%s was verified in %s %s ago (revision %d); it may be promoted after %s", version, from, roundDuration(age), sinceID, clock(until, now))}
	}
	return Verdict{OK: true, Reason: fmt.Sprintf("%s was verified in %s %s ago (revision %d), more than the soak of %s", version, from, roundDuration(age), sinceID, roundDuration(soak))}
}

// clock is a time for a person, in UTC: "13:05 UTC" today, else with its
// date.
func clock(t, now time.Time) string {
	t, now = t.UTC(), now.UTC()
	if t.Year() == now.Year() && t.YearDay() == now.YearDay() {
		return t.Format("15:04:05 UTC")
	}
	return t.Format("2006-01-02 15:04 UTC")
}

// roundDuration is a duration for a person: "12 min", "3h 5 min", "2 days".
func roundDuration(d time.Duration) string {
	switch {
	case d < 0:
		d = 0
		fallthrough
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 48*time.Hour:
		h := int(d.Hours())
		if m := int(d.Minutes()) - 60*h; m > 0 {
			return fmt.Sprintf("%dh %d min", h, m)
		}
		return fmt.Sprintf("%dh", h)
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}
