package reconcile

import (
	"fmt"
	"io"
	"strings"
)

// ANSI colors, used only when the writer is a terminal.
const (
	colorReset  = "\x1b[0m"
	colorGreen  = "\x1b[32m"
	colorYellow = "\x1b[33m"
	colorRed    = "\x1b[31m"
	colorCyan   = "\x1b[36m"
	colorBold   = "\x1b[1m"
)

func actionColor(a Action) string {
	switch a {
	case ActionCreate:
		return colorGreen
	case ActionUpdate, ActionScale, ActionHeal, ActionVerify, ActionReload:
		return colorYellow
	case ActionWaiting:
		return colorCyan
	case ActionReplace, ActionDelete, ActionHeld, ActionBlocked, ActionKept:
		return colorRed
	}
	return ""
}

// RenderPlan writes the plan for a person: one line per server with its
// symbol, what happens and why, the changed fields, then a summary.
// Sensitive values show as "(sensitive)": the plan never holds them.
func RenderPlan(w io.Writer, p *Plan, color bool) {
	paint := func(c, s string) string {
		if !color || c == "" {
			return s
		}
		return c + s + colorReset
	}
	counts := map[Action]int{}
	for _, c := range p.Changes {
		counts[c.Action]++
	}
	if len(p.Targets) > 0 {
		fmt.Fprintf(w, "Targeted plan: only %s; nothing else is changed or pruned.\n", strings.Join(p.Targets, ", "))
	}
	if !p.HasChanges() && counts[ActionHeld] == 0 && counts[ActionBlocked] == 0 && counts[ActionWaiting] == 0 && counts[ActionKept] == 0 {
		fmt.Fprintf(w, "No changes. The fleet matches the desired state (%s).\n", p.SourceRevision)
		return
	}
	fmt.Fprintf(w, "tend will change the fleet to match %s:\n", paint(colorBold, p.SourceRevision))
	width := 0
	for _, c := range p.Changes {
		width = max(width, len(c.Server))
	}
	wave := -1
	for _, c := range p.Changes {
		if !c.Action.Changes() {
			continue
		}
		if c.Wave != wave {
			wave = c.Wave
			fmt.Fprintf(w, "\n%s\n", paint(colorCyan, fmt.Sprintf("Wave %d of %d", wave, p.Waves)))
		}
		renderChange(w, c, width, paint)
	}
	var stuck []*ServerChange
	for _, c := range p.Changes {
		if c.Action.Stuck() {
			stuck = append(stuck, c)
		}
	}
	if len(stuck) > 0 {
		fmt.Fprintf(w, "\n%s\n", paint(colorRed, "Not applied"))
		for _, c := range stuck {
			renderChange(w, c, width, paint)
		}
	}
	var parts []string
	for _, a := range []Action{ActionCreate, ActionUpdate, ActionReload, ActionReplace, ActionScale, ActionHeal, ActionVerify, ActionDelete, ActionHeld, ActionBlocked, ActionWaiting, ActionKept} {
		if n := counts[a]; n > 0 {
			verb := map[Action]string{
				ActionCreate: "to create", ActionUpdate: "to update", ActionReload: "to reload", ActionReplace: "to replace",
				ActionScale: "to scale", ActionHeal: "to heal", ActionVerify: "to verify",
				ActionDelete: "to delete", ActionHeld: "held", ActionBlocked: "blocked",
				ActionWaiting: waitingWords(p), ActionKept: "kept (not pruned)",
			}[a]
			parts = append(parts, fmt.Sprintf("%d %s", n, verb))
		}
	}
	fmt.Fprintf(w, "\nPlan: %s.\n", strings.Join(parts, ", "))
}

// waitingWords says what the waiting changes of a plan wait for.
func waitingWords(p *Plan) string {
	n := waitCounts(p)
	var what []string
	for _, w := range []string{WaitWindow, WaitApproval, WaitPromotion} {
		if n[w] > 0 {
			what = append(what, map[string]string{WaitWindow: "a change window", WaitApproval: "approval", WaitPromotion: "promotion"}[w])
		}
	}
	if len(what) == 0 {
		return "waiting"
	}
	return "waiting for " + strings.Join(what, " or ")
}

func renderChange(w io.Writer, c *ServerChange, width int, paint func(string, string) string) {
	sym := fmt.Sprintf("%-3s", c.Action.Symbol())
	head := fmt.Sprintf("  %s %s", paint(actionColor(c.Action), sym), paint(colorBold, fmt.Sprintf("%-*s", width, c.Server)))
	var what string
	action := c.Action
	if action == ActionWaiting {
		action = c.Waits
	}
	switch action {
	case ActionCreate:
		what = fmt.Sprintf("create %s, %d %s on %s", c.ToVersion, c.ToReplicas, replicaWord(c.ToReplicas), c.Provider)
	case ActionUpdate:
		if c.Rollout {
			what = fmt.Sprintf("update %s, %s %s", bumpArrow(c), c.Strategy, replicaCount(c))
		} else {
			what = "update settings (no replica is restarted)"
		}
	case ActionReload:
		what = fmt.Sprintf("reload %s, %d of %d %s, one at a time (no restart)", c.ToVersion, len(c.Start), c.ToReplicas, replicaWord(c.ToReplicas))
	case ActionReplace:
		what = fmt.Sprintf("replace %s, all %d %s", bumpArrow(c), c.ToReplicas, replicaWord(c.ToReplicas))
	case ActionScale:
		what = fmt.Sprintf("scale %d → %d %s", c.FromReplicas, c.ToReplicas, replicaWord(c.ToReplicas))
	case ActionHeal:
		what = fmt.Sprintf("heal %d %s", len(c.Start), replicaWord(len(c.Start)))
	case ActionVerify:
		what = "verify " + c.ToVersion
	case ActionDelete:
		what = fmt.Sprintf("delete %d %s", len(c.Stop), replicaWord(len(c.Stop)))
	case ActionHeld, ActionBlocked:
		what = string(c.Action)
	case ActionKept:
		what = fmt.Sprintf("kept: %d %s not deleted", len(c.Stop), replicaWord(len(c.Stop)))
	}
	if c.Action == ActionWaiting {
		what = "waiting to " + what
	}
	fmt.Fprintf(w, "%s  %s\n", head, what)
	for _, r := range c.Reasons {
		fmt.Fprintf(w, "        # %s\n", r)
	}
	if c.Action == ActionHeld || c.Action == ActionBlocked || c.Action == ActionDelete || c.Action == ActionKept {
		return
	}
	for _, ch := range c.Changes {
		switch {
		case ch.Added:
			fmt.Fprintf(w, "        %s %s = %s\n", paint(colorGreen, "+"), ch.Path, quoteValue(ch.New, ch.Sensitive))
		case ch.Removed:
			fmt.Fprintf(w, "        %s %s = %s\n", paint(colorRed, "-"), ch.Path, quoteValue(ch.Old, ch.Sensitive))
		default:
			fmt.Fprintf(w, "        %s %s: %s → %s\n", paint(colorYellow, "~"), ch.Path, quoteValue(ch.Old, ch.Sensitive), quoteValue(ch.New, ch.Sensitive))
		}
	}
}

func quoteValue(v string, sensitive bool) string {
	if sensitive {
		return "(sensitive)"
	}
	if len(v) > 80 {
		v = v[:77] + "..."
	}
	return fmt.Sprintf("%q", v)
}

func versionArrow(c *ServerChange) string {
	if c.FromVersion == "" || c.FromVersion == c.ToVersion {
		return c.ToVersion
	}
	return c.FromVersion + " → " + c.ToVersion
}

// bumpArrow is versionArrow with the kind of bump: "1.4.2 → 1.5.0 (minor)".
func bumpArrow(c *ServerChange) string {
	if c.Bump == "" {
		return versionArrow(c)
	}
	return versionArrow(c) + " (" + c.Bump + ")"
}

func replicaCount(c *ServerChange) string {
	if len(c.Start) == c.ToReplicas {
		return fmt.Sprintf("%d %s", c.ToReplicas, replicaWord(c.ToReplicas))
	}
	return fmt.Sprintf("%d of %d replicas", len(c.Start), c.ToReplicas)
}

func replicaWord(n int) string {
	if n == 1 {
		return "replica"
	}
	return "replicas"
}
