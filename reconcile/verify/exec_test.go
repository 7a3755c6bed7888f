package verify

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tendhq/tend/spec"
)

func execCheck(argv ...spec.Value) *spec.Check {
	return &spec.Check{
		Name: "ready", Kind: spec.CheckExec, Exec: &spec.ExecCheck{Command: argv},
		Interval: 20 * time.Millisecond, Timeout: 5 * time.Second, SuccessThreshold: 1, FailureThreshold: 1,
	}
}

func sh(script string) *spec.Check {
	return execCheck(spec.Plain("sh"), spec.Plain("-c"), spec.Plain(script))
}

func TestExecPass(t *testing.T) {
	t.Parallel()
	var gotTarget Target
	var gotArgv []string
	run := func(ctx context.Context, tg Target, argv []string) (int, []byte, error) {
		gotTarget, gotArgv = tg, argv
		return runLocal(ctx, tg, argv)
	}
	p, err := NewProber(sh("test -d /"), run)
	if err != nil {
		t.Fatal(err)
	}
	wantPass(t, p.Probe(context.Background(), Target{Replica: 3}))
	if gotTarget.Replica != 3 || strings.Join(gotArgv, " ") != "sh -c test -d /" {
		t.Errorf("ran %q on replica %d", gotArgv, gotTarget.Replica)
	}
}

func TestExecFail(t *testing.T) {
	t.Parallel()
	msg := wantFail(t, probe(t, sh(`printf '%0300d' 0; echo; echo "pg_isready: no response" >&2; exit 2`), Target{}))
	if !strings.HasPrefix(msg, `exec "sh -c printf`) {
		t.Errorf("message does not say what ran: %s", msg)
	}
	if !strings.Contains(msg, "exit code 2, want 0") || !strings.Contains(msg, `pg_isready: no response"`) {
		t.Errorf("message: %s", msg)
	}
	// Only the last 200 bytes of output.
	if strings.Contains(msg, strings.Repeat("0", 200)) {
		t.Errorf("message shows more than the last 200 bytes: %s", msg)
	}
}

func TestExecSensitiveArgument(t *testing.T) {
	t.Parallel()
	c := execCheck(spec.Plain("sh"), spec.Plain("-c"), spec.Plain(`echo "password $0 refused"; exit 1`), spec.Sensitive("hunter22"))
	msg := wantFail(t, probe(t, c, Target{}))
	if strings.Contains(msg, "hunter22") {
		t.Errorf("a sensitive argument leaked: %s", msg)
	}
	if !strings.Contains(msg, "exit code 1") || !strings.Contains(msg, "password (sensitive) refused") {
		t.Errorf("message: %s", msg)
	}
}

func TestExecRunnerError(t *testing.T) {
	t.Parallel()
	msg := wantFail(t, probe(t, execCheck(spec.Plain("/nonexistent/tend-probe")), Target{}))
	if !strings.Contains(msg, `exec "/nonexistent/tend-probe": `) || !strings.Contains(msg, "no such file") {
		t.Errorf("message: %s", msg)
	}
}

func TestExecTimeout(t *testing.T) {
	t.Parallel()
	c := sh("sleep 5")
	c.Timeout = 50 * time.Millisecond
	began := time.Now()
	msg := wantFail(t, probe(t, c, Target{}))
	if took := time.Since(began); took > 3*time.Second {
		t.Errorf("took %s", took)
	}
	if msg != `exec "sh -c sleep 5": no answer within the 50ms timeout` {
		t.Errorf("message: %s", msg)
	}
}

func TestExecNeedsRunner(t *testing.T) {
	t.Parallel()
	_, err := NewProber(sh("true"), nil)
	if err == nil || !strings.Contains(err.Error(), "task runner") {
		t.Errorf("NewProber without an ExecFunc: %v", err)
	}
}

func TestNewProberKinds(t *testing.T) {
	t.Parallel()
	for _, c := range []*spec.Check{
		{Name: "x", Kind: "grpc"},
		{Name: "x"},
		{Name: "x", Kind: spec.CheckHTTP}, // kind without its settings
	} {
		if _, err := NewProber(c, runLocal); err == nil {
			t.Errorf("NewProber(%+v) succeeded", c)
		}
	}
}
