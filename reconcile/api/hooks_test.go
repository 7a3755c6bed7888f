package api

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// forge describes how one provider authenticates and labels a push.
type forge struct {
	name     string // test name
	endpoint string // metrics label
	path     string
	secret   string
	// push is a push to refs/heads/main as the provider sends it; tag a tag
	// push.
	push, tag func(t *testing.T) []byte
	// event sets the headers of a push (tag: of a tag push) other than the
	// signature.
	event func(r *http.Request, tag bool)
	// sign sets the signature headers of body under secret.
	sign func(r *http.Request, secret string, body []byte)
	// authHeaders are the headers sign sets.
	authHeaders []string
	// disable clears the endpoint's secret in cfg.
	disable func(cfg *Config)
}

const zeroSHA = "0000000000000000000000000000000000000000"

func forges() []forge {
	githubEvent := func(r *http.Request, _ bool) {
		r.Header.Set("X-GitHub-Event", "push")
		r.Header.Set("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
		r.Header.Set("X-GitHub-Hook-ID", "109948940")
		r.Header.Set("User-Agent", "GitHub-Hookshot/044aadd")
	}
	giteaPush := func(t *testing.T) []byte { return testdata(t, "gitea_push.json") }
	giteaTag := func(t *testing.T) []byte {
		return withRef(t, testdata(t, "gitea_push.json"), "refs/tags/v1.4.0")
	}
	return []forge{
		{
			name: "github", endpoint: "github", path: "/hooks/github", secret: ghSecret,
			push: func(t *testing.T) []byte { return testdata(t, "github_push.json") },
			tag: func(t *testing.T) []byte {
				return withRef(t, testdata(t, "github_push.json"), "refs/tags/v1.4.0")
			},
			event: githubEvent,
			sign: func(r *http.Request, secret string, body []byte) {
				r.Header.Set("X-Hub-Signature-256", "sha256="+hmacHex(secret, body))
			},
			authHeaders: []string{"X-Hub-Signature-256"},
			disable:     func(c *Config) { c.GitHubSecret = "" },
		},
		{
			name: "gitlab", endpoint: "gitlab", path: "/hooks/gitlab", secret: glToken,
			push: func(t *testing.T) []byte { return testdata(t, "gitlab_push.json") },
			tag:  func(t *testing.T) []byte { return testdata(t, "gitlab_tag_push.json") },
			event: func(r *http.Request, tag bool) {
				if tag {
					r.Header.Set("X-Gitlab-Event", "Tag Push Hook")
				} else {
					r.Header.Set("X-Gitlab-Event", "Push Hook")
				}
				r.Header.Set("X-Gitlab-Instance", "https://gitlab.example.com")
				r.Header.Set("X-Gitlab-Event-UUID", "13792a34-cac6-4fda-95a8-c58e00a3954e")
				r.Header.Set("User-Agent", "GitLab/16.10.0")
			},
			sign: func(r *http.Request, secret string, _ []byte) {
				r.Header.Set("X-Gitlab-Token", secret)
			},
			authHeaders: []string{"X-Gitlab-Token"},
			disable:     func(c *Config) { c.GitLabToken = "" },
		},
		{
			name: "gitea", endpoint: "gitea", path: "/hooks/gitea", secret: giteaSecret,
			push: giteaPush, tag: giteaTag,
			event: func(r *http.Request, _ bool) {
				r.Header.Set("X-Gitea-Event", "push")
				r.Header.Set("X-Gitea-Event-Type", "push")
				r.Header.Set("X-Gitea-Delivery", "f6266f16-1bf3-46a5-9ea4-602e06ead473")
				r.Header.Set("X-Gogs-Event", "push")
				r.Header.Set("X-GitHub-Event", "push")
			},
			sign: func(r *http.Request, secret string, body []byte) {
				sig := hmacHex(secret, body)
				r.Header.Set("X-Gitea-Signature", sig)
				r.Header.Set("X-Hub-Signature-256", "sha256="+sig)
			},
			authHeaders: []string{"X-Gitea-Signature", "X-Hub-Signature-256"},
			disable:     func(c *Config) { c.GiteaSecret = "" },
		},
		{
			name: "forgejo", endpoint: "gitea", path: "/hooks/gitea", secret: giteaSecret,
			push: giteaPush, tag: giteaTag,
			event: func(r *http.Request, _ bool) {
				r.Header.Set("X-Forgejo-Event", "push")
				r.Header.Set("X-Forgejo-Event-Type", "push")
				r.Header.Set("X-Forgejo-Delivery", "0c5ff2c6-6e46-4ac8-a7fa-4d3f0dc4b8a9")
				r.Header.Set("X-Gitea-Event", "push")
				r.Header.Set("X-GitHub-Event", "push")
			},
			sign: func(r *http.Request, secret string, body []byte) {
				sig := hmacHex(secret, body)
				r.Header.Set("X-Forgejo-Signature", sig)
				r.Header.Set("X-Gitea-Signature", sig)
				r.Header.Set("X-Hub-Signature-256", "sha256="+sig)
			},
			authHeaders: []string{"X-Forgejo-Signature", "X-Gitea-Signature", "X-Hub-Signature-256"},
			disable:     func(c *Config) { c.GiteaSecret = "" },
		},
		{
			name: "generic", endpoint: "generic", path: "/hooks/generic", secret: genericSecret,
			push: func(*testing.T) []byte {
				return []byte(`{"ref":"refs/heads/main","after":"0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c","source":"ci"}`)
			},
			tag: func(*testing.T) []byte {
				return []byte(`{"ref":"refs/tags/v1.4.0"}`)
			},
			event: func(r *http.Request, _ bool) {},
			sign: func(r *http.Request, secret string, body []byte) {
				r.Header.Set("X-Tend-Signature", "sha256="+hmacHex(secret, body))
			},
			authHeaders: []string{"X-Tend-Signature"},
			disable:     func(c *Config) { c.GenericSecret = "" },
		},
	}
}

// request builds a POST of body to f, signed under secret unless secret
// is empty.
func (f forge) request(body []byte, secret string, tag bool) *http.Request {
	req := httptest.NewRequest(http.MethodPost, f.path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	f.event(req, tag)
	if secret != "" {
		f.sign(req, secret, body)
	}
	return req
}

func TestWebhookSignedPushTriggersOnce(t *testing.T) {
	for _, f := range forges() {
		t.Run(f.name, func(t *testing.T) {
			h := newHarness(t, allSecrets())
			rec := h.do(f.request(f.push(t), f.secret, false))
			wantStatus(t, rec, http.StatusAccepted)
			resp := decodeJSON(t, rec)
			if resp["triggered"] != true || resp["ref"] != "refs/heads/main" {
				t.Errorf("response = %v", resp)
			}
			wantTriggers(t, h.b, "webhook:"+f.endpoint)
			if !strings.Contains(h.scrape(t), `tend_webhooks_total{endpoint="`+f.endpoint+`",result="triggered"} 1`) {
				t.Error("tend_webhooks_total not counted")
			}
		})
	}
}

func TestWebhookWrongSignature(t *testing.T) {
	for _, f := range forges() {
		t.Run(f.name, func(t *testing.T) {
			h := newHarness(t, allSecrets())
			body := f.push(t)
			wrongSecret := "not-" + f.secret
			req := f.request(body, wrongSecret, false)
			// Everything the log must not show: the real secret, the wrong
			// one, what the client sent and what the right signature is.
			secrets := []string{f.secret, wrongSecret, hmacHex(f.secret, body), hmacHex(wrongSecret, body)}
			for _, hd := range f.authHeaders {
				secrets = append(secrets, req.Header.Get(hd))
			}
			rec := h.do(req)
			wantStatus(t, rec, http.StatusUnauthorized)
			if e := decodeJSON(t, rec)["error"]; e == "" || e == nil {
				t.Errorf("no error field")
			}
			wantTriggers(t, h.b)

			out := h.log.String()
			for _, s := range secrets {
				if strings.Contains(out, s) {
					t.Errorf("log contains %q:\n%s", s, out)
				}
				if strings.Contains(rec.Body.String(), s) {
					t.Errorf("response contains %q", s)
				}
			}
			lines := h.log.Lines(t)
			if len(lines) != 1 {
				t.Fatalf("want one log line, got %d:\n%s", len(lines), out)
			}
			l := lines[0]
			if l["endpoint"] != f.endpoint || l["remote"] != "192.0.2.1" || l["reason"] == nil || l["level"] != "warning" {
				t.Errorf("log line = %v", l)
			}
			if !strings.Contains(h.scrape(t), `tend_webhooks_total{endpoint="`+f.endpoint+`",result="unauthorized"} 1`) {
				t.Error("unauthorized not counted")
			}
		})
	}
}

func TestWebhookMissingSignature(t *testing.T) {
	for _, f := range forges() {
		t.Run(f.name, func(t *testing.T) {
			h := newHarness(t, allSecrets())
			rec := h.do(f.request(f.push(t), "", false))
			wantStatus(t, rec, http.StatusUnauthorized)
			wantTriggers(t, h.b)
			lines := h.log.Lines(t)
			if len(lines) != 1 || !strings.HasPrefix(lines[0]["reason"].(string), "missing") {
				t.Errorf("log = %v", lines)
			}
		})
	}
}

func TestWebhookOtherRefIgnored(t *testing.T) {
	for _, f := range forges() {
		t.Run(f.name, func(t *testing.T) {
			h := newHarness(t, allSecrets())
			body := withRef(t, f.push(t), "refs/heads/feature/new-db")
			rec := h.do(f.request(body, f.secret, false))
			wantStatus(t, rec, http.StatusAccepted)
			if resp := decodeJSON(t, rec); resp["triggered"] != false {
				t.Errorf("response = %v", resp)
			}
			wantTriggers(t, h.b)
		})
	}
}

func TestWebhookTagPushWithBranchTracked(t *testing.T) {
	for _, f := range forges() {
		t.Run(f.name, func(t *testing.T) {
			h := newHarness(t, allSecrets())
			rec := h.do(f.request(f.tag(t), f.secret, true))
			wantStatus(t, rec, http.StatusAccepted)
			wantTriggers(t, h.b)
		})
	}
}

func TestWebhookEveryPushTriggersWithoutTrackedRef(t *testing.T) {
	for _, f := range forges() {
		t.Run(f.name, func(t *testing.T) {
			cfg := allSecrets()
			cfg.TrackedRef = ""
			h := newHarness(t, cfg)
			wantStatus(t, h.do(f.request(f.tag(t), f.secret, true)), http.StatusAccepted)
			body := withRef(t, f.push(t), "refs/heads/feature/new-db")
			wantStatus(t, h.do(f.request(body, f.secret, false)), http.StatusAccepted)
			wantTriggers(t, h.b, "webhook:"+f.endpoint, "webhook:"+f.endpoint)
		})
	}
}

func TestWebhookBodyLimit(t *testing.T) {
	const limit = 4096
	for _, f := range forges() {
		t.Run(f.name, func(t *testing.T) {
			cfg := allSecrets()
			cfg.BodyLimit = limit
			h := newHarness(t, cfg)

			// Exactly the limit: accepted (JSON allows trailing blanks).
			body := []byte(`{"ref":"refs/heads/main"}`)
			body = append(body, bytes.Repeat([]byte(" "), limit-len(body))...)
			wantStatus(t, h.do(f.request(body, f.secret, false)), http.StatusAccepted)

			// One byte more, correctly signed: 413, with and without a
			// Content-Length.
			body = append(body, ' ')
			wantStatus(t, h.do(f.request(body, f.secret, false)), http.StatusRequestEntityTooLarge)
			req := f.request(body, f.secret, false)
			req.ContentLength = -1
			req.Body = io.NopCloser(struct{ io.Reader }{bytes.NewReader(body)})
			rec := h.do(req)
			wantStatus(t, rec, http.StatusRequestEntityTooLarge)
			decodeJSON(t, rec)
			wantTriggers(t, h.b, "webhook:"+f.endpoint)
		})
	}
}

// countingReader is an endless body that counts what was read of it.
type countingReader struct{ n int64 }

func (c *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	c.n += int64(len(p))
	return len(p), nil
}

func TestWebhookReadsAtMostLimitPlusOne(t *testing.T) {
	cfg := allSecrets()
	cfg.BodyLimit = 1000
	h := newHarness(t, cfg)
	body := &countingReader{}
	req := httptest.NewRequest(http.MethodPost, "/hooks/github", io.NopCloser(body))
	req.ContentLength = -1
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-Hub-Signature-256", "sha256="+strings.Repeat("ab", 32))
	wantStatus(t, h.do(req), http.StatusRequestEntityTooLarge)
	if body.n > cfg.BodyLimit+1 {
		t.Errorf("read %d bytes, want at most %d", body.n, cfg.BodyLimit+1)
	}
}

func TestWebhookDefaultBodyLimit(t *testing.T) {
	h := newHarness(t, allSecrets())
	body := bytes.Repeat([]byte(" "), DefaultBodyLimit+1)
	f := forges()[0]
	wantStatus(t, h.do(f.request(body, f.secret, false)), http.StatusRequestEntityTooLarge)
}

func TestWebhookRateLimit(t *testing.T) {
	for _, f := range forges() {
		t.Run(f.name, func(t *testing.T) {
			cfg := allSecrets()
			cfg.RateLimit = 3
			h := newHarness(t, cfg)
			body := f.push(t)
			for i := range 3 {
				rec := h.do(f.request(body, f.secret, false))
				if rec.Code != http.StatusAccepted {
					t.Fatalf("request %d: status %d", i+1, rec.Code)
				}
			}
			rec := h.do(f.request(body, f.secret, false))
			wantStatus(t, rec, http.StatusTooManyRequests)
			// 3 a minute: one token every 20 s.
			if ra := rec.Header().Get("Retry-After"); ra != "20" {
				t.Errorf("Retry-After = %q, want 20", ra)
			}
			decodeJSON(t, rec)
			wantTriggers(t, h.b, "webhook:"+f.endpoint, "webhook:"+f.endpoint, "webhook:"+f.endpoint)

			// Another client is not limited.
			other := f.request(body, f.secret, false)
			other.RemoteAddr = "198.51.100.7:40000"
			wantStatus(t, h.do(other), http.StatusAccepted)

			// The bucket refills.
			h.clock.Advance(19 * time.Second)
			wantStatus(t, h.do(f.request(body, f.secret, false)), http.StatusTooManyRequests)
			h.clock.Advance(time.Second)
			wantStatus(t, h.do(f.request(body, f.secret, false)), http.StatusAccepted)
			wantStatus(t, h.do(f.request(body, f.secret, false)), http.StatusTooManyRequests)

			if !strings.Contains(h.scrape(t), `tend_webhooks_total{endpoint="`+f.endpoint+`",result="rate-limited"} 3`) {
				t.Error("rate-limited not counted")
			}
		})
	}
}

func TestWebhookDisabled(t *testing.T) {
	for _, f := range forges() {
		t.Run(f.name, func(t *testing.T) {
			cfg := allSecrets()
			f.disable(&cfg)
			h := newHarness(t, cfg)
			// Signed with the empty secret, or with the usual one: 404.
			for _, secret := range []string{"x", f.secret} {
				rec := h.do(f.request(f.push(t), secret, false))
				wantStatus(t, rec, http.StatusNotFound)
				decodeJSON(t, rec)
			}
			wantTriggers(t, h.b)
		})
	}
}

func TestWebhookDeletedBranchIgnored(t *testing.T) {
	for _, f := range forges() {
		if f.name == "generic" {
			continue
		}
		t.Run(f.name, func(t *testing.T) {
			h := newHarness(t, allSecrets())
			body := bytes.Replace(f.push(t), []byte(`"after": "`), []byte(`"after": "`+zeroSHA+`", "x-old-after": "`), 1)
			rec := h.do(f.request(body, f.secret, false))
			wantStatus(t, rec, http.StatusAccepted)
			if resp := decodeJSON(t, rec); !strings.Contains(resp["ignored"].(string), "deleted") {
				t.Errorf("response = %v", resp)
			}
			wantTriggers(t, h.b)
		})
	}
}

func TestWebhookMethodNotAllowed(t *testing.T) {
	h := newHarness(t, allSecrets())
	for _, f := range forges() {
		rec := h.do(httptest.NewRequest(http.MethodGet, f.path, nil))
		wantStatus(t, rec, http.StatusMethodNotAllowed)
		if rec.Header().Get("Allow") != "POST" {
			t.Errorf("%s: Allow = %q", f.name, rec.Header().Get("Allow"))
		}
	}
	wantTriggers(t, h.b)
}

func TestWebhookBadJSON(t *testing.T) {
	for _, f := range forges() {
		t.Run(f.name, func(t *testing.T) {
			h := newHarness(t, allSecrets())
			rec := h.do(f.request([]byte(`{"ref": `), f.secret, false))
			wantStatus(t, rec, http.StatusBadRequest)
			decodeJSON(t, rec)
			wantTriggers(t, h.b)
		})
	}
}

func TestGitHubPing(t *testing.T) {
	h := newHarness(t, allSecrets())
	body := testdata(t, "github_ping.json")
	req := httptest.NewRequest(http.MethodPost, "/hooks/github", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "ping")
	req.Header.Set("X-GitHub-Delivery", "d9a0b5f0-7a2a-11e9-8e3a-2a2b3c4d5e6f")
	req.Header.Set("X-GitHub-Hook-ID", "109948940")
	req.Header.Set("X-Hub-Signature-256", "sha256="+hmacHex(ghSecret, body))
	rec := h.do(req)
	wantStatus(t, rec, http.StatusOK)
	if resp := decodeJSON(t, rec); resp["pong"] != true {
		t.Errorf("response = %v", resp)
	}
	wantTriggers(t, h.b)

	// A ping signed wrong is refused like anything else.
	req = httptest.NewRequest(http.MethodPost, "/hooks/github", bytes.NewReader(body))
	req.Header.Set("X-GitHub-Event", "ping")
	req.Header.Set("X-Hub-Signature-256", "sha256="+hmacHex("other", body))
	wantStatus(t, h.do(req), http.StatusUnauthorized)
}

func TestGitHubOtherEventIgnored(t *testing.T) {
	h := newHarness(t, allSecrets())
	body := []byte(`{"action":"opened","number":2,"pull_request":{"head":{"ref":"main"}}}`)
	req := httptest.NewRequest(http.MethodPost, "/hooks/github", bytes.NewReader(body))
	req.Header.Set("X-GitHub-Event", "pull_request")
	req.Header.Set("X-Hub-Signature-256", "sha256="+hmacHex(ghSecret, body))
	rec := h.do(req)
	wantStatus(t, rec, http.StatusAccepted)
	if resp := decodeJSON(t, rec); resp["triggered"] != false {
		t.Errorf("response = %v", resp)
	}
	wantTriggers(t, h.b)
}

func TestGitHubMissingEvent(t *testing.T) {
	h := newHarness(t, allSecrets())
	body := testdata(t, "github_push.json")
	req := httptest.NewRequest(http.MethodPost, "/hooks/github", bytes.NewReader(body))
	req.Header.Set("X-Hub-Signature-256", "sha256="+hmacHex(ghSecret, body))
	wantStatus(t, h.do(req), http.StatusBadRequest)
	wantTriggers(t, h.b)
}

func TestGitHubFormContentType(t *testing.T) {
	h := newHarness(t, allSecrets())
	body := []byte(url.Values{"payload": {string(testdata(t, "github_push.json"))}}.Encode())
	req := httptest.NewRequest(http.MethodPost, "/hooks/github", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-Hub-Signature-256", "sha256="+hmacHex(ghSecret, body))
	wantStatus(t, h.do(req), http.StatusAccepted)
	wantTriggers(t, h.b, "webhook:github")
}

func TestGitHubSignatureForms(t *testing.T) {
	body := testdata(t, "github_push.json")
	sig := hmacHex(ghSecret, body)
	cases := []struct {
		name, header string
		want         int
	}{
		{"uppercase hex", "sha256=" + strings.ToUpper(sig), http.StatusAccepted},
		{"no prefix", sig, http.StatusUnauthorized},
		{"sha1 prefix", "sha1=" + sig, http.StatusUnauthorized},
		{"not hex", "sha256=" + strings.Repeat("zz", 32), http.StatusUnauthorized},
		{"short", "sha256=" + sig[:20], http.StatusUnauthorized},
		{"empty prefix only", "sha256=", http.StatusUnauthorized},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, allSecrets())
			req := httptest.NewRequest(http.MethodPost, "/hooks/github", bytes.NewReader(body))
			req.Header.Set("X-GitHub-Event", "push")
			req.Header.Set("X-Hub-Signature-256", c.header)
			wantStatus(t, h.do(req), c.want)
		})
	}
}

func TestGitLabTagPushHookTriggersWhenTagTracked(t *testing.T) {
	cfg := allSecrets()
	cfg.TrackedRef = "refs/tags/v1.0.0"
	h := newHarness(t, cfg)
	f := forges()[1]
	wantStatus(t, h.do(f.request(f.tag(t), f.secret, true)), http.StatusAccepted)
	wantTriggers(t, h.b, "webhook:gitlab")
}

func TestGitLabOtherEventIgnored(t *testing.T) {
	h := newHarness(t, allSecrets())
	req := httptest.NewRequest(http.MethodPost, "/hooks/gitlab", strings.NewReader(`{"object_kind":"merge_request","ref":"refs/heads/main"}`))
	req.Header.Set("X-Gitlab-Event", "Merge Request Hook")
	req.Header.Set("X-Gitlab-Token", glToken)
	wantStatus(t, h.do(req), http.StatusAccepted)
	wantTriggers(t, h.b)
}

func TestGiteaEverySignatureMustVerify(t *testing.T) {
	body := testdata(t, "gitea_push.json")
	good := hmacHex(giteaSecret, body)
	bad := hmacHex("other", body)
	cases := []struct {
		name    string
		headers map[string]string
		want    int
	}{
		{"gitea only", map[string]string{"X-Gitea-Signature": good}, http.StatusAccepted},
		{"forgejo only", map[string]string{"X-Forgejo-Signature": good}, http.StatusAccepted},
		{"hub only", map[string]string{"X-Hub-Signature-256": "sha256=" + good}, http.StatusAccepted},
		{"gitea good, hub bad", map[string]string{"X-Gitea-Signature": good, "X-Hub-Signature-256": "sha256=" + bad}, http.StatusUnauthorized},
		{"forgejo bad, gitea good", map[string]string{"X-Forgejo-Signature": bad, "X-Gitea-Signature": good}, http.StatusUnauthorized},
		{"gitea with prefix", map[string]string{"X-Gitea-Signature": "sha256=" + good}, http.StatusUnauthorized},
		{"only the old sha1 header", map[string]string{"X-Hub-Signature": "sha1=" + good[:40]}, http.StatusUnauthorized},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, allSecrets())
			req := httptest.NewRequest(http.MethodPost, "/hooks/gitea", bytes.NewReader(body))
			req.Header.Set("X-Gitea-Event", "push")
			for k, v := range c.headers {
				req.Header.Set(k, v)
			}
			wantStatus(t, h.do(req), c.want)
			if c.want != http.StatusAccepted {
				wantTriggers(t, h.b)
				if strings.Contains(h.log.String(), good) || strings.Contains(h.log.String(), bad) {
					t.Errorf("log shows a signature:\n%s", h.log.String())
				}
			}
		})
	}
}

func TestGiteaFormSignsThePayload(t *testing.T) {
	payload := testdata(t, "gitea_push.json")
	body := []byte(url.Values{"payload": {string(payload)}}.Encode())
	for name, signed := range map[string][]byte{"payload": payload, "form": body} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, allSecrets())
			req := httptest.NewRequest(http.MethodPost, "/hooks/gitea", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("X-Gitea-Event", "push")
			req.Header.Set("X-Gitea-Signature", hmacHex(giteaSecret, signed))
			wantStatus(t, h.do(req), http.StatusAccepted)
			wantTriggers(t, h.b, "webhook:gitea")
		})
	}
}

func TestGiteaCreateEventIgnored(t *testing.T) {
	h := newHarness(t, allSecrets())
	body := []byte(`{"sha":"bffeb74224043ba2feb48d137756c8a9331c449a","ref":"v1.4.0","ref_type":"tag"}`)
	req := httptest.NewRequest(http.MethodPost, "/hooks/gitea", bytes.NewReader(body))
	req.Header.Set("X-Gitea-Event", "create")
	req.Header.Set("X-Gitea-Signature", hmacHex(giteaSecret, body))
	wantStatus(t, h.do(req), http.StatusAccepted)
	wantTriggers(t, h.b)
}

func TestGenericBodyOptional(t *testing.T) {
	for name, body := range map[string]string{"empty": "", "no ref": `{"note":"nightly"}`, "empty ref": `{"ref":""}`} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, allSecrets())
			req := httptest.NewRequest(http.MethodPost, "/hooks/generic", strings.NewReader(body))
			req.Header.Set("X-Tend-Signature", "sha256="+hmacHex(genericSecret, []byte(body)))
			wantStatus(t, h.do(req), http.StatusAccepted)
			wantTriggers(t, h.b, "webhook:generic")
		})
	}
}

func TestTrackedRefShortName(t *testing.T) {
	cfg := allSecrets()
	cfg.TrackedRef = "main"
	h := newHarness(t, cfg)
	f := forges()[0]
	wantStatus(t, h.do(f.request(f.push(t), f.secret, false)), http.StatusAccepted)
	wantTriggers(t, h.b, "webhook:github")
}

// TestWebhookOverHTTP goes through a real listener, so Content-Length and
// chunked bodies are what a client sends.
func TestWebhookOverHTTP(t *testing.T) {
	cfg := allSecrets()
	cfg.BodyLimit = 2048
	h := newHarness(t, cfg)
	ts := httptest.NewServer(h.srv)
	defer ts.Close()

	body := testdata(t, "github_push.json")
	body = withRef(t, body, "refs/heads/main") // compact it under the limit
	post := func(r io.Reader) *http.Response {
		req, err := http.NewRequest(http.MethodPost, ts.URL+"/hooks/github", r)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-GitHub-Event", "push")
		req.Header.Set("X-Hub-Signature-256", "sha256="+hmacHex(ghSecret, body))
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	if len(body) > 2048 {
		t.Fatalf("fixture is %d bytes", len(body))
	}
	if resp := post(bytes.NewReader(body)); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d", resp.StatusCode)
	}
	// Chunked (no length), too large.
	big := io.MultiReader(bytes.NewReader(body), strings.NewReader(strings.Repeat(" ", 4096)))
	if resp := post(struct{ io.Reader }{big}); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d", resp.StatusCode)
	}
	wantTriggers(t, h.b, "webhook:github")
}
