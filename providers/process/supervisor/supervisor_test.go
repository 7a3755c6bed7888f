package supervisor

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A log moves to NAME.1 once it would grow past its limit; nothing is
// lost but what an older rotation replaced.
func TestRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stdout.log")
	r, err := openRotating(path, 100)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 12 {
		fmt.Fprintf(r, "line %02d ......\n", i) // 16 bytes
	}
	r.Close()
	cur, _ := os.ReadFile(path)
	prev, _ := os.ReadFile(path + ".1")
	if got, want := string(prev), lines(0, 6); got != want {
		t.Errorf("rotated part %q, want %q", got, want)
	}
	if got, want := string(cur), lines(6, 12); got != want {
		t.Errorf("current part %q, want %q", got, want)
	}
	if _, err := r.Write([]byte("x")); err == nil {
		t.Error("a write after Close succeeded")
	}
}

func lines(from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "line %02d ......\n", i)
	}
	return b.String()
}

// The supervisor hides secrets as providers.Redactor does: longest first,
// so that a secret inside another is hidden whole.
func TestRedactor(t *testing.T) {
	var r redactor
	r.add("s3cr3t", "", "s3cr3t-long")
	if got, want := r.String("--token=s3cr3t-long and s3cr3t"), "--token="+redacted+" and "+redacted; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// A spec.json of a newer protocol than the supervisor's is refused, and
// status.json says why, for tend to report; an older one is run.
func TestProtocol(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("env", "{}\n")
	write(SpecFile, fmt.Sprintf(`{"protocol": %d, "argv": ["/bin/true"], "env_file": "env", "work_dir": %q}`, Protocol+1, dir))
	if code := Run(dir); code != 1 {
		t.Fatalf("Run: exit code %d, want 1", code)
	}
	var st Status
	b, _ := os.ReadFile(filepath.Join(dir, StatusFile))
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("spec.json is of protocol %d", Protocol+1); st.State != "crashing" || !strings.Contains(st.Message, want) || !strings.Contains(st.Message, Program) {
		t.Errorf("status %+v, want crashing with %q and what to install", st, want)
	}

	// Protocol 0: a spec.json written before there were protocols.
	write(SpecFile, fmt.Sprintf(`{"argv": ["/bin/true"], "env_file": "env", "work_dir": %q}`, dir))
	s, err := loadSupervisor(dir, log.New(io.Discard, "", 0))
	if err != nil {
		t.Fatalf("a spec.json without protocol: %v", err)
	}
	s.stdout.Close()
	s.stderr.Close()
}
