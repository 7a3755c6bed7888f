package dashboard

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Sessions: the API token is entered once; the cookie then holds a random
// session id and its HMAC under a key made at start, never the token.
const (
	cookieName  = "tend_session"
	sessionTTL  = 12 * time.Hour
	maxSessions = 1024
)

type session struct {
	csrf    string
	expires time.Time
	flash   string // the outcome of the last action, shown once
}

type sessions struct {
	mu  sync.Mutex
	key []byte
	m   map[string]*session
	now func() time.Time
}

func newSessions(now func() time.Time) *sessions {
	return &sessions{key: randomBytes(32), m: map[string]*session{}, now: now}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("dashboard: no randomness: " + err.Error())
	}
	return b
}

func (s *sessions) sign(id string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(id))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// create starts a session and sets its cookie.
func (s *sessions) create(w http.ResponseWriter, r *http.Request) {
	id := base64.RawURLEncoding.EncodeToString(randomBytes(32))
	now := s.now()
	s.mu.Lock()
	if len(s.m) >= maxSessions {
		s.sweep(now)
	}
	if len(s.m) >= maxSessions {
		// Still full: drop the session that ends first.
		var oldest string
		for k, v := range s.m {
			if oldest == "" || v.expires.Before(s.m[oldest].expires) {
				oldest = k
			}
		}
		delete(s.m, oldest)
	}
	s.m[id] = &session{csrf: base64.RawURLEncoding.EncodeToString(randomBytes(32)), expires: now.Add(sessionTTL)}
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: id + "." + s.sign(id), Path: "/",
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
		MaxAge: int(sessionTTL.Seconds()),
	})
}

func (s *sessions) sweep(now time.Time) {
	for k, v := range s.m {
		if now.After(v.expires) {
			delete(s.m, k)
		}
	}
}

// get returns the request's session id and a copy of the session, or "".
func (s *sessions) get(r *http.Request) (string, session) {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return "", session{}
	}
	id, mac, ok := strings.Cut(c.Value, ".")
	if !ok || !hmac.Equal([]byte(mac), []byte(s.sign(id))) {
		return "", session{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.m[id]
	if ss == nil {
		return "", session{}
	}
	if s.now().After(ss.expires) {
		delete(s.m, id)
		return "", session{}
	}
	return id, *ss
}

// takeFlash returns the session's flash and clears it.
func (s *sessions) takeFlash(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ss := s.m[id]; ss != nil {
		f := ss.flash
		ss.flash = ""
		return f
	}
	return ""
}

func (s *sessions) setFlash(id, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ss := s.m[id]; ss != nil {
		ss.flash = msg
	}
}

// end forgets the session and clears its cookie.
func (s *sessions) end(w http.ResponseWriter, r *http.Request, id string) {
	s.mu.Lock()
	delete(s.m, id)
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil, MaxAge: -1})
}

// equalSecret compares two secrets in constant time, lengths included.
func equalSecret(got, want string) bool {
	g := sha256.Sum256([]byte(got))
	x := sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], x[:]) == 1
}

// sameOrigin reports whether a POST comes from a page of this dashboard:
// its Origin (or, without one, its Referer) names the host it was sent to,
// and Sec-Fetch-Site, when sent, says same-origin. A request with neither
// Origin nor Referer is refused: every browser sends one on a form POST.
func sameOrigin(r *http.Request) bool {
	if sfs := r.Header.Get("Sec-Fetch-Site"); sfs != "" && sfs != "same-origin" {
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" || o == "null" {
		o = r.Header.Get("Referer")
	}
	if o == "" {
		return false
	}
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	return strings.EqualFold(u.Host, r.Host)
}
