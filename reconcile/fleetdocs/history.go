package fleetdocs

import (
	"fmt"
	"strings"
	"time"

	"github.com/tendhq/tend/reconcile/contract"
	"github.com/tendhq/tend/spec"
)

// History is what tend recorded of the servers, for CHANGELOG.md and
// TROUBLESHOOTING.md. The engine reads it from the state store; every
// message in it was redacted when it was recorded.
type History struct {
	Servers map[string]*ServerHistory
}

// ServerHistory is one server's recorded revisions.
type ServerHistory struct {
	// Verified are the revisions that were verified, newest first.
	Verified []Revision
	// Failures are the revisions that failed or were rolled back, newest
	// first.
	Failures []Revision
}

// Revision is one recorded revision of a server.
type Revision struct {
	ID      int64
	Version string
	// Commit is the source revision: a git commit, or dir-HASH for a
	// directory.
	Commit  string
	Trigger string // apply, rollback, auto-rollback, retry, drift...
	Outcome string
	Message string
	At      time.Time // when it finished
	// ApprovedBy is who approved the change, when it needed an approval
	// and the store records one; empty otherwise.
	ApprovedBy string
	// Fields is the desired state it applied, as recorded (secrets as
	// digests); nil when not recorded.
	Fields []spec.Field
	// Contract is the API contract recorded when it was verified; nil
	// when none was.
	Contract *contract.Contract
}

// historyRows bounds the failures listed per server.
const historyRows = 20

// settingsTriggers are the triggers of revisions that do not change what a
// server is: heals, autoscaling, a re-verification.
var settingsTriggers = map[string]bool{"drift": true, "autoscale": true, "heal-in-window": true}

// changelogEntries picks the verified revisions a changelog lists: each
// that changed the desired state from the verified revision before it,
// newest first, each with what changed.
type changelogEntry struct {
	Revision
	Fields   []string // the paths of the fields that changed
	Contract *contract.Diff
	First    bool // the first verified revision recorded
}

func changelogEntries(h *ServerHistory) []changelogEntry {
	var out []changelogEntry
	// Oldest first, to compare each with the one before.
	var prev *Revision
	var prevContract *contract.Contract
	for i := len(h.Verified) - 1; i >= 0; i-- {
		r := h.Verified[i]
		if settingsTriggers[r.Trigger] && prev != nil {
			continue
		}
		e := changelogEntry{Revision: r, First: prev == nil}
		if prev != nil {
			if prev.Fields != nil && r.Fields != nil {
				for _, ch := range spec.DiffFields(prev.Fields, r.Fields) {
					e.Fields = append(e.Fields, ch.Path)
				}
				if len(e.Fields) == 0 && prev.Version == r.Version {
					continue // verified again, unchanged
				}
			} else if prev.Version == r.Version && prev.Commit == r.Commit {
				continue
			}
		}
		if r.Contract != nil {
			d := contract.Compare(prevContract, r.Contract)
			if prevContract == nil && !e.First {
				d = contract.Diff{} // no contract to compare with: say only what it has
			}
			e.Contract = &d
			prevContract = r.Contract
		}
		out = append(out, e)
		rr := r
		prev = &rr
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

func when(t time.Time) string {
	if t.IsZero() {
		return "(unfinished)"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// renderChangelog writes CHANGELOG.md.
func renderChangelog(f *fleetDoc, h *History) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Changelog\n\n%s\n\n", generatedNote)
	b.WriteString("What tend verified of each server, newest first: the version, when, from which commit,\n" +
		"who approved it when the change needed an approval, what changed in the desired state, and what\n" +
		"the server's API contract added, changed or removed (from the contracts recorded by its mcp check).\n" +
		"A change that failed verification is not here: see [TROUBLESHOOTING.md](TROUBLESHOOTING.md).\n\n")
	for _, s := range f.Servers {
		fmt.Fprintf(&b, "## %s\n\n", text(s.Name))
		var sh *ServerHistory
		if h != nil {
			sh = h.Servers[s.Name]
		}
		entries := []changelogEntry(nil)
		if sh != nil {
			entries = changelogEntries(sh)
		}
		if len(entries) == 0 {
			b.WriteString("No verified revision is recorded yet.\n\n")
			continue
		}
		for _, e := range entries {
			fmt.Fprintf(&b, "### %s — %s\n\n", text(orDefault(e.Version, "(no version)")), when(e.At))
			fmt.Fprintf(&b, "- Revision %d, from %s (%s)\n", e.ID, code(e.Commit), text(e.Trigger))
			if e.ApprovedBy != "" {
				fmt.Fprintf(&b, "- Approved by %s\n", text(e.ApprovedBy))
			}
			if e.Message != "" {
				fmt.Fprintf(&b, "- %s\n", text(oneLine(e.Message, 300)))
			}
			switch {
			case e.First:
				b.WriteString("- First verified revision recorded\n")
			case len(e.Fields) > 0:
				fmt.Fprintf(&b, "- Desired state: %s\n", changedFields(e.Fields))
			}
			renderContractDiff(&b, e)
			b.WriteString("\n")
		}
	}
	return strings.TrimRight(b.String(), "\n") + "\n"
}

// changedFields lists changed field paths, at most 8.
func changedFields(paths []string) string {
	out := make([]string, 0, len(paths))
	for i, p := range paths {
		if i == 8 {
			out = append(out, fmt.Sprintf("and %d more", len(paths)-8))
			break
		}
		out = append(out, code(p))
	}
	return strings.Join(out, ", ") + " changed"
}

func renderContractDiff(b *strings.Builder, e changelogEntry) {
	if e.Contract == nil {
		return
	}
	d := e.Contract
	if e.First {
		c := e.Revision.Contract
		fmt.Fprintf(b, "- API contract: %s, %s, %s\n", count(len(c.Tools), "tool"), count(len(c.Resources), "resource"), count(len(c.Prompts), "prompt"))
		return
	}
	if d.IsEmpty() {
		b.WriteString("- API contract: unchanged\n")
		return
	}
	var added, changed, removed []string
	for _, c := range append(append([]contract.Change(nil), d.Breaking...), d.Additions...) {
		switch c.Kind {
		case contract.KindToolAdded, contract.KindResourceAdded, contract.KindPromptAdded:
			added = append(added, c.Detail)
		case contract.KindToolRemoved, contract.KindResourceRemoved, contract.KindPromptRemoved:
			removed = append(removed, c.Detail)
		default:
			what := c.Detail
			if slicesContains(d.Breaking, c) {
				what += " (breaks clients)"
			}
			changed = append(changed, what)
		}
	}
	b.WriteString("- API contract:\n")
	for _, l := range []struct {
		name  string
		items []string
	}{{"Added", added}, {"Changed", changed}, {"Removed", removed}} {
		for _, it := range l.items {
			fmt.Fprintf(b, "  - %s: %s\n", l.name, text(it))
		}
	}
	if len(d.Unjudged) > 0 {
		fmt.Fprintf(b, "  - %d differences not judged: the contracts were read declaring different client capabilities\n", len(d.Unjudged))
	}
}

func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// commands writes shell lines with their comments aligned.
func commands(lines ...[2]string) string {
	w := 0
	for _, l := range lines {
		w = max(w, len(l[0]))
	}
	var b strings.Builder
	for i, l := range lines {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "%-*s  # %s", w, l[0], l[1])
	}
	return fence(b.String(), "sh") + "\n\n"
}

func slicesContains(cs []contract.Change, c contract.Change) bool {
	for _, x := range cs {
		if x == c {
			return true
		}
	}
	return false
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n-3] + "..."
	}
	return s
}

// checkFailure says what a failure of a check of this kind means.
func checkFailure(c checkDoc) string {
	switch c.Kind {
	case spec.CheckHTTP:
		return "The replica did not answer the request with an expected status (or body) in time: it is not listening yet, it crashed, it is overloaded, or it reports itself unhealthy."
	case spec.CheckTCP:
		return "Nothing accepted a connection on the port: the process is not running, not listening yet, or listens on another address or port."
	case spec.CheckExec:
		return "The command exited with another code than 0 (its output is in the failure message), or did not end before the timeout."
	case spec.CheckMCP:
		return "The MCP endpoint did not complete an initialize, lacks a tool, resource or prompt the check names, answered a call with an error, or was slower than max_latency; a contract that breaks clients without a major version bump fails it under contract = enforce."
	}
	return "The check did not pass."
}

// logsWhere says where a provider keeps a replica's output.
func logsWhere(providerType string) string {
	switch providerType {
	case "process":
		return "the process provider keeps each replica's stdout and stderr in its instance directory under tend's state directory (rotated), without a time for each line"
	case "systemd":
		return "systemd keeps each unit's output in the journal (`journalctl -u UNIT`)"
	case "docker":
		return "the Docker Engine keeps each container's output (`docker logs CONTAINER`)"
	case "kubernetes":
		return "the kubelet keeps each pod's output (`kubectl logs POD`)"
	}
	return "the provider keeps no output"
}

// renderTroubleshooting writes TROUBLESHOOTING.md.
func renderTroubleshooting(f *fleetDoc, h *History) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Troubleshooting\n\n%s\n\n", generatedNote)
	b.WriteString("For each server: the checks a change must pass and what a failure of each means, the failures\n" +
		"tend has recorded with their messages, and how to read its logs, retry, roll back and restore.\n\n" +
		"When a change fails verification, tend rolls it back (with `auto_rollback`) and holds that desired\n" +
		"state: it is not tried again until the desired state changes or someone runs `tend retry SERVER`.\n" +
		"`tend status` shows what is held and why; `tend history SERVER` lists every revision.\n\n")
	for _, s := range f.Servers {
		fmt.Fprintf(&b, "## %s\n\n", text(s.Name))
		b.WriteString("### Checks\n\n")
		if len(s.Checks) == 0 {
			b.WriteString("The server declares no checks: a change is verified once every replica runs for " + text(s.Rollout.VerifyFor) + " without exiting.\n\n")
		} else {
			b.WriteString("| Check | What it probes | Every | Fails after | A failure means |\n| --- | --- | --- | --- | --- |\n")
			for _, c := range s.Checks {
				fmt.Fprintf(&b, "| %s | %s | %s (timeout %s) | %d in a row | %s |\n",
					code(c.Name), cell(c.What), cell(c.Interval), cell(c.Timeout), c.Failure, cell(checkFailure(c)))
			}
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "A change is verified when every check passes on every replica for %s, within %s (rollout.progress_deadline).\n",
			text(s.Rollout.VerifyFor), text(s.Rollout.ProgressDeadline))
		if s.Rollout.AutoRollback {
			b.WriteString("A change that fails is rolled back to the last verified revision.\n\n")
		} else {
			b.WriteString("A change that fails is not rolled back (auto_rollback = false): the replicas stay as they are.\n\n")
		}

		b.WriteString("### Failures seen\n\n")
		var fails []Revision
		if h != nil && h.Servers[s.Name] != nil {
			fails = h.Servers[s.Name].Failures
		}
		if len(fails) == 0 {
			b.WriteString("No failed revision is recorded.\n\n")
		} else {
			b.WriteString("| When | Revision | Version | Commit | Outcome | Message |\n| --- | ---: | --- | --- | --- | --- |\n")
			for i, r := range fails {
				if i == historyRows {
					break
				}
				fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s |\n", when(r.At), r.ID, cell(r.Version), code(r.Commit), cell(r.Outcome), cell(oneLine(r.Message, 600)))
			}
			if len(fails) > historyRows {
				fmt.Fprintf(&b, "\nAnd %d older; `tend history %s` lists them all.\n", len(fails)-historyRows, s.Name)
			}
			b.WriteString("\n")
		}

		b.WriteString("### Logs\n\n")
		fmt.Fprintf(&b, "On this server's provider (%s), %s.\n\n", code(s.Provider), logsWhere(s.ProviderType))
		n := s.Name
		b.WriteString(commands(
			[2]string{"tend logs " + n, "the last 100 lines of each replica"},
			[2]string{"tend logs " + n + " --replica 0 -f", "follow one replica until interrupted"},
			[2]string{"tend logs " + n + " --tail 0", "all that is kept"}))
		if s.ProviderType != "process" {
			b.WriteString("`--since 1h` leaves out older lines.\n\n")
		}
		b.WriteString("### Retry, roll back, restore\n\n")
		b.WriteString(commands(
			[2]string{"tend status", "what runs, what is held and why"},
			[2]string{"tend history " + n, "every revision, with its outcome and message"},
			[2]string{"tend retry " + n, "release a held desired state: the next apply tries it again"},
			[2]string{"tend rollback " + n, "back to the newest verified revision before the current one"},
			[2]string{"tend rollback " + n + " --to REV", "back to a revision of tend history"}))
		if s.Backup != nil {
			fmt.Fprintf(&b, "Its data is backed up (see [CONFIGURATION.md](CONFIGURATION.md#%s)):\n\n", anchor(s.Name))
			b.WriteString(commands(
				[2]string{"tend backups " + n, "the backups, newest first"},
				[2]string{"tend restore " + n, "put the newest good backup's data back"}))
		}
	}
	return strings.TrimRight(b.String(), "\n") + "\n"
}
