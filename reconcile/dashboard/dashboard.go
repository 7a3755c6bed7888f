package dashboard

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/tendhq/tend/reconcile"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// ContentSecurityPolicy is sent with every answer: nothing but this
// dashboard's own files, no inline script or style, no framing.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"

// Options configure New.
type Options struct {
	// Token is the API token (TEND_API_TOKEN). Empty: the dashboard is
	// read-only and offers no action at all.
	Token string
	Log   *logrus.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Handler serves the dashboard; see the package comment for its routes.
type Handler struct {
	data  Data
	token string
	log   *logrus.Logger
	now   func() time.Time
	ss    *sessions
	tmpl  *template.Template
	mux   *http.ServeMux
}

// New returns the dashboard over d.
func New(d Data, opts Options) *Handler {
	h := &Handler{data: d, token: opts.Token, log: opts.Log, now: opts.Now}
	if h.log == nil {
		h.log = logrus.StandardLogger()
	}
	if h.now == nil {
		h.now = time.Now
	}
	h.ss = newSessions(h.now)
	h.tmpl = template.Must(template.New("").Funcs(template.FuncMap{
		"ago":        func(t time.Time) string { return ago(t, h.now()) },
		"stamp":      stamp,
		"size":       reconcile.HumanBytes,
		"dur":        func(a, b time.Time) string { return durText(a, b) },
		"dash":       orDash,
		"redact":     func(s string) string { return h.data.Redact(s) },
		"pathEscape": pathEscape,
	}).ParseFS(templateFS, "templates/*.html"))
	static, _ := fs.Sub(staticFS, "static")
	files := http.FileServerFS(static)
	m := http.NewServeMux()
	m.HandleFunc("GET /{$}", h.fleetPage)
	m.HandleFunc("GET /fragment/fleet", h.fleetFragment)
	m.HandleFunc("GET /servers/{name}", h.serverPage)
	m.HandleFunc("GET /fragment/servers/{name}", h.serverFragment)
	m.HandleFunc("GET /events", h.events)
	m.Handle("GET /ui/", http.StripPrefix("/ui/", files))
	m.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		r.URL.Path = "/favicon.svg"
		files.ServeHTTP(w, r)
	})
	m.HandleFunc("POST /login", h.login)
	m.HandleFunc("POST /logout", h.logout)
	m.HandleFunc("POST /actions/{action}", h.action)
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, r, http.StatusNotFound, "There is no such page.")
	})
	h.mux = m
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", ContentSecurityPolicy)
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Cache-Control", "no-store")
	h.mux.ServeHTTP(w, r)
}

// page is what every page template gets.
type page struct {
	Title    string
	Fragment string // the URL of the live part, for the script
	Actions  bool   // TEND_API_TOKEN is set
	Session  bool   // signed in
	CSRF     string
	Flash    string
	Daemon   reconcile.LoopStatus
	Fleet    *fleetView
	Server   *serverView
	Error    string
}

func (h *Handler) newPage(w http.ResponseWriter, r *http.Request, title string) *page {
	p := &page{Title: title, Actions: h.token != ""}
	if id, s := h.ss.get(r); id != "" && p.Actions {
		p.Session, p.CSRF = true, s.csrf
		p.Flash = h.ss.takeFlash(id)
	}
	return p
}

func (h *Handler) fleetView(ctx context.Context, r *http.Request) (*fleetView, error) {
	f, err := h.data.Fleet(ctx)
	if err != nil {
		return nil, err
	}
	q := r.URL.Query()
	flt := filter{Provider: clip(q.Get("provider")), Host: clip(q.Get("host")), State: clip(q.Get("state"))}
	return newFleetView(f, flt, h.data.Redact, h.now()), nil
}

func clip(s string) string {
	if len(s) > 256 {
		return s[:256]
	}
	return s
}

func (h *Handler) fleetPage(w http.ResponseWriter, r *http.Request) {
	v, err := h.fleetView(r.Context(), r)
	if err != nil {
		h.backendError(w, r, err)
		return
	}
	p := h.newPage(w, r, "Fleet")
	p.Fleet, p.Daemon = v, v.Daemon
	p.Fragment = "/fragment/fleet"
	h.render(w, http.StatusOK, "fleet", p)
}

func (h *Handler) fleetFragment(w http.ResponseWriter, r *http.Request) {
	v, err := h.fleetView(r.Context(), r)
	if err != nil {
		h.backendError(w, r, err)
		return
	}
	p := h.newPage(w, r, "Fleet")
	p.Fleet, p.Daemon = v, v.Daemon
	h.render(w, http.StatusOK, "fleet-live", p)
}

func (h *Handler) serverData(w http.ResponseWriter, r *http.Request) (*page, bool) {
	name := r.PathValue("name")
	if len(name) > 256 {
		h.fail(w, r, http.StatusNotFound, "There is no such server.")
		return nil, false
	}
	d, err := h.data.Server(r.Context(), name)
	if errors.Is(err, ErrUnknownServer) {
		h.fail(w, r, http.StatusNotFound, "There is no such server.")
		return nil, false
	}
	if err != nil {
		h.backendError(w, r, err)
		return nil, false
	}
	p := h.newPage(w, r, name)
	p.Server, p.Daemon = newServerView(name, d, h.data.Redact, h.now()), d.Daemon
	p.Fragment = "/fragment/servers/" + pathEscape(name)
	return p, true
}

func (h *Handler) serverPage(w http.ResponseWriter, r *http.Request) {
	if p, ok := h.serverData(w, r); ok {
		h.render(w, http.StatusOK, "server", p)
	}
}

func (h *Handler) serverFragment(w http.ResponseWriter, r *http.Request) {
	if p, ok := h.serverData(w, r); ok {
		h.render(w, http.StatusOK, "server-live", p)
	}
}

// render executes a template into a buffer first, so a failure answers 500
// instead of half a page.
func (h *Handler) render(w http.ResponseWriter, status int, name string, p *page) {
	var buf bytes.Buffer
	if err := h.tmpl.ExecuteTemplate(&buf, name, p); err != nil {
		h.log.WithFields(logrus.Fields{"endpoint": "dashboard", "template": name, "error": err.Error()}).Error("dashboard page failed")
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	p := h.newPage(w, r, http.StatusText(status))
	p.Error = msg
	h.render(w, status, "error", p)
}

// backendError answers a failed read; the error's text goes to the log
// only (it may name paths the viewer has no need to see).
func (h *Handler) backendError(w http.ResponseWriter, r *http.Request, err error) {
	h.log.WithFields(logrus.Fields{"endpoint": "dashboard", "path": r.URL.Path, "error": err.Error()}).Error("dashboard read failed")
	h.fail(w, r, http.StatusInternalServerError, "The status could not be read; the daemon's log says why.")
}

// --- sign in and out ---

func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	if h.token == "" {
		h.fail(w, r, http.StatusForbidden, actionsOff)
		return
	}
	if !sameOrigin(r) {
		h.refuse(w, r, "cross-origin request")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil || !equalSecret(r.PostFormValue("token"), h.token) {
		h.refuse(w, r, "wrong API token")
		return
	}
	if id, _ := h.ss.get(r); id != "" {
		h.ss.end(w, r, id)
	}
	h.ss.create(w, r)
	h.log.WithFields(logrus.Fields{"endpoint": "dashboard", "remote": r.RemoteAddr}).Info("dashboard session started")
	http.Redirect(w, r, back(r), http.StatusSeeOther)
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	id, ok := h.checkPost(w, r)
	if !ok {
		return
	}
	h.ss.end(w, r, id)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// actionsOff is what the dashboard says when TEND_API_TOKEN is not set.
const actionsOff = "Actions are off: start tend run with TEND_API_TOKEN set in its environment to enable them. The dashboard is read-only."

// refuse answers 403 and logs one line with a fixed reason.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, reason string) {
	h.log.WithFields(logrus.Fields{"endpoint": "dashboard", "remote": r.RemoteAddr, "reason": reason}).Warn("request refused")
	h.fail(w, r, http.StatusForbidden, "Refused: "+reason+".")
}

// checkPost refuses a POST unless actions are on, it is same-origin, it
// comes with a session and that session's CSRF token.
func (h *Handler) checkPost(w http.ResponseWriter, r *http.Request) (string, bool) {
	if h.token == "" {
		h.fail(w, r, http.StatusForbidden, actionsOff)
		return "", false
	}
	if !sameOrigin(r) {
		h.refuse(w, r, "cross-origin request")
		return "", false
	}
	id, s := h.ss.get(r)
	if id == "" {
		h.refuse(w, r, "sign in with the API token first")
		return "", false
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil || !equalSecret(r.PostFormValue("csrf"), s.csrf) {
		h.refuse(w, r, "missing or wrong CSRF token")
		return "", false
	}
	return id, true
}

// back is where a form returns to: the page it names, if it is one of ours.
func back(r *http.Request) string {
	to := r.PostFormValue("back")
	if to == "/" || (strings.HasPrefix(to, "/servers/") && !strings.ContainsAny(to, "\\?#") && !strings.HasPrefix(to, "//")) {
		return to
	}
	return "/"
}

// --- actions ---

func (h *Handler) action(w http.ResponseWriter, r *http.Request) {
	id, ok := h.checkPost(w, r)
	if !ok {
		return
	}
	act, server := r.PathValue("action"), r.PostFormValue("server")
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Minute)
	defer cancel()
	var msg string
	var err error
	switch act {
	case "sync":
		h.data.Trigger("dashboard")
		msg = "Sync requested: a pass runs now."
	case "retry", "backup", "rollback":
		if server == "" || len(server) > 256 {
			h.fail(w, r, http.StatusBadRequest, "Which server? The form names none.")
			return
		}
		var to int64
		if act == "rollback" {
			to, err = strconv.ParseInt(r.PostFormValue("revision"), 10, 64)
			if err != nil || to <= 0 {
				h.fail(w, r, http.StatusBadRequest, "Roll back to which revision? The form names none.")
				return
			}
		}
		kind := map[string]string{"retry": reconcile.JobRetry, "backup": reconcile.JobBackup, "rollback": reconcile.JobRollback}[act]
		msg, err = h.data.Do(ctx, kind, server, to)
	case "approve", "reject":
		note := strings.TrimSpace(r.PostFormValue("note"))
		if server == "" || len(server) > 256 || len(note) > 1000 {
			h.fail(w, r, http.StatusBadRequest, "Which server? The form names none, or its note is over 1,000 bytes.")
			return
		}
		if act == "reject" && note == "" {
			h.fail(w, r, http.StatusBadRequest, "A rejection needs a reason: write it in the note.")
			return
		}
		msg, err = h.data.Decide(ctx, server, clip(r.PostFormValue("revision")), "dashboard ("+r.RemoteAddr+")", note, act == "reject")
	default:
		h.fail(w, r, http.StatusNotFound, "There is no such action.")
		return
	}
	fields := logrus.Fields{"endpoint": "dashboard", "action": act, "server": server, "remote": r.RemoteAddr}
	if err != nil {
		msg = fmt.Sprintf("%s of %s failed: %s", act, server, h.data.Redact(err.Error()))
		fields["error"] = h.data.Redact(err.Error())
		h.log.WithFields(fields).Warn("dashboard action failed")
	} else {
		h.log.WithFields(fields).Info("dashboard action")
	}
	h.ss.setFlash(id, msg)
	http.Redirect(w, r, back(r), http.StatusSeeOther)
}

// --- live updates ---

// Bounds of the event stream.
const (
	eventBuffer  = 32
	heartbeat    = 20 * time.Second
	writeTimeout = 10 * time.Second
)

func (h *Handler) events(w http.ResponseWriter, r *http.Request) {
	ch, cancel, ok := h.data.Subscribe(eventBuffer)
	if !ok {
		w.Header().Set("Retry-After", "10")
		http.Error(w, "too many viewers", http.StatusServiceUnavailable)
		return
	}
	defer cancel()
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	write := func(s string) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := w.Write([]byte(s)); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !write("retry: 3000\n: connected\n\n") {
		return
	}
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
			if !write(": ping\n\n") {
				return
			}
		case ev, open := <-ch:
			if !open {
				return // fell behind: dropped; the browser reconnects
			}
			ev.Message = h.data.Redact(ev.Message)
			b, err := json.Marshal(ev)
			if err != nil || !write("event: tend\ndata: "+string(b)+"\n\n") {
				return
			}
		}
	}
}
