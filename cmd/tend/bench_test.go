package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/tendhq/tend/reconcile"
	"github.com/tendhq/tend/reconcile/api"
	"github.com/tendhq/tend/reconcile/source"
)

// startSignal is a progress writer that reports when an apply starts a
// server change (the line "SERVER [0s]: ... (revision N)").
type startSignal struct {
	mu sync.Mutex
	ch chan struct{}
}

func (s *startSignal) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("(revision ")) {
		s.mu.Lock()
		if s.ch != nil {
			close(s.ch)
			s.ch = nil
		}
		s.mu.Unlock()
	}
	return len(p), nil
}

func (s *startSignal) arm() chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ch = make(chan struct{})
	return s.ch
}

// BenchmarkWebhookToApply measures the time from a signed push webhook to the
// start of the apply it causes, end to end: the HTTP side checks the
// signature and triggers, the loop fetches the new commit from a real git
// server on loopback (git http-backend), loads, plans, and starts the change
// through the process provider. It reports the median and the 90th
// percentile (target: a median under 200 ms).
func BenchmarkWebhookToApply(b *testing.B) {
	if _, err := exec.LookPath("git"); err != nil {
		b.Fatal("git is needed:", err)
	}
	work := b.TempDir()
	home := filepath.Join(work, "home")
	env := append(os.Environ(), "HOME="+home, "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=b", "GIT_AUTHOR_EMAIL=b@example.com", "GIT_COMMITTER_NAME=b", "GIT_COMMITTER_EMAIL=b@example.com")
	git := func(dir string, args ...string) {
		cmd := exec.Command("git", args...)
		cmd.Dir, cmd.Env = dir, env
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	root := filepath.Join(work, "remotes")
	git(work, "init", "-q", "--bare", "--initial-branch=main", filepath.Join(root, "fleet.git"))
	git(filepath.Join(root, "fleet.git"), "config", "http.receivepack", "true")
	gitSrv := httptest.NewServer(&cgi.Handler{Path: filepath.Join(gitExecPath(), "git-http-backend"),
		Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"}})
	defer gitSrv.Close()
	url := gitSrv.URL + "/fleet.git"
	clone := filepath.Join(work, "clone")
	git(work, "init", "-q", "--initial-branch=main", clone)
	write := func(i int) {
		src := fmt.Sprintf(`provider "process" "local" {
  stop_timeout = "1s"
}

server "sleeper" {
  version = "1.0.0"
  command = ["/bin/sleep", "3600"]
  env     = { GENERATION = "%d" }
  rollout {
    verify_for        = "0s"
    progress_deadline = "5s"
  }
}
`, i)
		if err := os.WriteFile(filepath.Join(clone, "main.hcl"), []byte(src), 0o644); err != nil {
			b.Fatal(err)
		}
		git(clone, "add", "-A")
		git(clone, "commit", "-q", "-m", fmt.Sprint(i))
		git(clone, "push", "-q", url, "main")
	}
	write(0)

	stateDir := filepath.Join(work, "state")
	e, stopBench := benchEngine(b, stateDir)
	defer stopBench()
	log := e.Log
	sig := &startSignal{}
	e.Progress = sig

	ref, _ := source.ParseRef("main")
	g, err := source.NewGit(source.Options{URL: url, Ref: ref, CacheDir: filepath.Join(stateDir, "git")})
	if err != nil {
		b.Fatal(err)
	}
	loop := &reconcile.Loop{Engine: e, Fetcher: &gitFetcher{git: g, desc: url}, Log: log, Poll: time.Hour}
	const secret = "bench-secret"
	hooks := httptest.NewServer(api.NewServer(api.Config{GenericSecret: secret, TrackedRef: "refs/heads/main", RateLimit: -1, Log: log},
		&backend{loop: loop, eng: e}, nil))
	defer hooks.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	first := sig.arm()
	go func() { defer close(done); _ = loop.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-first
	waitIdle := func() {
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if st := loop.Status(); st.LastResult != "" && !st.LastPass.IsZero() && st.Revision == st.Applied {
				if st.LastResult == reconcile.PassApplied || st.LastResult == reconcile.PassNoChange {
					return
				}
			}
		}
		b.Fatal("the loop did not settle")
	}
	waitIdle()

	body := []byte(`{"ref":"refs/heads/main"}`)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	signature := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	var lat []time.Duration
	i := 0
	for b.Loop() {
		b.StopTimer()
		i++
		write(i)
		started := sig.arm()
		b.StartTimer()
		t0 := time.Now()
		req, _ := http.NewRequest("POST", hooks.URL+"/hooks/generic", bytes.NewReader(body))
		req.Header.Set("X-Tend-Signature", signature)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusAccepted {
			b.Fatalf("webhook: %v %v", err, resp)
		}
		resp.Body.Close()
		select {
		case <-started:
		case <-time.After(30 * time.Second):
			b.Fatal("no apply started")
		}
		lat = append(lat, time.Since(t0))
		b.StopTimer()
		waitIdle()
		b.StartTimer()
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*9/10].Microseconds())/1000, "p90-ms")
}
