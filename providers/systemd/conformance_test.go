package systemd

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	sdbus "github.com/coreos/go-systemd/v22/dbus"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/providertest"
	"github.com/tendhq/tend/spec"
)

// TestConformance runs the provider conformance suite against the real
// systemd, with the test binary as the workload (see TestMain).
func TestConformance(t *testing.T) {
	inside(t)
	p, managedBy := newTestProvider(t, 3)
	exe := testExe(t)
	ports := map[string]int{}
	server := func(name, version string, replicas int) *spec.Server {
		base, ok := ports[name]
		if !ok {
			base = freePorts(t, 6)
			ports[name] = base
		}
		return &spec.Server{
			Name:     name,
			Provider: "systemd.test",
			Version:  version,
			Command:  []spec.Value{spec.Plain(exe)},
			Replicas: replicas,
			Ports:    []spec.Port{{Name: "http", Number: base, Protocol: "tcp"}},
			Env: map[string]spec.Value{
				"SYSTEMD_TEST_SERVER": spec.Plain("1"),
				"VERSION":             spec.Plain(version),
				"TOKEN":               spec.Sensitive("conformance-secret"),
			},
			ConfigFiles: []*spec.ConfigFile{
				{Path: "config.yaml", Content: spec.Plain("max_notes: 100\n"), Mode: 0o644},
			},
		}
	}
	conn, err := p.bus(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	providertest.Run(t, providertest.Harness{
		Provider:  p,
		ManagedBy: managedBy,
		Server:    server,
		// Tamper edits the unit file by hand, as a person with an editor
		// would: a longer RestartSec.
		Tamper: func(t *testing.T, inst providers.Instance) {
			t.Helper()
			path := p.unitPath(inst.ID)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			edited := bytes.Replace(b, []byte("RestartSec=1\n"), []byte("RestartSec=5\n"), 1)
			if bytes.Equal(edited, b) {
				t.Fatalf("the unit file %s has no RestartSec=1 to edit:\n%s", path, b)
			}
			if err := os.WriteFile(path, edited, 0o644); err != nil {
				t.Fatal(err)
			}
		},
		// Kill SIGKILLs the unit's main process, as a crash would end it;
		// systemd restarts it (Restart=always).
		Kill: func(t *testing.T, inst providers.Instance) {
			t.Helper()
			u, err := p.props(context.Background(), conn, inst.ID)
			if err != nil {
				t.Fatal(err)
			}
			if u.MainPID == 0 {
				t.Fatalf("%s replica %d has no main process to kill (%s/%s)", inst.Server, inst.Replica, u.Active, u.Sub)
			}
			if got, _ := os.Readlink("/proc/" + strconv.Itoa(int(u.MainPID)) + "/exe"); got != exe {
				t.Fatalf("pid %d of %s replica %d runs %q, not the test binary", u.MainPID, inst.Server, inst.Replica, got)
			}
			if err := syscall.Kill(int(u.MainPID), syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		},
		// Foreign is a unit written by hand, named in tend's own pattern but
		// without tend's identity: tend must neither list nor touch it.
		Foreign: func(t *testing.T) (func() bool, func()) {
			t.Helper()
			name := "tend." + encodeName(managedBy) + ".foreign.0.service"
			path := filepath.Join(p.UnitDir(), name)
			unit := "[Unit]\nDescription=not tend's\n\n[Service]\nExecStart=/bin/sleep 600\n"
			if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if err := conn.ReloadContext(ctx); err != nil {
				t.Fatal(err)
			}
			ch := make(chan string, 1)
			if _, err := conn.StartUnitContext(ctx, name, "replace", ch); err != nil {
				t.Fatal(err)
			}
			select {
			case <-ch:
			case <-time.After(30 * time.Second):
				t.Fatal("the foreign unit did not start")
			}
			alive := func() bool {
				u, err := p.props(ctx, conn, name)
				return err == nil && u.Active == "active" && u.Sub == "running"
			}
			cleanup := func() {
				stop := make(chan string, 1)
				if _, err := conn.StopUnitContext(ctx, name, "replace", stop); err == nil {
					select {
					case <-stop:
					case <-time.After(30 * time.Second):
					}
				}
				os.Remove(path)
				conn.ReloadContext(ctx)
			}
			return alive, cleanup
		},
		Timeout: 30 * time.Second,
	})
}

// foreignTransient starts a transient unit tend did not write (used by the
// tests that check tend leaves other units alone).
func foreignTransient(t *testing.T, conn *sdbus.Conn, name string) {
	t.Helper()
	ctx := context.Background()
	ch := make(chan string, 1)
	if _, err := conn.StartTransientUnitContext(ctx, name, "fail", []sdbus.Property{
		sdbus.PropDescription("not tend's"),
		sdbus.PropExecStart([]string{"/bin/sleep", "600"}, true),
	}, ch); err != nil {
		t.Fatal(err)
	}
	<-ch
	t.Cleanup(func() {
		stop := make(chan string, 1)
		if _, err := conn.StopUnitContext(ctx, name, "replace", stop); err == nil {
			<-stop
		}
	})
}
