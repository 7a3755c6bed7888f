package api

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// bigPush returns payload with commits added until it is at least size
// bytes, as a push of many commits is.
func bigPush(t *testing.T, payload []byte, size int) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(payload, &m); err != nil {
		t.Fatal(err)
	}
	commit := map[string]any{
		"id":      "1481a2de7b2a7d02428ad93446ab166be7793fbb",
		"message": strings.Repeat("a line of a long commit message\n", 32),
		"added":   []string{"servers/api.hcl"},
	}
	var commits []any
	for n := len(payload); n < size; n += 1100 {
		commits = append(commits, commit)
	}
	m["commits"] = commits
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestWebhookTakesWhatForgesSend: GitHub sends push payloads of up to 25 MB
// and the other forges large ones too; tend refused anything over 1 MiB,
// so a big push never triggered a sync. The default limit is 25 MiB; a body
// over it is still refused with 413 and counted as too-large.
func TestWebhookTakesWhatForgesSend(t *testing.T) {
	if DefaultBodyLimit != 25<<20 {
		t.Errorf("DefaultBodyLimit = %d, want 25 MiB", DefaultBodyLimit)
	}
	for _, f := range forges() {
		t.Run(f.name, func(t *testing.T) {
			h := newHarness(t, allSecrets())
			body := bigPush(t, f.push(t), 20<<20)
			wantStatus(t, h.do(f.request(body, f.secret, false)), http.StatusAccepted)
			wantTriggers(t, h.b, "webhook:"+f.endpoint)

			// Over the default limit, correctly signed: 413, with and
			// without a Content-Length, and at most the limit plus one
			// byte read.
			body = append(body, bytes.Repeat([]byte(" "), DefaultBodyLimit+1-len(body))...)
			wantStatus(t, h.do(f.request(body, f.secret, false)), http.StatusRequestEntityTooLarge)
			req := f.request(body, f.secret, false)
			req.ContentLength = -1
			r := &countingBody{r: bytes.NewReader(body)}
			req.Body = io.NopCloser(r)
			wantStatus(t, h.do(req), http.StatusRequestEntityTooLarge)
			if r.n > DefaultBodyLimit+1 {
				t.Errorf("read %d bytes, want at most %d", r.n, DefaultBodyLimit+1)
			}
			wantTriggers(t, h.b, "webhook:"+f.endpoint)
			if want := `tend_webhooks_total{endpoint="` + f.endpoint + `",result="too-large"} 2`; !strings.Contains(h.scrape(t), want) {
				t.Errorf("metrics lack %s", want)
			}
		})
	}
}

type countingBody struct {
	r io.Reader
	n int
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}
