package versions

import (
	"context"
	"sort"

	"github.com/Masterminds/semver/v3"

	"github.com/tendhq/tend/spec"
)

// Outdated is one server's row of tend outdated.
type Outdated struct {
	Server     string `json:"server"`
	Constraint string `json:"constraint"`
	Running    string `json:"running,omitempty"` // the version of the last verified apply
	Locked     string `json:"locked,omitempty"`
	Allowed    string `json:"allowed,omitempty"` // the newest the constraint and the pins allow
	Latest     string `json:"latest,omitempty"`  // the newest release at all
	// Bumps from the locked version (from the running one for Running).
	RunningBump string `json:"running_bump,omitempty"` // locked vs running: "none" when it runs the locked version
	AllowedBump string `json:"allowed_bump,omitempty"`
	LatestBump  string `json:"latest_bump,omitempty"`
	NewMajor    bool   `json:"new_major"`         // a release of a higher major than the constraint allows
	HeldBy      string `json:"held_by,omitempty"` // the server whose pin keeps Allowed below what the constraint allows
	IsOutdated  bool   `json:"outdated"`          // something newer is allowed, or the running version is not the locked one
	Error       string `json:"error,omitempty"`   // the source could not be read
}

// ListOutdated compares, for each server whose version is a constraint,
// the running, locked and released versions. running maps a server to the
// version it runs ("" or absent: not running).
func ListOutdated(ctx context.Context, res *Resolver, cfg *spec.Config, lk *spec.Lock, running map[string]string) []Outdated {
	pins := PinsOn(cfg)
	var out []Outdated
	for n, s := range cfg.Servers {
		if s.Constraint == nil || s.Release == nil {
			continue
		}
		row := Outdated{Server: n, Constraint: s.VersionConstraint, Running: running[n]}
		if lk != nil && lk.Servers[n] != nil {
			row.Locked = lk.Servers[n].Version
		}
		rs, _, err := res.Releases(ctx, s.Release)
		if err == nil {
			fill(&row, s, pins[n], rs)
		} else {
			row.Error = err.Error()
		}
		out = append(out, row)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Server < out[j].Server })
	return out
}

func fill(row *Outdated, s *spec.Server, pins []Pin, rs []Release) {
	r, err := Resolve(s.Constraint, s.VersionConstraint, pins, rs)
	if r.Latest != nil {
		row.Latest = r.Latest.Version.String()
	}
	if err == nil {
		row.Allowed = r.Release.Version.String()
		if len(r.HeldBy) > 0 {
			row.HeldBy = r.HeldBy[0].Server
		}
	} else {
		row.Error = err.Error()
	}
	locked, _ := semver.StrictNewVersion(row.Locked)
	if locked != nil {
		if row.Running != "" {
			if run, err := semver.NewVersion(row.Running); err == nil {
				row.RunningBump = Bump(run, locked)
			}
		}
		if err == nil {
			row.AllowedBump = Bump(locked, r.Release.Version)
		}
		if r.Latest != nil {
			row.LatestBump = Bump(locked, r.Latest.Version)
		}
	}
	if r.Latest != nil && !s.Constraint.Check(r.Latest.Version) && (r.Newest == nil || r.Latest.Version.Major() > r.Newest.Version.Major()) {
		row.NewMajor = true
	}
	row.IsOutdated = row.AllowedBump != "" && row.AllowedBump != "none" && row.AllowedBump != "downgrade" ||
		row.RunningBump != "" && row.RunningBump != "none" || row.NewMajor
}
