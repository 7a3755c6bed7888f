package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// reloader re-reads the configuration on SIGHUP or POST /admin/reload.
// Rate limiting changes at once; host, port, data_dir and workers are
// taken only at start, so a change of one of them makes /health answer 503
// ("restart to apply it") until the process restarts, and a config that
// does not load does too, while the server keeps serving with the
// configuration it has. A reloader that a supervisor (tend) drives can
// then tell a reload that took from one that needs a restart.
type reloader struct {
	load func() (Config, error)

	mu      sync.Mutex
	problem string // why the running config is not the file's; "" when it is
	reloads int
}

// reload loads the configuration again and applies what it can to a.
func (a *app) reload() error {
	r := a.reloader
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reloads++
	cfg, err := r.load()
	if err != nil {
		r.problem = "config reload failed: " + err.Error()
		a.logger.Error("config reload failed; serving with the configuration loaded before", "err", err)
		return err
	}
	if abs, err := filepath.Abs(cfg.DataDir); err == nil {
		cfg.DataDir = abs
	}
	var needRestart []string
	if cfg.Host != a.cfg.Host {
		needRestart = append(needRestart, fmt.Sprintf("host changed from %s to %s", a.cfg.Host, cfg.Host))
	}
	if cfg.Port != a.cfg.Port && a.cfg.Port != 0 {
		needRestart = append(needRestart, fmt.Sprintf("port changed from %d to %d", a.cfg.Port, cfg.Port))
	}
	if cfg.DataDir != a.cfg.DataDir {
		needRestart = append(needRestart, fmt.Sprintf("data_dir changed from %s to %s", a.cfg.DataDir, cfg.DataDir))
	}
	if cfg.Workers != a.cfg.Workers {
		needRestart = append(needRestart, fmt.Sprintf("workers changed from %d to %d", a.cfg.Workers, cfg.Workers))
	}
	var lim *rateLimiter
	if cfg.RateLimiting.Enabled {
		lim = newRateLimiter(cfg.RateLimiting.MaxRequests, time.Duration(cfg.RateLimiting.Window)*time.Second)
	}
	a.limiter.Store(lim)
	a.rateLimiting.Store(cfg.RateLimiting.String())
	r.problem = ""
	if len(needRestart) > 0 {
		r.problem = strings.Join(needRestart, "; ") + ": restart to apply it"
		a.logger.Warn("config reloaded in part; the rest needs a restart", "rate_limiting", cfg.RateLimiting.String(), "restart_needed", strings.Join(needRestart, "; "))
		return nil
	}
	a.logger.Info("config reloaded", "rate_limiting", cfg.RateLimiting.String())
	return nil
}

// state returns the reload problem and the number of reloads.
func (r *reloader) state() (string, int) {
	if r == nil {
		return "", 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.problem, r.reloads
}

// serveReload answers POST /admin/reload: 200 when the configuration was
// applied whole, 500 when it did not load or needs a restart.
func (a *app) serveReload(w http.ResponseWriter, _ *http.Request) {
	if a.reloader == nil {
		writeJSON(w, http.StatusNotImplemented, map[string]any{"status": "failing", "reason": "this process has no config to reload"})
		return
	}
	_ = a.reload()
	if problem, _ := a.reloader.state(); problem != "" {
		writeJSON(w, http.StatusInternalServerError, map[string]any{"status": "failing", "reason": problem})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "reloaded", "rate_limiting": a.rateLimiting.Load()})
}
