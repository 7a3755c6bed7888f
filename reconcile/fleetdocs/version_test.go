package fleetdocs

import "testing"

// TestVersionText: a version taken from the lock file says so, with its
// constraint.
func TestVersionText(t *testing.T) {
	for _, tc := range []struct {
		doc  serverDoc
		want string
	}{
		{serverDoc{Version: "1.4.2"}, "1.4.2"},
		{serverDoc{Version: "1.5.2", VersionConstraint: "~> 1.4"}, "1.5.2 (~> 1.4, locked)"},
		{serverDoc{VersionConstraint: "~> 1.4"}, "~> 1.4 (unresolved)"},
		{serverDoc{}, "(none)"},
	} {
		if got := versionText(&tc.doc); got != tc.want {
			t.Errorf("versionText(%+v) = %q, want %q", tc.doc, got, tc.want)
		}
	}
}
