package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

type gitServer struct {
	addr string
	srv  *http.Server
}

var (
	gitServersMu sync.Mutex
	gitServers   = map[string]*gitServer{} // by $WORK
)

func gitExecPath() string {
	out, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		return "/usr/lib/git-core"
	}
	return strings.TrimSpace(string(out))
}

func cmdGitServe(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: git-serve NAME")
	}
	work := ts.Getenv("WORK")
	root := filepath.Join(work, "remotes")
	bare := filepath.Join(root, args[0]+".git")
	if _, err := os.Stat(bare); err != nil {
		for _, c := range [][]string{{"init", "--bare", "--initial-branch=main", bare}, {"-C", bare, "config", "http.receivepack", "true"}} {
			if out, err := exec.Command("git", c...).CombinedOutput(); err != nil {
				ts.Fatalf("git %v: %v\n%s", c, err, out)
			}
		}
	}
	gitServersMu.Lock()
	defer gitServersMu.Unlock()
	gs := gitServers[work]
	addr := "127.0.0.1:0"
	if gs != nil {
		addr = gs.addr
	}
	ln, err := net.Listen("tcp", addr)
	ts.Check(err)
	h := &cgi.Handler{
		Path: filepath.Join(gitExecPath(), "git-http-backend"),
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"},
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	gitServers[work] = &gitServer{addr: ln.Addr().String(), srv: srv}
	ts.Setenv("GIT_URL", "http://"+ln.Addr().String()+"/"+args[0]+".git")
	ts.Defer(func() { _ = srv.Close() })
}

func cmdGitStop(ts *testscript.TestScript, neg bool, args []string) {
	gitServersMu.Lock()
	defer gitServersMu.Unlock()
	if gs := gitServers[ts.Getenv("WORK")]; gs != nil {
		_ = gs.srv.Close()
	}
}

func cmdWaitFor(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: wait-for URL SUBSTRING [TIMEOUT]")
	}
	timeout := 30 * time.Second
	if len(args) > 2 {
		d, err := time.ParseDuration(args[2])
		ts.Check(err)
		timeout = d
	}
	var last string
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest("GET", args[0], nil)
		if tok := ts.Getenv("TEND_API_TOKEN"); tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			last = string(b)
			if strings.Contains(last, args[1]) {
				return
			}
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	ts.Fatalf("%s did not show %q within %s; last answer:\n%s", args[0], args[1], timeout, last)
}

func cmdWebhook(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 {
		ts.Fatalf("usage: webhook URL SECRET BODY")
	}
	body := []byte(args[2])
	mac := hmac.New(sha256.New, []byte(args[1]))
	mac.Write(body)
	req, _ := http.NewRequest("POST", args[0], bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Tend-Signature", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	ts.Check(err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	ok := resp.StatusCode/100 == 2
	if ok == neg {
		ts.Fatalf("webhook answered %s: %s", resp.Status, b)
	}
	fmt.Fprintf(ts.Stdout(), "%s %s\n", resp.Status, b)
}

// cmdReceiver starts an HTTP server that appends every request body, one per
// line, to $WORK/received.log, and sets $RECEIVER_URL.
func cmdReceiver(ts *testscript.TestScript, neg bool, args []string) {
	path := filepath.Join(ts.Getenv("WORK"), "received.log")
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err == nil {
			fmt.Fprintf(f, "%s %s\n", r.Header.Get("Authorization"), bytes.ReplaceAll(b, []byte("\n"), []byte(" ")))
			f.Close()
		}
		mu.Unlock()
	}))
	ts.Setenv("RECEIVER_URL", srv.URL+"/notify")
	ts.Defer(srv.Close)
}
