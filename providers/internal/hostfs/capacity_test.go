package hostfs

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

func TestCountCPUList(t *testing.T) {
	for in, want := range map[string]int{
		"0": 1, "0-3": 4, "0-3,8,10-11\n": 7, "": 0, "x": 0, "3-1": 0, "0-": 0, "-1": 0,
	} {
		if got := CountCPUList(in); got != want {
			t.Errorf("CountCPUList(%q) = %d, want %d", in, got, want)
		}
	}
}

// writeTree makes files (path → content) under a temporary root.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, c := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestCgroupLimits(t *testing.T) {
	cases := []struct {
		name  string
		self  string
		files map[string]string
		want  Limits
	}{
		{
			name: "v2 own limits",
			self: "0::/app/svc\n",
			files: map[string]string{
				"cgroup.controllers":   "cpu memory",
				"app/svc/cpu.max":      "150000 100000\n",
				"app/svc/memory.max":   "1073741824\n",
				"app/cpu.max":          "max 100000\n",
				"app/memory.max":       "max\n",
				"cpu.max":              "garbage",
				"unrelated/memory.max": "1",
			},
			want: Limits{MilliCPU: 1500, MemoryBytes: 1 << 30},
		},
		{
			name: "v2 a parent is tighter",
			self: "0::/app/svc",
			files: map[string]string{
				"cgroup.controllers": "cpu memory",
				"app/svc/cpu.max":    "400000 100000",
				"app/svc/memory.max": "max",
				"app/cpu.max":        "50000 100000",
				"app/memory.max":     "536870912",
			},
			want: Limits{MilliCPU: 500, MemoryBytes: 512 << 20},
		},
		{
			name:  "v2 no limits",
			self:  "0::/",
			files: map[string]string{"cgroup.controllers": "cpu memory", "memory.max": "max"},
		},
		{
			name: "v1 in a namespace: the mount's root only",
			self: "9:cpu,cpuacct:/gone/deep\n4:memory:/gone/deep\n0::/\n",
			files: map[string]string{
				"cpu,cpuacct/cpu.cfs_quota_us":  "250000\n",
				"cpu,cpuacct/cpu.cfs_period_us": "100000\n",
				"memory/memory.limit_in_bytes":  "2147483648\n",
			},
			want: Limits{MilliCPU: 2500, MemoryBytes: 2 << 30},
		},
		{
			name: "v1 none",
			self: "1:cpu:/a\n4:memory:/a\n",
			files: map[string]string{
				"cpu/a/cpu.cfs_quota_us":         "-1",
				"cpu/a/cpu.cfs_period_us":        "100000",
				"memory/a/memory.limit_in_bytes": "9223372036854771712",
			},
		},
		{
			name:  "malformed",
			self:  "nonsense\n::\n1:cpu\n",
			files: map[string]string{"cpu/cpu.cfs_quota_us": "1"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := writeTree(t, tc.files)
			if got := CgroupLimits(tc.self, root); got != tc.want {
				t.Errorf("CgroupLimits = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// The process's own figures, against what /proc says.
func TestOwnCapacity(t *testing.T) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc")
	}
	allowed := 0
	for line := range strings.SplitSeq(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
			allowed = CountCPUList(rest)
		}
	}
	if allowed == 0 || allowed != runtime.NumCPU() {
		t.Fatalf("Cpus_allowed_list counts %d CPUs, runtime.NumCPU %d", allowed, runtime.NumCPU())
	}
	self, _ := os.ReadFile("/proc/self/cgroup")
	lim := CgroupLimits(string(self), cgroupRoot)
	wantCPU := int64(allowed) * 1000
	if lim.MilliCPU > 0 && lim.MilliCPU < wantCPU {
		wantCPU = lim.MilliCPU
	}
	if got := OwnMilliCPU(); got != wantCPU {
		t.Errorf("OwnMilliCPU = %d, want %d (%d CPUs allowed, cgroup %+v)", got, wantCPU, allowed, lim)
	}
	memTotal := meminfoTotal(t)
	wantMem := memTotal
	if lim.MemoryBytes > 0 && lim.MemoryBytes < wantMem {
		wantMem = lim.MemoryBytes
	}
	if got := OwnMemoryBytes(); got != wantMem || got <= 0 {
		t.Errorf("OwnMemoryBytes = %d, want %d (MemTotal %d, cgroup %+v)", got, wantMem, memTotal, lim)
	}
	online, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err == nil {
		if got, want := OnlineMilliCPU(), int64(CountCPUList(string(online)))*1000; got != want || got < int64(allowed)*1000 {
			t.Errorf("OnlineMilliCPU = %d, want %d (at least the %d CPUs allowed)", got, want, allowed)
		}
	}
}

// meminfoTotal reads MemTotal from /proc/meminfo, apart from MemTotal.
func meminfoTotal(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "MemTotal:" && f[2] == "kB" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no MemTotal in /proc/meminfo")
	return 0
}
