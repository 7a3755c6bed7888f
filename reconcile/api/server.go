package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
)

// Backend is the daemon, as the HTTP side sees it.
type Backend interface {
	// Trigger asks for a reconcile pass; it never blocks and coalesces (many
	// triggers during a pass = one more pass).
	Trigger(reason string)
	// Ready reports whether the first load of the desired state succeeded.
	Ready() bool
	// Status returns a JSON-able document of the fleet; History the
	// revisions (server "" = all).
	Status(ctx context.Context) (any, error)
	History(ctx context.Context, server string, limit int) (any, error)
}

// BackupLister is a Backend that also serves the backup catalog at
// /api/v1/backups (server "" = all, newest first).
type BackupLister interface {
	Backups(ctx context.Context, server string, limit int) (any, error)
}

// Defaults and bounds of Config and the API.
const (
	DefaultBodyLimit    = 25 << 20 // bytes: GitHub caps a push payload at 25 MB
	DefaultRateLimit    = 60       // requests a minute per client
	DefaultHistoryLimit = 50       // revisions when ?limit= is absent
	MaxHistoryLimit     = 1000     // larger ?limit= values are lowered to this
	maxServerParam      = 256      // bytes of ?server=
	apiTimeout          = 30 * time.Second
)

// Config configures NewServer.
type Config struct {
	// Webhook secrets; an endpoint whose secret is empty answers 404 (disabled).
	GitHubSecret, GitLabToken, GiteaSecret, GenericSecret string
	// TrackedRef is the ref whose pushes trigger a sync, such as
	// "refs/heads/main"; pushes to other refs answer 202 and do nothing.
	// Empty: every push triggers. A name without "refs/" is a branch:
	// "main" means "refs/heads/main".
	TrackedRef string
	// APIToken guards POST /api/v1/sync and the JSON API with
	// "Authorization: Bearer TOKEN"; empty = the API answers 403
	// apiDisabled, which names TEND_API_TOKEN (health and metrics stay open).
	APIToken string
	// BodyLimit caps webhook bodies in bytes: 0 or less means
	// DefaultBodyLimit (25 MiB, what GitHub sends at most); larger bodies
	// → 413, counted as too-large. A body is read as it arrives and never
	// past the limit plus one byte.
	BodyLimit int64
	// RateLimit: at most this many webhook/API requests per minute per
	// client IP (IPv6: per /64), bursts included → 429 with Retry-After.
	// 0 means DefaultRateLimit (60); negative disables the limit.
	RateLimit int
	// TrustedProxies are the reverse proxies whose X-Forwarded-For is
	// believed when telling clients apart. Empty: the connection's peer is
	// the client, and X-Forwarded-For is ignored (it is trivial to forge).
	TrustedProxies []netip.Prefix
	// Log receives one line per refused webhook or API request and one per
	// triggered sync; nil means logrus.StandardLogger().
	Log *logrus.Logger
	// Dashboard, when set, serves every path outside /api/ and /hooks/
	// that no other route takes (the fleet dashboard at "/"). Its POSTs
	// share the API's rate limit, per client.
	Dashboard http.Handler
}

// server is the http.Handler NewServer returns.
type server struct {
	b          Backend
	m          *Metrics
	log        *logrus.Logger
	mux        *http.ServeMux
	lim        *limiter // nil: no rate limit
	bodyLimit  int64
	trackedRef string
	apiToken   string
	trusted    []netip.Prefix
	hooks      map[string]string // endpoint → secret or token
}

// NewServer returns the daemon's HTTP handler (see the package comment for
// the routes). b must not be nil; m may be nil, and /metrics then answers
// 404. Serve it with timeouts, as HTTPServer does.
func NewServer(cfg Config, b Backend, m *Metrics) http.Handler {
	return newServer(cfg, b, m, time.Now)
}

func newServer(cfg Config, b Backend, m *Metrics, now func() time.Time) *server {
	if b == nil {
		panic("api.NewServer: nil Backend")
	}
	s := &server{
		b:          b,
		m:          m,
		log:        cfg.Log,
		mux:        http.NewServeMux(),
		bodyLimit:  cfg.BodyLimit,
		trackedRef: normalizeRef(cfg.TrackedRef),
		apiToken:   cfg.APIToken,
		trusted:    cfg.TrustedProxies,
		hooks: map[string]string{
			"github":  cfg.GitHubSecret,
			"gitlab":  cfg.GitLabToken,
			"gitea":   cfg.GiteaSecret,
			"generic": cfg.GenericSecret,
		},
	}
	if s.log == nil {
		s.log = logrus.StandardLogger()
	}
	if s.bodyLimit <= 0 {
		s.bodyLimit = DefaultBodyLimit
	}
	switch rl := cfg.RateLimit; {
	case rl == 0:
		s.lim = newLimiter(DefaultRateLimit, now)
	case rl > 0:
		s.lim = newLimiter(rl, now)
	}

	s.mux.HandleFunc("/healthz", s.healthz)
	s.mux.HandleFunc("/readyz", s.readyz)
	s.mux.HandleFunc("/metrics", s.metrics(m.Handler()))
	s.mux.HandleFunc("/hooks/github", s.github)
	s.mux.HandleFunc("/hooks/gitlab", s.gitlab)
	s.mux.HandleFunc("/hooks/gitea", s.gitea)
	s.mux.HandleFunc("/hooks/generic", s.generic)
	s.mux.HandleFunc("/api/v1/status", s.status)
	s.mux.HandleFunc("/api/v1/history", s.list("history", s.b.History))
	if bl, ok := b.(BackupLister); ok {
		s.mux.HandleFunc("/api/v1/backups", s.list("backups", bl.Backups))
	}
	s.mux.HandleFunc("/api/v1/sync", s.sync)
	s.mux.HandleFunc("/api/v1/approve", s.decide(false))
	s.mux.HandleFunc("/api/v1/reject", s.decide(true))
	s.mux.HandleFunc("/api/v1/approvals", s.approvals)
	notFound := func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not found")
	}
	if d := cfg.Dashboard; d != nil {
		s.mux.HandleFunc("/api/", notFound)
		s.mux.HandleFunc("/hooks/", notFound)
		s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && !s.rateLimit(w, r, "api", s.remote(r)) {
				return
			}
			d.ServeHTTP(w, r)
		})
	} else {
		s.mux.HandleFunc("/", notFound)
	}
	return s
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	s.mux.ServeHTTP(w, r)
}

// HTTPServer returns an *http.Server for h with timeouts that keep a slow
// or silent client from holding connections open.
func HTTPServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      apiTimeout + 15*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
}

// --- health, readiness, metrics ---

func (s *server) healthz(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r, http.MethodGet, http.MethodHead) {
		return
	}
	writeText(w, http.StatusOK, "ok")
}

func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r, http.MethodGet, http.MethodHead) {
		return
	}
	if !s.b.Ready() {
		writeError(w, http.StatusServiceUnavailable, "not ready: desired state not loaded yet")
		return
	}
	writeText(w, http.StatusOK, "ok")
}

func (s *server) metrics(h http.Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !allowMethod(w, r, http.MethodGet, http.MethodHead) {
			return
		}
		if s.m == nil {
			writeError(w, http.StatusNotFound, "metrics disabled")
			return
		}
		// The exposition is cacheable in principle, but scrapers never cache.
		h.ServeHTTP(w, r)
	}
}

// --- JSON API ---

func (s *server) status(w http.ResponseWriter, r *http.Request) {
	if !s.apiGuard(w, r, http.MethodGet, http.MethodHead) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), apiTimeout)
	defer cancel()
	v, err := s.b.Status(ctx)
	if err != nil {
		s.backendError(w, r, "status", err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// list serves a list of the store (history, backups): ?server= narrows it,
// ?limit= bounds it.
func (s *server) list(what string, get func(ctx context.Context, server string, limit int) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { s.serveList(w, r, what, get) }
}

func (s *server) serveList(w http.ResponseWriter, r *http.Request, what string, get func(ctx context.Context, server string, limit int) (any, error)) {
	if !s.apiGuard(w, r, http.MethodGet, http.MethodHead) {
		return
	}
	q := r.URL.Query()
	srv := q.Get("server")
	if len(srv) > maxServerParam {
		writeError(w, http.StatusBadRequest, "server: name too long")
		return
	}
	limit := DefaultHistoryLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, "limit: want a positive integer")
			return
		}
		limit = min(n, MaxHistoryLimit)
	}
	ctx, cancel := context.WithTimeout(r.Context(), apiTimeout)
	defer cancel()
	v, err := get(ctx, srv, limit)
	if err != nil {
		s.backendError(w, r, what, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *server) sync(w http.ResponseWriter, r *http.Request) {
	if !s.apiGuard(w, r, http.MethodPost) {
		return
	}
	s.b.Trigger("api")
	s.log.WithFields(logrus.Fields{"endpoint": "api", "remote": s.remote(r)}).Info("sync requested")
	writeJSON(w, http.StatusAccepted, map[string]bool{"accepted": true})
}

// apiDisabled is the 403 answer of the API when no token is configured. It
// names the environment variable tend run reads: there is no flag for the
// token, so that it never shows in a process listing.
const apiDisabled = "the API is disabled: start tend run with TEND_API_TOKEN set in its environment"

// apiGuard refuses the request unless the API is enabled, the method is
// one of methods, the client is under its rate limit and the bearer token
// is right. It has answered when it returns false.
func (s *server) apiGuard(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	if s.apiToken == "" {
		writeError(w, http.StatusForbidden, apiDisabled)
		return false
	}
	if !allowMethod(w, r, methods...) {
		return false
	}
	remote := s.remote(r)
	if !s.rateLimit(w, r, "api", remote) {
		return false
	}
	if reason := checkBearer(r.Header.Get("Authorization"), s.apiToken); reason != "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="tend"`)
		s.refuse(w, "api", remote, reason)
		return false
	}
	return true
}

// backendError answers a failed Status or History. The error's text goes
// to the log only: it may name paths or databases the caller has no need
// to see.
func (s *server) backendError(w http.ResponseWriter, r *http.Request, what string, err error) {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusGatewayTimeout, what+": timed out")
	case r.Context().Err() != nil:
		// The client went away; nobody reads the answer.
		writeError(w, http.StatusServiceUnavailable, what+": canceled")
	default:
		writeError(w, http.StatusInternalServerError, what+" failed")
	}
	s.log.WithFields(logrus.Fields{"endpoint": "api", "remote": s.remote(r), "error": err.Error()}).Error(what + " failed")
}

func checkBearer(header, token string) string {
	if header == "" {
		return "missing bearer token"
	}
	scheme, got, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "not a bearer token"
	}
	if !equalSecret(strings.TrimSpace(got), token) {
		return "wrong bearer token"
	}
	return ""
}

// --- shared plumbing ---

// equalSecret compares two secrets in constant time. Both are hashed
// first so that neither their contents nor their lengths leak through
// timing (subtle.ConstantTimeCompare returns early on a length mismatch).
func equalSecret(got, want string) bool {
	g := sha256.Sum256([]byte(got))
	x := sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], x[:]) == 1
}

// remote is the client's address as logged and rate limited.
func (s *server) remote(r *http.Request) string {
	a := clientAddr(r, s.trusted)
	if !a.IsValid() {
		return "unknown"
	}
	return a.String()
}

// rateLimit answers 429 when the client is over its limit.
func (s *server) rateLimit(w http.ResponseWriter, r *http.Request, endpoint, remote string) bool {
	if s.lim == nil {
		return true
	}
	ok, wait := s.lim.allow(limitKey(clientAddr(r, s.trusted)))
	if ok {
		return true
	}
	w.Header().Set("Retry-After", strconv.Itoa(retryAfter(wait)))
	writeError(w, http.StatusTooManyRequests, "rate limited")
	if endpoint != "api" {
		s.m.IncWebhook(endpoint, WebhookRateLimited)
	}
	// Debug only: a flood would otherwise flood the log too.
	s.log.WithFields(logrus.Fields{"endpoint": endpoint, "remote": remote}).Debug("rate limited")
	return false
}

// refuse answers 401 with reason and logs one line. reason is one of a few
// fixed strings: never a secret, a signature or a header's value.
func (s *server) refuse(w http.ResponseWriter, endpoint, remote, reason string) {
	writeError(w, http.StatusUnauthorized, reason)
	if endpoint != "api" {
		s.m.IncWebhook(endpoint, WebhookUnauthorized)
	}
	s.log.WithFields(logrus.Fields{"endpoint": endpoint, "remote": remote, "reason": reason}).Warn("request refused")
}

func allowMethod(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	writeError(w, http.StatusMethodNotAllowed, "method not allowed")
	return false
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"error":"cannot encode response"}` + "\n")
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = io.Copy(w, &buf)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func writeText(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg+"\n")
}
