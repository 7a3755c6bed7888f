package process

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/tendhq/tend/providers/internal/hostfs"
)

// TestCapacity compares the provider's answer with what /proc says of
// this host and of this process (whose cgroup the replicas share).
func TestCapacity(t *testing.T) {
	t.Parallel()
	p := newTestProvider(t, tempRoot(t))
	c, err := p.Capacity(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Hosts) != 1 || c.Cluster {
		t.Fatalf("Capacity = %+v, want one host", c)
	}
	h := c.Hosts[0]
	name, _ := os.Hostname()
	if h.Name != name {
		t.Errorf("host name %q, want %q", h.Name, name)
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	allowed := 0
	for line := range strings.SplitSeq(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
			allowed = hostfs.CountCPUList(rest)
		}
	}
	self, _ := os.ReadFile("/proc/self/cgroup")
	lim := hostfs.CgroupLimits(string(self), "/sys/fs/cgroup")
	wantCPU := int64(allowed) * 1000
	if lim.MilliCPU > 0 {
		wantCPU = min(wantCPU, lim.MilliCPU)
	}
	if h.MilliCPU != wantCPU || h.MilliCPU <= 0 {
		t.Errorf("MilliCPU = %d, want %d (%d CPUs allowed, cgroup %+v)", h.MilliCPU, wantCPU, allowed, lim)
	}
	wantMem := procMemTotal(t)
	if lim.MemoryBytes > 0 {
		wantMem = min(wantMem, lim.MemoryBytes)
	}
	if h.MemoryBytes != wantMem || h.MemoryBytes <= 0 {
		t.Errorf("MemoryBytes = %d, want %d (cgroup %+v)", h.MemoryBytes, wantMem, lim)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Capacity(ctx); err == nil {
		t.Error("Capacity with a cancelled context: no error")
	}
}

func procMemTotal(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb * 1024
		}
	}
	t.Fatal("no MemTotal in /proc/meminfo")
	return 0
}
