package systemd

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestCapacity compares the provider's answer with the host's figures in
// /proc and /sys: the units do not share tend's cgroup, so no limit of
// tend's own applies.
func TestCapacity(t *testing.T) {
	t.Parallel()
	p := newOfflineProvider(t, 1)
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
	// /proc/cpuinfo lists every online CPU once, as "processor : N".
	info, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		t.Fatal(err)
	}
	cpus := 0
	for line := range strings.SplitSeq(string(info), "\n") {
		if k, _, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "processor" {
			cpus++
		}
	}
	if h.MilliCPU != int64(cpus)*1000 {
		t.Errorf("MilliCPU = %d, want %d (/proc/cpuinfo lists %d processors)", h.MilliCPU, cpus*1000, cpus)
	}
	meminfo, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	var want int64
	for line := range strings.SplitSeq(string(meminfo), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "MemTotal:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			want = kb * 1024
		}
	}
	if h.MemoryBytes != want || want == 0 {
		t.Errorf("MemoryBytes = %d, want MemTotal %d", h.MemoryBytes, want)
	}
}
