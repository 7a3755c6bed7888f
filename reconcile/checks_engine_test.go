package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/memory"
	"github.com/tendhq/tend/reconcile/contract"
)

// notesBuilds are the tools of each version of a stand-in for mcp-notes:
// 1.1.0 lost search_notes (its tools check fails), 1.2.0 adds count_notes
// (compatible), 1.3.0 removes delete_note under a minor bump (its checks
// pass, its contract breaks).
var notesBuilds = map[string][]string{
	"1.0.0": {"add_note", "get_note", "search_notes", "delete_note"},
	"1.1.0": {"add_note", "get_note", "delete_note"},
	"1.2.0": {"add_note", "get_note", "search_notes", "delete_note", "count_notes"},
	"1.3.0": {"add_note", "get_note", "search_notes"},
}

// notesReplicas stands in for the processes the memory provider does not
// run: on 127.0.0.1:port+i it answers as the version that the provider
// says replica i of notes runs, with an MCP server at /mcp (the tools of
// notesBuilds) and /health. It records which versions answered MCP
// sessions on which replica.
type notesReplicas struct {
	mem *memory.Provider

	mu       sync.Mutex
	builds   map[string]*mcp.Server
	answered map[string]int // "replica@version" → MCP sessions
}

func newNotesReplicas(mem *memory.Provider) *notesReplicas {
	n := &notesReplicas{mem: mem, builds: map[string]*mcp.Server{}, answered: map[string]int{}}
	for v, tools := range notesBuilds {
		srv := mcp.NewServer(&mcp.Implementation{Name: "notes", Version: v}, nil)
		for _, name := range tools {
			srv.AddTool(&mcp.Tool{
				Name:        name,
				InputSchema: json.RawMessage(`{"type":"object","properties":{"q":{"type":"string"}}}`),
			}, func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "ok"}}}, nil
			})
		}
		n.builds[v] = srv
	}
	return n
}

// version is what replica runs in the provider; "" when it does not run.
func (n *notesReplicas) version(replica int) string {
	for _, in := range n.mem.Observe(context.Background(), providers.ObserveRequest{ManagedBy: "test", Server: "notes"}).Instances {
		if in.Replica == replica && in.State == providers.StateRunning {
			return in.Version
		}
	}
	return ""
}

func (n *notesReplicas) handler(replica int) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/mcp", mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server {
		v := n.version(replica)
		n.mu.Lock()
		defer n.mu.Unlock()
		n.answered[fmt.Sprintf("%d@%s", replica, v)]++
		return n.builds[v]
	}, nil))
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		if n.version(replica) == "" {
			http.Error(w, "not running", http.StatusServiceUnavailable)
		}
	})
	return mux
}

// answeredAs reports whether replica ever answered an MCP session as version.
func (n *notesReplicas) answeredAs(replica int, version string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.answered[fmt.Sprintf("%d@%s", replica, version)] > 0
}

// serve serves replica's handler on l until the test ends.
func (n *notesReplicas) serve(t *testing.T, replica int, l net.Listener) {
	t.Helper()
	srv := &http.Server{Handler: n.handler(replica), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })
}

// consecutivePorts opens loopback listeners on n consecutive ports: the
// ports of replicas 0 to n-1 of a server with one port on the memory
// provider.
func consecutivePorts(t *testing.T, n int) []net.Listener {
	t.Helper()
	for range 50 {
		first, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		base := first.Addr().(*net.TCPAddr).Port
		ls := []net.Listener{first}
		for i := 1; i < n; i++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+i))
			if err != nil {
				break
			}
			ls = append(ls, l)
		}
		if len(ls) == n {
			return ls
		}
		for _, l := range ls {
			l.Close()
		}
	}
	t.Fatalf("found no %d consecutive free ports", n)
	return nil
}

// startLog is the memory provider, recording every replica start as
// "replica@version".
type startLog struct {
	*memory.Provider
	mu     sync.Mutex
	starts []string
}

func (p *startLog) StartReplica(ctx context.Context, req providers.StartRequest) providers.StartResponse {
	p.mu.Lock()
	p.starts = append(p.starts, fmt.Sprintf("%d@%s", req.Replica, req.Desired.Server.Version))
	p.mu.Unlock()
	return p.Provider.StartReplica(ctx, req)
}

// take returns the starts since the last take.
func (p *startLog) take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.starts
	p.starts = nil
	return out
}

// notesFleet is one notes server of replicas replicas on port, with a
// health check every 100ms, a tools check every 200ms and the body of its
// rollout block.
func notesFleet(port, replicas int, contractMode, rollout string) string {
	return fmt.Sprintf(`
provider "process" "mem" {}

variable "v" {
  default = "1.0.0"
}

server "notes" {
  version  = var.v
  command  = ["./notes"]
  replicas = %d
  port     = %d
  contract = %q
  check "health" {
    http {
      path = "/health"
    }
    interval = "100ms"
    timeout  = "100ms"
  }
  check "tools" {
    mcp {
      tools         = ["add_note", "search_notes"]
      check_version = true
    }
    interval = "200ms"
    timeout  = "200ms"
  }
  rollout {
%s
  }
}
`, replicas, port, contractMode, rollout)
}

// newNotesHarness is a harness whose fleet is notesFleet, on a provider
// that records its starts, with notes answering on its ports.
func newNotesHarness(t *testing.T, replicas int, contractMode, rollout string) (*harness, *notesReplicas, *startLog) {
	t.Helper()
	ls := consecutivePorts(t, replicas)
	h, n, log := notesHarnessAt(t, ls[0].Addr().(*net.TCPAddr).Port, replicas, contractMode, rollout)
	for i, l := range ls {
		n.serve(t, i, l)
	}
	return h, n, log
}

// notesHarnessAt is newNotesHarness with notes on port, where the test
// serves the replicas itself.
func notesHarnessAt(t *testing.T, port, replicas int, contractMode, rollout string) (*harness, *notesReplicas, *startLog) {
	t.Helper()
	h := newHarness(t)
	if err := os.WriteFile(filepath.Join(h.dir, "main.hcl"), []byte(notesFleet(port, replicas, contractMode, rollout)), 0o644); err != nil {
		t.Fatal(err)
	}
	log := &startLog{Provider: h.mem}
	reg := providers.NewRegistry()
	reg.Add("process.mem", log)
	h.eng.Registry = reg
	return h, newNotesReplicas(h.mem), log
}

// rolling is the start of a rollout block: one replica at a time.
const rolling = `    strategy          = "rolling"
    max_unavailable   = 1`

func messageOf(res *ApplyResult, server string) string {
	for _, s := range res.Servers {
		if s.Server == server {
			return s.Message
		}
	}
	return ""
}

// A build whose MCP server answers without a declared tool fails after the
// same answer three times in a row (rollout.fail_after's default), not at
// the 1m progress_deadline, and the message says what the server answered.
// Issue 15, item 7.
func TestEngineDefiniteCheckFailureFailsFast(t *testing.T) {
	h, _, _ := newNotesHarness(t, 2, "warn", rolling+`
    verify_for        = "300ms"
    progress_deadline = "1m"`)
	if _, res := h.apply(); outcome(res, "notes") != ResultVerified {
		t.Fatalf("create: %+v", res.Servers)
	}

	h.vars["v"] = "1.1.0"
	began := time.Now()
	_, res := h.apply()
	took := time.Since(began)
	msg := messageOf(res, "notes")
	if outcome(res, "notes") != ResultRolledBack {
		t.Fatalf("outcome %s: %s", outcome(res, "notes"), msg)
	}
	// Three probes 200ms apart, the rollback and its verification.
	if took > 15*time.Second {
		t.Errorf("the apply took %s; a definite answer must not wait for the 1m deadline", took)
	}
	want := `replica 0 failed verification: check "tools" on replica 0 failed the same way 3 times in a row; not waiting for the 1m deadline: mcp http://127.0.0.1:`
	if !strings.HasPrefix(msg, want) || !strings.Contains(msg, `/mcp: missing tool "search_notes"; the server offers "add_note", "delete_note", "get_note"`) {
		t.Errorf("message:\n%s\nwant it to start %q and name the missing tool", msg, want)
	}
	if strings.Contains(msg, "did not pass for 0s") {
		t.Errorf("message speaks of passing for 0s: %s", msg)
	}
	if v := h.running("notes"); len(v) != 2 {
		t.Errorf("running replicas after the rollback: %v", v)
	}
}

// With fail_after = 0 the same build waits for the deadline, and the
// message of a step verified without verify_for does not say "for 0s".
func TestEngineFailAfterZeroWaitsForTheDeadline(t *testing.T) {
	h, _, _ := newNotesHarness(t, 2, "warn", rolling+`
    verify_for        = "300ms"
    progress_deadline = "2s"
    fail_after        = 0`)
	if _, res := h.apply(); outcome(res, "notes") != ResultVerified {
		t.Fatalf("create: %+v", res.Servers)
	}
	h.vars["v"] = "1.1.0"
	began := time.Now()
	_, res := h.apply()
	msg := messageOf(res, "notes")
	if outcome(res, "notes") != ResultRolledBack {
		t.Fatalf("outcome %s: %s", outcome(res, "notes"), msg)
	}
	if took := time.Since(began); took < 2*time.Second {
		t.Errorf("the apply took %s, less than the 2s deadline", took)
	}
	if !strings.HasPrefix(msg, `replica 0 failed verification: checks did not pass within the 2s deadline: check "tools" on replica 0: mcp `) {
		t.Errorf("message: %s", msg)
	}
}

// A replica that is slow to start (connections refused, then 503, then
// the right answers) still passes: only a definite answer ends
// verification early.
func TestEngineSlowStartStillPasses(t *testing.T) {
	// Nothing listens on the replica's port at first.
	ls := consecutivePorts(t, 1)
	port := ls[0].Addr().(*net.TCPAddr).Port
	ls[0].Close()
	h, n, _ := notesHarnessAt(t, port, 1, "warn", rolling+`
    verify_for        = "300ms"
    progress_deadline = "30s"`)
	const refusing, starting = 1200 * time.Millisecond, 600 * time.Millisecond
	began := time.Now()
	listening := make(chan error, 1)
	time.AfterFunc(refusing, func() {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			listening <- err
			return
		}
		ready := time.Now().Add(starting)
		inner := n.handler(0)
		srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if time.Now().Before(ready) {
				http.Error(w, "starting", http.StatusServiceUnavailable)
				return
			}
			inner.ServeHTTP(w, r)
		})}
		go func() { _ = srv.Serve(l) }()
		t.Cleanup(func() { srv.Close() })
		listening <- nil
	})
	_, res := h.apply()
	if err := <-listening; err != nil {
		t.Fatalf("listening on the replica's port: %v", err)
	}
	if outcome(res, "notes") != ResultVerified {
		t.Fatalf("outcome %s: %s", outcome(res, "notes"), messageOf(res, "notes"))
	}
	if took := time.Since(began); took < refusing+starting {
		t.Errorf("verified after %s, before the replica answered", took)
	}
	if !n.answeredAs(0, "1.0.0") {
		t.Error("the replica never answered an MCP session")
	}
}

// A rolling or canary update whose build breaks the API contract fails on
// the replica it changed first, before the others go down: they never run
// the new build. Issue 15, item 8.
func TestEngineContractCheckedOnTheFirstReplicas(t *testing.T) {
	for _, tc := range []struct {
		name, rollout string
		first, second string // what the progress says of the first and second steps
	}{
		{"rolling", rolling, "rolling: replicas 0 of 3", "rolling: replicas 1 of 3"},
		{"canary", `    strategy          = "canary"
    canary_steps      = [1]`, "canary: 1 of 3 replicas on 1.3.0", "canary: 3 of 3 replicas on 1.3.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, n, log := newNotesHarness(t, 3, "enforce", tc.rollout+`
    verify_for        = "200ms"
    progress_deadline = "30s"`)
			var progress syncBuffer
			h.eng.Progress = &progress
			if _, res := h.apply(); outcome(res, "notes") != ResultVerified {
				t.Fatalf("create: %+v", res.Servers)
			}
			log.take()

			// A compatible release goes to every replica; the contract
			// recorded is the one its first replica gave.
			h.vars["v"] = "1.2.0"
			if _, res := h.apply(); outcome(res, "notes") != ResultVerified {
				t.Fatalf("1.2.0: %s: %s", outcome(res, "notes"), messageOf(res, "notes"))
			}
			if got := strings.Join(log.take(), " "); got != "0@1.2.0 1@1.2.0 2@1.2.0" {
				t.Errorf("starts of 1.2.0: %s", got)
			}
			if v, tools := recordedContract(t, h); v != "1.2.0" || !slices.Contains(tools, "count_notes") {
				t.Errorf("recorded contract: version %s, tools %v; want 1.2.0's", v, tools)
			}

			// 1.3.0 passes its checks and breaks the contract under a
			// minor bump.
			h.vars["v"] = "1.3.0"
			before := len(progress.String())
			_, res := h.apply()
			msg := messageOf(res, "notes")
			if outcome(res, "notes") != ResultRolledBack {
				t.Fatalf("1.3.0: outcome %s: %s", outcome(res, "notes"), msg)
			}
			for _, want := range []string{
				"replica 0, changed first, broke the API contract, so replicas 1, 2 were not changed: contract: 1.2.0 -> 1.3.0 is a minor bump",
				`tool "delete_note" was removed`,
				"rolled back to revision",
			} {
				if !strings.Contains(msg, want) {
					t.Errorf("message lacks %q:\n%s", want, msg)
				}
			}
			said := progress.String()[before:]
			if !strings.Contains(said, tc.first) || strings.Contains(said, tc.second) {
				t.Errorf("progress of 1.3.0:\n%s\nwant %q and not %q", said, tc.first, tc.second)
			}
			if got := strings.Join(log.take(), " "); got != "0@1.3.0 0@1.2.0" {
				t.Errorf("starts: %s, want replica 0 on 1.3.0 and back on 1.2.0 alone", got)
			}
			for _, r := range []int{1, 2} {
				if n.answeredAs(r, "1.3.0") {
					t.Errorf("replica %d answered as 1.3.0", r)
				}
			}
			if !n.answeredAs(0, "1.3.0") {
				t.Error("replica 0 never answered as 1.3.0: the test did not exercise the new build")
			}
			for r := range 3 {
				if v := n.version(r); v != "1.2.0" {
					t.Errorf("replica %d runs %q after the rollback, want 1.2.0", r, v)
				}
			}
			if c := h.plan().Change("notes"); c.Action != ActionHeld {
				t.Errorf("1.3.0 after the failure: %s, want held", c.Action)
			}
		})
	}
}

// Under contract = "warn" the same release goes through: the report is a
// warning said once (at the first replica; not again at the end), and the
// contract recorded is the new release's.
func TestEngineContractWarnedOnce(t *testing.T) {
	h, _, log := newNotesHarness(t, 3, "warn", rolling+`
    verify_for        = "200ms"
    progress_deadline = "30s"`)
	var progress syncBuffer
	h.eng.Progress = &progress
	if _, res := h.apply(); outcome(res, "notes") != ResultVerified {
		t.Fatalf("create: %+v", res.Servers)
	}
	log.take()
	h.vars["v"] = "1.3.0"
	if _, res := h.apply(); outcome(res, "notes") != ResultVerified {
		t.Fatalf("1.3.0: %s: %s", outcome(res, "notes"), messageOf(res, "notes"))
	}
	if got := strings.Join(log.take(), " "); got != "0@1.3.0 1@1.3.0 2@1.3.0" {
		t.Errorf("starts of 1.3.0: %s", got)
	}
	said := progress.String()
	if n := strings.Count(said, "warning: contract: 1.0.0 -> 1.3.0 is a minor bump"); n != 1 {
		t.Errorf("the contract warning was said %d times, want once:\n%s", n, said)
	}
	if i, j := strings.Index(said, "warning: contract"), strings.Index(said, "rolling: replicas 1 of 3"); i < 0 || j < 0 || i > j {
		t.Errorf("the warning does not come before the second replica is changed:\n%s", said)
	}
	if v, tools := recordedContract(t, h); v != "1.3.0" || slices.Contains(tools, "delete_note") {
		t.Errorf("recorded contract: version %s, tools %v; want 1.3.0's", v, tools)
	}
}

// recordedContract is the version and tool names of the last verified
// contract of notes.
func recordedContract(t *testing.T, h *harness) (string, []string) {
	t.Helper()
	rc, err := h.eng.Store.LastVerifiedContract("notes")
	if err != nil {
		t.Fatal(err)
	}
	var c contract.Contract
	if err := json.Unmarshal(rc.Contract, &c); err != nil {
		t.Fatal(err)
	}
	var tools []string
	for _, tool := range c.Tools {
		tools = append(tools, tool.Name)
	}
	return rc.Version, tools
}

// rollsAll is the memory provider as a Kubernetes Deployment is: starting
// one replica of a spec starts every replica of the server on it.
type rollsAll struct{ *startLog }

func (p *rollsAll) StartReplica(ctx context.Context, req providers.StartRequest) providers.StartResponse {
	for i := range req.Desired.Server.Replicas {
		if i != req.Replica {
			p.startLog.StartReplica(ctx, providers.StartRequest{Desired: req.Desired, Replica: i})
		}
	}
	return p.startLog.StartReplica(ctx, req)
}

// On a provider that rolls every replica itself, the contract breaks on
// the first replica all the same, and the message does not claim that the
// others were not changed: they were, by the provider.
func TestEngineContractFirstOnAProviderThatRollsAll(t *testing.T) {
	h, n, log := newNotesHarness(t, 3, "enforce", rolling+`
    verify_for        = "200ms"
    progress_deadline = "30s"`)
	reg := providers.NewRegistry()
	reg.Add("process.mem", &rollsAll{log})
	h.eng.Registry = reg
	if _, res := h.apply(); outcome(res, "notes") != ResultVerified {
		t.Fatalf("create: %+v", res.Servers)
	}
	h.vars["v"] = "1.3.0"
	_, res := h.apply()
	msg := messageOf(res, "notes")
	if outcome(res, "notes") != ResultRolledBack {
		t.Fatalf("1.3.0: outcome %s: %s", outcome(res, "notes"), msg)
	}
	if want := "replica 0, changed first, broke the API contract, before tend went on to replicas 1, 2: contract: 1.0.0 -> 1.3.0 is a minor bump"; !strings.Contains(msg, want) {
		t.Errorf("message lacks %q:\n%s", want, msg)
	}
	if strings.Contains(msg, "not changed") {
		t.Errorf("the message says replicas were not changed, and the provider changed them: %s", msg)
	}
	for r := range 3 {
		if v := n.version(r); v != "1.0.0" {
			t.Errorf("replica %d runs %q after the rollback, want 1.0.0", r, v)
		}
	}
}

// startsSlowly is the memory provider as the process provider is: a
// replica that answers its checks is still "starting" until it has been up
// for a while (here: always).
type startsSlowly struct{ *startLog }

func (p *startsSlowly) Observe(ctx context.Context, req providers.ObserveRequest) providers.ObserveResponse {
	resp := p.startLog.Observe(ctx, req)
	for i := range resp.Instances {
		if resp.Instances[i].State == providers.StateRunning {
			resp.Instances[i].State = providers.StateStarting
		}
	}
	return resp
}

// The contract of the first replica changed is read even while its
// provider calls it starting: it has passed its checks. (Read only from
// running replicas, the early check failed with "no replica is running to
// ask for its contract" on a replica that passed its checks within the
// process provider's first second.)
func TestEngineContractOfAStartingReplica(t *testing.T) {
	h, _, log := newNotesHarness(t, 2, "enforce", rolling+`
    verify_for        = "0s"
    progress_deadline = "30s"`)
	reg := providers.NewRegistry()
	reg.Add("process.mem", &startsSlowly{log})
	h.eng.Registry = reg
	if _, res := h.apply(); outcome(res, "notes") != ResultVerified {
		t.Fatalf("create: %+v", res.Servers)
	}
	h.vars["v"] = "1.3.0"
	_, res := h.apply()
	msg := messageOf(res, "notes")
	if outcome(res, "notes") != ResultRolledBack || !strings.Contains(msg, "broke the API contract") || !strings.Contains(msg, `tool "delete_note" was removed`) {
		t.Fatalf("1.3.0: outcome %s: %s; want it rolled back for breaking the contract", outcome(res, "notes"), msg)
	}
}
