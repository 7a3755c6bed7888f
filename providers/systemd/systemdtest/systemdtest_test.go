package systemdtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestEnvironment runs TestInsideEnvironment in the systemd container.
func TestEnvironment(t *testing.T) {
	RunTests(t, "^TestInsideEnvironment$")
}

// TestInsideEnvironment checks what the systemd provider's tests rely on:
// systemd is PID 1 and running, cgroup accounting reports CPU and memory,
// and the mcp-notes releases are there.
func TestInsideEnvironment(t *testing.T) {
	SkipUnlessInside(t)
	comm, err := os.ReadFile("/proc/1/comm")
	if err != nil || strings.TrimSpace(string(comm)) != "systemd" {
		t.Fatalf("PID 1 is %q (%v), want systemd", comm, err)
	}
	out, err := exec.Command("systemctl", "is-system-running").Output()
	if s := strings.TrimSpace(string(out)); s != "running" && s != "degraded" {
		t.Fatalf("systemctl is-system-running: %q %v", s, err)
	}
	if b, err := exec.Command("systemd-run", "--unit", "tend-env-burn", "-p", "MemoryMax=64M", "/bin/sh", "-c", "while :; do :; done").CombinedOutput(); err != nil {
		t.Fatalf("systemd-run: %v\n%s", err, b)
	}
	defer exec.Command("systemctl", "stop", "tend-env-burn").Run()
	var cpu, mem int64
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := exec.Command("systemctl", "show", "tend-env-burn", "-p", "CPUUsageNSec", "--value").Output()
		cpu, _ = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		b2, _ := exec.Command("systemctl", "show", "tend-env-burn", "-p", "MemoryCurrent", "--value").Output()
		mem, _ = strconv.ParseInt(strings.TrimSpace(string(b2)), 10, 64)
		if err == nil && cpu > 0 && mem > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cgroup accounting: CPUUsageNSec %q, MemoryCurrent %q", b, b2)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("a busy unit: CPUUsageNSec %d, MemoryCurrent %d", cpu, mem)
	for _, v := range []string{"1.0.0", "1.1.0", "1.2.0"} {
		p := filepath.Join(os.Getenv(NotesDirEnv), "mcp-notes-"+v)
		if b, err := exec.Command(p, "--version").Output(); err != nil || strings.TrimSpace(string(b)) != v {
			t.Errorf("%s --version: %q %v", p, b, err)
		}
	}
}
