package process

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/process/supervisor"
	"github.com/tendhq/tend/providers/providertest"
	"github.com/tendhq/tend/spec"
)

// TestConformance runs the provider conformance suite with the test binary
// as the workload (see TestMain).
func TestConformance(t *testing.T) {
	managedBy := "conformance-" + strconv.Itoa(os.Getpid())
	p, err := New(&spec.Provider{Type: "process", Name: "conformance", Process: &spec.ProcessSettings{
		WorkDir: tempRoot(t), StopTimeout: 2 * time.Second,
	}}, providers.Env{ManagedBy: managedBy})
	if err != nil {
		t.Fatal(err)
	}
	exe := testExe(t)
	// Each server gets its own free consecutive ports, the same on every
	// call, with room for scaling up.
	ports := map[string]int{}
	server := func(name, version string, replicas int) *spec.Server {
		base, ok := ports[name]
		if !ok {
			base = freePorts(t, 6)
			ports[name] = base
		}
		return &spec.Server{
			Name:     name,
			Provider: "process.conformance",
			Version:  version,
			Command:  []spec.Value{spec.Plain(exe)},
			Replicas: replicas,
			Ports:    []spec.Port{{Name: "http", Number: base, Protocol: "tcp"}},
			Env: map[string]spec.Value{
				"PROCESS_TEST_SERVER": spec.Plain("1"),
				"VERSION":             spec.Plain(version),
			},
		}
	}
	instDir := func(t *testing.T, inst providers.Instance) string {
		t.Helper()
		dir, err := p.instDirOf(inst)
		if err != nil {
			t.Fatal(err)
		}
		return dir
	}

	providertest.Run(t, providertest.Harness{
		Provider:  p,
		ManagedBy: managedBy,
		Server:    server,
		// Tamper adds a variable to the instance's env file.
		Tamper: func(t *testing.T, inst providers.Instance) {
			t.Helper()
			path := filepath.Join(instDir(t, inst), "env")
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			env, err := supervisor.DecodeEnv(b)
			if err != nil {
				t.Fatal(err)
			}
			env["TAMPERED"] = "by hand"
			if err := os.WriteFile(path, supervisor.EncodeEnv(env), 0o600); err != nil {
				t.Fatal(err)
			}
		},
		// Kill SIGKILLs the child the supervisor runs.
		Kill: func(t *testing.T, inst providers.Instance) {
			t.Helper()
			pid := readInstance(instDir(t, inst)).st.ChildPID
			if pid <= 0 {
				t.Fatalf("%s replica %d has no child pid to kill", inst.Server, inst.Replica)
			}
			if args := readCmdline(pid); len(args) == 0 || args[0] != exe {
				t.Fatalf("pid %d of %s replica %d is not the test binary: %q", pid, inst.Server, inst.Replica, args)
			}
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		},
		// Foreign is a sleep started by the test, not by the provider.
		Foreign: func(t *testing.T) (func() bool, func()) {
			t.Helper()
			cmd := exec.Command("sleep", "300")
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			alive := func() bool {
				select {
				case <-done:
					return false
				default:
					return true
				}
			}
			cleanup := func() {
				cmd.Process.Kill()
				<-done
			}
			return alive, cleanup
		},
		Timeout: 15 * time.Second,
	})
}
