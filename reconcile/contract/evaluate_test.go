package contract

import (
	"testing"
)

func TestBump(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ old, new, want string }{
		{"1.4.0", "2.0.0", BumpMajor},
		{"1.4.0", "1.5.0", BumpMinor},
		{"1.4.0", "1.4.1", BumpPatch},
		{"1.4.0", "1.4.0", BumpNone},
		{"1.4.0", "1.4.0+build.7", BumpNone},
		{"v1.4.0", "1.4.0", BumpNone},
		{"1.4", "1.5.0", BumpMinor},
		{"1.5.0", "1.4.0", BumpDowngrade},
		{"2.0.0", "1.9.9", BumpDowngrade},
		{"1.4.0-rc.1", "1.4.0-rc.2", BumpPrerelease},
		{"1.4.0-rc.1", "1.4.0", BumpPrerelease},
		{"1.4.0", "1.5.0-rc.1", BumpMinor},
		{"1.4.0", "2.0.0-rc.1", BumpMajor},
		{"1.4.0-rc.1", "1.3.9", BumpDowngrade},
		// 0.x: the leftmost non-zero part is the major one.
		{"0.4.1", "0.5.0", BumpMajor},
		{"0.4.1", "0.4.2", BumpMinor},
		{"0.0.3", "0.0.4", BumpMajor},
		{"0.0.3", "0.1.0", BumpMajor},
		{"0.9.0", "1.0.0", BumpMajor},
		{"0.4.1", "0.4.1", BumpNone},
		// Not semver.
		{"latest", "1.0.0", BumpUnknown},
		{"1.0.0", "edge", BumpUnknown},
		{"", "1.0.0", BumpUnknown},
	} {
		if got := Bump(tc.old, tc.new); got != tc.want {
			t.Errorf("Bump(%q, %q) = %s, want %s", tc.old, tc.new, got, tc.want)
		}
	}
}

// breakingDiff is the diff of mcp-notes from the default tool set to
// v2-breaking, in small.
var breakingDiff = Diff{
	Breaking: []Change{
		{Kind: KindToolRemoved, Item: "delete_note", Detail: `tool "delete_note" was removed`},
		{Kind: KindParamRequired, Item: "add_note", Param: "body", Detail: `parameter "body" of tool "add_note" is now required`},
	},
	Additions: []Change{{Kind: KindToolAdded, Item: "count_notes", Detail: `tool "count_notes" was added`}},
}

var additiveDiff = Diff{Additions: []Change{{Kind: KindToolAdded, Item: "count_notes", Detail: `tool "count_notes" was added`}}}

func TestEvaluate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, mode, old, new string
		d                    Diff
		fail, warn           bool
		report               string
	}{
		{
			name: "EnforceMinorBreaks", mode: ModeEnforce, old: "1.4.0", new: "1.5.0", d: breakingDiff, fail: true,
			report: `contract: 1.4.0 -> 1.5.0 is a minor bump, but 2 changes break clients:
  - tool "delete_note" was removed
  - parameter "body" of tool "add_note" is now required
additions:
  - tool "count_notes" was added
verification fails (contract = "enforce"): release these changes as 2.0.0 or keep them compatible;
contract = "warn" would let them through with a warning
`,
		},
		{
			name: "WarnMinorBreaks", mode: ModeWarn, old: "1.4.0", new: "1.5.0", d: breakingDiff, warn: true,
			report: `contract: 1.4.0 -> 1.5.0 is a minor bump, but 2 changes break clients:
  - tool "delete_note" was removed
  - parameter "body" of tool "add_note" is now required
additions:
  - tool "count_notes" was added
contract = "warn": verification goes on; clients of 1.4.0 may fail
`,
		},
		{name: "DefaultModeIsWarn", mode: "", old: "1.4.0", new: "1.5.0", d: breakingDiff, warn: true},
		{name: "UnknownModeEnforces", mode: "strict", old: "1.4.0", new: "1.5.0", d: breakingDiff, fail: true},
		{name: "Off", mode: ModeOff, old: "1.4.0", new: "1.5.0", d: breakingDiff},
		{
			name: "EnforceMajorBreaks", mode: ModeEnforce, old: "1.4.0", new: "2.0.0", d: breakingDiff,
			report: `contract: 1.4.0 -> 2.0.0 is a major bump; 2 changes break clients, as a major release may:
  - tool "delete_note" was removed
  - parameter "body" of tool "add_note" is now required
additions:
  - tool "count_notes" was added
`,
		},
		{
			name: "EnforcePatchOneBreak", mode: ModeEnforce, old: "0.4.1", new: "0.4.2", d: Diff{Breaking: breakingDiff.Breaking[:1]}, fail: true,
			report: `contract: 0.4.1 -> 0.4.2 is a minor bump, but 1 change breaks clients:
  - tool "delete_note" was removed
verification fails (contract = "enforce"): release these changes as 0.5.0 or keep them compatible;
contract = "warn" would let them through with a warning
`,
		},
		{
			name: "ZeroMajor", mode: ModeEnforce, old: "0.4.1", new: "0.5.0", d: Diff{Breaking: breakingDiff.Breaking[:1]},
			report: `contract: 0.4.1 -> 0.5.0 is a major bump (in 0.x, the leftmost non-zero part is the major one); 1 change breaks clients, as a major release may:
  - tool "delete_note" was removed
`,
		},
		{name: "EnforceSameVersionBreaks", mode: ModeEnforce, old: "1.4.0", new: "1.4.0", d: breakingDiff, fail: true},
		{name: "EnforcePrereleaseBreaks", mode: ModeEnforce, old: "2.0.0-rc.1", new: "2.0.0-rc.2", d: breakingDiff, fail: true},
		{
			name: "EnforceUnknownBreaks", mode: ModeEnforce, old: "latest", new: "edge", d: Diff{Breaking: breakingDiff.Breaking[:1]}, fail: true,
			report: `contract: latest -> edge is not a semantic version change, so tend cannot tell whether it is major, but 1 change breaks clients:
  - tool "delete_note" was removed
verification fails (contract = "enforce"): release these changes under a major version or keep them compatible;
contract = "warn" would let them through with a warning
`,
		},
		{
			name: "DowngradeWarnsOnly", mode: ModeEnforce, old: "2.0.0", new: "1.4.0", d: Diff{Breaking: breakingDiff.Breaking[:1]}, warn: true,
			report: `contract: 2.0.0 -> 1.4.0 is a downgrade; 1 change breaks clients (a downgrade is taken as deliberate: a warning, not a failure):
  - tool "delete_note" was removed
`,
		},
		{
			name: "AdditionsUnderMinor", mode: ModeEnforce, old: "1.4.0", new: "1.5.0", d: additiveDiff,
			report: `contract: 1.4.0 -> 1.5.0 is a minor bump; no change breaks clients
additions:
  - tool "count_notes" was added
`,
		},
		{
			name: "AdditionsUnderPatch", mode: ModeEnforce, old: "1.4.0", new: "1.4.1", d: additiveDiff,
			report: `contract: 1.4.0 -> 1.4.1 is a patch bump; no change breaks clients
additions:
  - tool "count_notes" was added
note: semver asks for at least a minor bump for additions
`,
		},
		{
			name: "NoChanges", mode: ModeEnforce, old: "1.4.0", new: "1.4.1",
			report: "contract: 1.4.0 -> 1.4.1 is a patch bump; the tools, resources and prompts did not change\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := Evaluate(tc.mode, tc.old, tc.new, tc.d)
			if v.Fail != tc.fail || v.Warn != tc.warn {
				t.Errorf("fail=%v warn=%v, want fail=%v warn=%v\n%s", v.Fail, v.Warn, tc.fail, tc.warn, v.Report)
			}
			if v.Bump != Bump(tc.old, tc.new) {
				t.Errorf("bump = %s, want %s", v.Bump, Bump(tc.old, tc.new))
			}
			if tc.mode == ModeOff && v.Report != "" {
				t.Errorf("contract = off, but a report:\n%s", v.Report)
			}
			if tc.report != "" && v.Report != tc.report {
				t.Errorf("report:\n%s\nwant:\n%s", v.Report, tc.report)
			}
		})
	}
}
