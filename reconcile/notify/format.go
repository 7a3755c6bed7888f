package notify

import (
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// encode returns the body of a delivery of e to t.
func encode(t *target, e Event) ([]byte, error) {
	if t.slack {
		return json.Marshal(slackBody(e))
	}
	return json.Marshal(e)
}

// slackMessage is a Slack incoming-webhook body (also taken by Mattermost,
// Rocket.Chat and Discord's /slack endpoint): a text and one attachment.
type slackMessage struct {
	Text        string            `json:"text"`
	Attachments []slackAttachment `json:"attachments"`
}

type slackAttachment struct {
	Fallback string       `json:"fallback"`
	Color    string       `json:"color"`
	Text     string       `json:"text,omitempty"`
	Fields   []slackField `json:"fields"`
	Footer   string       `json:"footer"`
	Ts       int64        `json:"ts"`
}

type slackField struct {
	Title string `json:"title"`
	Value string `json:"value"`
	Short bool   `json:"short"`
}

// kindStyle is how a kind of event reads in Slack.
var kindStyle = map[string]struct{ emoji, verb, color string }{
	"apply":    {":white_check_mark:", "was applied", "good"},
	"failure":  {":x:", "failed", "danger"},
	"rollback": {":rewind:", "was rolled back", "danger"},
	"drift":    {":warning:", "has drifted", "warning"},
	"held":     {":pause_button:", "is held", "warning"},
	"backup":   {":floppy_disk:", "was backed up", "good"},
	"waiting":  {":hourglass:", "has a change that waits", "#439FE0"},
	"approval": {":ballot_box_with_check:", "had a change decided", "#439FE0"},
	"scale":    {":chart_with_upwards_trend:", "was scaled", "#439FE0"},
	"update":   {":arrow_up:", "has an update", "#439FE0"},
}

// maxSummary bounds the message's part of the one-line text, in runes.
const maxSummary = 300

func slackBody(e Event) slackMessage {
	st, ok := kindStyle[e.Kind]
	if !ok {
		st.emoji, st.verb, st.color = ":information_source:", e.Kind, "#439FE0"
	}
	msg, shortened := oneLine(e.Message, maxSummary)

	// ":x: tend: notes 1.2.0 failed on host h1: verification failed: ..."
	var b strings.Builder
	b.WriteString(st.emoji)
	b.WriteString(" tend:")
	if e.Server != "" {
		b.WriteString(" " + e.Server)
		if e.Version != "" {
			b.WriteString(" " + e.Version)
		}
		b.WriteString(" " + st.verb)
		if e.Host != "" {
			b.WriteString(" on host " + e.Host)
		}
		if msg != "" {
			b.WriteString(":")
		}
	}
	if msg != "" {
		b.WriteString(" " + msg)
	} else if e.Server == "" {
		b.WriteString(" " + e.Kind)
	}
	text := slackEscape(b.String())

	a := slackAttachment{Fallback: text, Color: st.color, Footer: "tend"}
	if shortened {
		a.Text = slackEscape(e.Message)
	}
	add := func(title, value string, short bool) {
		if value != "" {
			a.Fields = append(a.Fields, slackField{Title: title, Value: slackEscape(value), Short: short})
		}
	}
	add("Event", e.Kind, true)
	add("Server", e.Server, true)
	add("Version", e.Version, true)
	add("Host", e.Host, true)
	add("Revision", e.Revision, false)
	if !e.Time.IsZero() {
		a.Ts = e.Time.Unix()
	}
	return slackMessage{Text: text, Attachments: []slackAttachment{a}}
}

// oneLine folds s onto one line and bounds it to limit runes. It reports
// whether anything was folded or cut.
func oneLine(s string, limit int) (string, bool) {
	f := strings.Join(strings.Fields(s), " ")
	changed := f != strings.TrimSpace(s)
	if utf8.RuneCountInString(f) > limit {
		r := []rune(f)
		f = strings.TrimSpace(string(r[:limit-1])) + "…"
		changed = true
	}
	return f, changed
}

// slackEscape escapes the three characters Slack's text format reserves.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
