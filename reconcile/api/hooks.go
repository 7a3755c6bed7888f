package api

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/sirupsen/logrus"
)

// Reasons a webhook is refused with 401, as logged. Fixed strings, so a log
// line can never carry what the client sent.
const (
	reasonMissingSig   = "missing signature"
	reasonMalformedSig = "malformed signature"
	reasonBadSig       = "signature mismatch"
	reasonMissingToken = "missing token"
	reasonBadToken     = "token mismatch"
)

// POST /hooks/github
//
// GitHub signs the raw body (JSON, or form-encoded "payload=" when the hook
// is set to application/x-www-form-urlencoded) in X-Hub-Signature-256.
func (s *server) github(w http.ResponseWriter, r *http.Request) {
	const ep = "github"
	secret, body, remote, ok := s.hookPrelude(w, r, ep)
	if !ok {
		return
	}
	if reason := checkHMAC(secret, r.Header.Get("X-Hub-Signature-256"), "sha256=", body); reason != "" {
		s.refuse(w, ep, remote, reason)
		return
	}
	payload, ok := s.formPayload(w, r, ep, body)
	if !ok {
		return
	}
	delivery := r.Header.Get("X-GitHub-Delivery")
	switch ev := r.Header.Get("X-GitHub-Event"); ev {
	case "ping":
		s.m.IncWebhook(ep, WebhookPing)
		s.log.WithFields(logrus.Fields{"endpoint": ep, "remote": remote, "delivery": clip(delivery)}).Info("webhook ping")
		writeJSON(w, http.StatusOK, map[string]bool{"pong": true})
	case "push":
		s.push(w, ep, remote, delivery, payload)
	default:
		s.ignoreEvent(w, ep, ev)
	}
}

// POST /hooks/gitlab
//
// GitLab sends the configured secret token as is in X-Gitlab-Token.
func (s *server) gitlab(w http.ResponseWriter, r *http.Request) {
	const ep = "gitlab"
	token, body, remote, ok := s.hookPrelude(w, r, ep)
	if !ok {
		return
	}
	got := r.Header.Get("X-Gitlab-Token")
	switch {
	case got == "":
		s.refuse(w, ep, remote, reasonMissingToken)
		return
	case !equalSecret(got, token):
		s.refuse(w, ep, remote, reasonBadToken)
		return
	}
	delivery := r.Header.Get("X-Gitlab-Event-UUID")
	switch ev := r.Header.Get("X-Gitlab-Event"); ev {
	case "Push Hook", "Tag Push Hook":
		s.push(w, ep, remote, delivery, body)
	default:
		s.ignoreEvent(w, ep, ev)
	}
}

// POST /hooks/gitea
//
// Gitea sends X-Gitea-Signature, Forgejo X-Forgejo-Signature (hex, no
// prefix), and both X-Hub-Signature-256 too. Every one of them that is
// present must verify, and at least one must be. With the form content
// type Gitea signs the JSON payload, not the form, so either is accepted
// as the signed bytes.
func (s *server) gitea(w http.ResponseWriter, r *http.Request) {
	const ep = "gitea"
	secret, body, remote, ok := s.hookPrelude(w, r, ep)
	if !ok {
		return
	}
	signed := [][]byte{body}
	if isForm(r) {
		if v, err := url.ParseQuery(string(body)); err == nil && v.Has("payload") {
			signed = append(signed, []byte(v.Get("payload")))
		}
	}
	sigs := []struct{ header, prefix string }{
		{"X-Forgejo-Signature", ""},
		{"X-Gitea-Signature", ""},
		{"X-Hub-Signature-256", "sha256="},
	}
	present := 0
	for _, sg := range sigs {
		v := r.Header.Get(sg.header)
		if v == "" {
			continue
		}
		present++
		reason := reasonBadSig
		for _, b := range signed {
			if reason = checkHMAC(secret, v, sg.prefix, b); reason == "" || reason == reasonMalformedSig {
				break
			}
		}
		if reason != "" {
			s.refuse(w, ep, remote, reason)
			return
		}
	}
	if present == 0 {
		s.refuse(w, ep, remote, reasonMissingSig)
		return
	}
	payload, ok := s.formPayload(w, r, ep, body)
	if !ok {
		return
	}
	ev := r.Header.Get("X-Forgejo-Event")
	delivery := r.Header.Get("X-Forgejo-Delivery")
	if ev == "" {
		ev = r.Header.Get("X-Gitea-Event")
		delivery = r.Header.Get("X-Gitea-Delivery")
	}
	if ev == "push" {
		s.push(w, ep, remote, delivery, payload)
		return
	}
	s.ignoreEvent(w, ep, ev)
}

// POST /hooks/generic
//
// For scripts and CI: X-Tend-Signature "sha256=<hex HMAC-SHA256>" over the
// body, which is empty or a JSON object with an optional "ref". Without a
// ref every signed request triggers.
func (s *server) generic(w http.ResponseWriter, r *http.Request) {
	const ep = "generic"
	secret, body, remote, ok := s.hookPrelude(w, r, ep)
	if !ok {
		return
	}
	if reason := checkHMAC(secret, r.Header.Get("X-Tend-Signature"), "sha256=", body); reason != "" {
		s.refuse(w, ep, remote, reason)
		return
	}
	var req struct {
		Ref string `json:"ref"`
	}
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			s.badRequest(w, ep, "body: want empty or a JSON object")
			return
		}
	}
	if req.Ref != "" && !s.tracks(req.Ref) {
		s.ignore(w, ep, "ref "+clip(req.Ref)+" is not tracked")
		return
	}
	s.trigger(w, ep, remote, r.Header.Get("X-Request-Id"), req.Ref, "")
}

// hookPrelude does what every webhook does before authenticating: 404 when
// the endpoint is disabled, 405 unless POST, 429 over the rate limit, 413
// over the body limit. It has answered when ok is false.
func (s *server) hookPrelude(w http.ResponseWriter, r *http.Request, ep string) (secret string, body []byte, remote string, ok bool) {
	secret = s.hooks[ep]
	if secret == "" {
		writeError(w, http.StatusNotFound, ep+" webhook disabled")
		return "", nil, "", false
	}
	if !allowMethod(w, r, http.MethodPost) {
		return "", nil, "", false
	}
	remote = s.remote(r)
	if !s.rateLimit(w, r, ep, remote) {
		return "", nil, "", false
	}
	if r.ContentLength > s.bodyLimit {
		s.tooLarge(w, ep, remote)
		return "", nil, "", false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, s.bodyLimit+1))
	if err != nil {
		s.badRequest(w, ep, "cannot read body")
		return "", nil, "", false
	}
	if int64(len(body)) > s.bodyLimit {
		s.tooLarge(w, ep, remote)
		return "", nil, "", false
	}
	return secret, body, remote, true
}

// checkHMAC verifies that sig is prefix followed by the hex HMAC-SHA256 of
// body under secret. It returns "" when it is, else a fixed reason.
func checkHMAC(secret, sig, prefix string, body []byte) string {
	if sig == "" {
		return reasonMissingSig
	}
	hexSig, ok := strings.CutPrefix(sig, prefix)
	if !ok {
		return reasonMalformedSig
	}
	got, err := hex.DecodeString(strings.TrimSpace(hexSig))
	if err != nil || len(got) != sha256.Size {
		return reasonMalformedSig
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return reasonBadSig
	}
	return ""
}

// formPayload returns the JSON of a verified request: the body, or its
// "payload" field when the forge posts a form.
func (s *server) formPayload(w http.ResponseWriter, r *http.Request, ep string, body []byte) ([]byte, bool) {
	if !isForm(r) {
		return body, true
	}
	v, err := url.ParseQuery(string(body))
	if err != nil || !v.Has("payload") {
		s.badRequest(w, ep, "form body without payload")
		return nil, false
	}
	return []byte(v.Get("payload")), true
}

func isForm(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/x-www-form-urlencoded"
}

// pushEvent is what tend reads of a push, the same fields at GitHub,
// GitLab, Gitea and Forgejo.
type pushEvent struct {
	Ref     string `json:"ref"`
	After   string `json:"after"`
	Deleted bool   `json:"deleted"` // GitHub, Gitea; GitLab says so by an all-zero "after"
}

// push handles a verified push event: a push to the tracked ref triggers,
// anything else is acknowledged and ignored.
func (s *server) push(w http.ResponseWriter, ep, remote, delivery string, payload []byte) {
	var ev pushEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		s.badRequest(w, ep, "body: not a JSON push event")
		return
	}
	if ev.Ref == "" {
		s.badRequest(w, ep, "push event without ref")
		return
	}
	if !s.tracks(ev.Ref) {
		s.ignore(w, ep, "ref "+clip(ev.Ref)+" is not tracked")
		return
	}
	if ev.Deleted || isZeroSHA(ev.After) {
		// Nothing to fetch: a pass would only fail.
		s.ignore(w, ep, "ref "+clip(ev.Ref)+" was deleted")
		return
	}
	s.trigger(w, ep, remote, delivery, ev.Ref, ev.After)
}

func (s *server) trigger(w http.ResponseWriter, ep, remote, delivery, ref, after string) {
	// The reason is bounded (one per endpoint) so that the daemon may use
	// it as a label; the details go to the log line.
	s.b.Trigger("webhook:" + ep)
	s.m.IncWebhook(ep, WebhookTriggered)
	f := logrus.Fields{"endpoint": ep, "remote": remote}
	if ref != "" {
		f["ref"] = clip(ref)
	}
	if after != "" {
		f["after"] = clip(after)
	}
	if delivery != "" {
		f["delivery"] = clip(delivery)
	}
	s.log.WithFields(f).Info("webhook: sync triggered")
	resp := map[string]any{"accepted": true, "triggered": true}
	if ref != "" {
		resp["ref"] = ref
	}
	writeJSON(w, http.StatusAccepted, resp)
}

// tracks reports whether a push to ref should trigger a sync.
func (s *server) tracks(ref string) bool {
	return s.trackedRef == "" || ref == s.trackedRef
}

func (s *server) ignore(w http.ResponseWriter, ep, why string) {
	s.m.IncWebhook(ep, WebhookIgnored)
	s.log.WithFields(logrus.Fields{"endpoint": ep, "why": clip(why)}).Debug("webhook ignored")
	writeJSON(w, http.StatusAccepted, map[string]any{"accepted": true, "triggered": false, "ignored": why})
}

func (s *server) ignoreEvent(w http.ResponseWriter, ep, ev string) {
	if ev == "" {
		s.badRequest(w, ep, "missing event header")
		return
	}
	s.ignore(w, ep, "event "+strconv.Quote(clip(ev))+" is not a push")
}

func (s *server) badRequest(w http.ResponseWriter, ep, msg string) {
	s.m.IncWebhook(ep, WebhookBadRequest)
	writeError(w, http.StatusBadRequest, msg)
}

func (s *server) tooLarge(w http.ResponseWriter, ep, remote string) {
	s.m.IncWebhook(ep, WebhookTooLarge)
	s.log.WithFields(logrus.Fields{"endpoint": ep, "remote": remote, "reason": "body over " + strconv.FormatInt(s.bodyLimit, 10) + " bytes"}).Warn("webhook refused")
	writeError(w, http.StatusRequestEntityTooLarge, "body too large")
}

// normalizeRef turns a bare branch name into its full ref.
func normalizeRef(ref string) string {
	ref = strings.TrimSpace(ref)
	if ref == "" || strings.HasPrefix(ref, "refs/") {
		return ref
	}
	return "refs/heads/" + ref
}

func isZeroSHA(sha string) bool {
	return len(sha) >= 40 && strings.Trim(sha, "0") == ""
}

// clip bounds a client-chosen string before it is logged or echoed.
func clip(s string) string {
	const n = 128
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
