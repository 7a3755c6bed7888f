package versions

import (
	"errors"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/tendhq/tend/spec"
)

func pin(t *testing.T, server, text string) Pin {
	t.Helper()
	c, err := spec.ParseConstraint(text)
	if err != nil {
		t.Fatal(err)
	}
	return Pin{Server: server, Text: text, Constraint: c, Range: hcl.Range{Filename: server + ".hcl", Start: hcl.Pos{Line: 7, Column: 15}, End: hcl.Pos{Line: 7, Column: 24}}}
}

func TestResolve(t *testing.T) {
	tags := []string{"latest", "1.3.9", "v1.4.0", "1.4.2", "1.5.0-rc.1", "1.5.0", "1.6.1", "1.6", "2.0.0", "2.1.0-beta.1", "main", "1.7.0+build.5"}
	for _, tc := range []struct {
		name, constraint string
		pins             []string // server=constraint
		want             string
		newest, latest   string
		err              string
	}{
		{name: "pessimistic two parts", constraint: "~> 1.4", want: "1.7.0+build.5", newest: "1.7.0+build.5", latest: "2.0.0"},
		{name: "pessimistic three parts", constraint: "~> 1.4.0", want: "1.4.2", newest: "1.4.2", latest: "2.0.0"},
		{name: "range", constraint: ">= 1.4, < 1.6", want: "1.5.0", newest: "1.5.0", latest: "2.0.0"},
		{name: "exact as a constraint", constraint: "= 1.4.0", want: "1.4.0", newest: "1.4.0", latest: "2.0.0"},
		{name: "prerelease only when named", constraint: ">= 1.5.0-rc.0, < 1.5.0", want: "1.5.0-rc.1", newest: "1.5.0-rc.1", latest: "2.0.0"},
		{name: "prerelease of a major", constraint: ">= 2.1.0-alpha", want: "2.1.0-beta.1", newest: "2.1.0-beta.1", latest: "2.1.0-beta.1"},
		{name: "no prerelease otherwise", constraint: ">= 2.0.1", err: `none of the 9 releases satisfies ">= 2.0.1" (the newest is 2.0.0)`},
		{name: "pin holds back", constraint: "~> 1.4", pins: []string{"gateway=< 1.6.0"}, want: "1.5.0", newest: "1.7.0+build.5", latest: "2.0.0"},
		{name: "two pins", constraint: "~> 1.4", pins: []string{"gateway=< 1.7.0", "api=~> 1.4.0"}, want: "1.4.2", newest: "1.7.0+build.5", latest: "2.0.0"},
		{name: "pin refuses all", constraint: "~> 1.4", pins: []string{"gateway=>= 3.0"},
			err: `no release satisfies both "~> 1.4" and the pins on it: server "gateway" requires ">= 3.0" (at gateway.hcl:7,15-24); the newest the constraint allows is 1.7.0+build.5`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := spec.ParseConstraint(tc.constraint)
			if err != nil {
				t.Fatal(err)
			}
			var pins []Pin
			for _, p := range tc.pins {
				s, text, _ := strings.Cut(p, "=")
				pins = append(pins, pin(t, s, text))
			}
			r, err := Resolve(c, tc.constraint, pins, FromTags(tags))
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("err = %v, want %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Release.Version.String(); got != tc.want {
				t.Errorf("resolved %s, want %s", got, tc.want)
			}
			if got := r.Newest.Version.String(); got != tc.newest {
				t.Errorf("newest %s, want %s", got, tc.newest)
			}
			if got := r.Latest.Version.String(); got != tc.latest {
				t.Errorf("latest %s, want %s", got, tc.latest)
			}
			if (tc.want != tc.newest) != (len(r.HeldBy) > 0) {
				t.Errorf("held by %v", r.HeldBy)
			}
		})
	}
}

func TestResolveNoReleases(t *testing.T) {
	c, _ := spec.ParseConstraint("~> 1.0")
	_, err := Resolve(c, "~> 1.0", nil, FromTags([]string{"latest", "1", "1.0", "stable"}))
	var nr *NoReleaseError
	if !errors.As(err, &nr) || nr.Releases != 0 {
		t.Fatalf("err = %v, want no releases", err)
	}
}

func TestParseTagKeepsTag(t *testing.T) {
	r, ok := ParseTag("v1.4.2")
	if !ok || r.Tag != "v1.4.2" || r.Version.String() != "1.4.2" {
		t.Fatalf("ParseTag(v1.4.2) = %+v, %v", r, ok)
	}
	for _, bad := range []string{"1.4", "1", "latest", "v1.4.2.1", "01.4.2", ""} {
		if _, ok := ParseTag(bad); ok {
			t.Errorf("ParseTag(%q) is a release", bad)
		}
	}
}

func TestBump(t *testing.T) {
	for _, tc := range [][3]string{
		{"1.4.2", "1.4.2", "none"}, {"1.4.2", "1.4.3", "patch"}, {"1.4.2", "1.5.0", "minor"},
		{"1.4.2", "2.0.0", "major"}, {"1.5.0", "1.4.2", "downgrade"}, {"1.5.0-rc.1", "1.5.0", "prerelease"},
	} {
		from, _ := ParseTag(tc[0])
		to, _ := ParseTag(tc[1])
		if got := Bump(from.Version, to.Version); got != tc[2] {
			t.Errorf("Bump(%s, %s) = %s, want %s", tc[0], tc[1], got, tc[2])
		}
	}
}
