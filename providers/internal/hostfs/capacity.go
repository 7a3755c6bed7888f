package hostfs

import (
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// cgroupRoot is where the cgroup file systems are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// OnlineMilliCPU returns the host's online CPUs in millicores, from
// /sys/devices/system/cpu/online (else the CPUs this process may use).
// It is what services started outside tend's own cgroup (systemd units)
// share.
func OnlineMilliCPU() int64 {
	if b, err := os.ReadFile("/sys/devices/system/cpu/online"); err == nil {
		if n := CountCPUList(string(b)); n > 0 {
			return int64(n) * 1000
		}
	}
	return int64(runtime.NumCPU()) * 1000
}

// OwnMilliCPU returns the CPU this process and its children may use, in
// millicores: the CPUs of its affinity mask, lowered by a CPU quota of its
// cgroup (or of a cgroup above it).
func OwnMilliCPU() int64 {
	cpu := int64(runtime.NumCPU()) * 1000
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return cpu
	}
	if q := CgroupLimits(string(self), cgroupRoot).MilliCPU; q > 0 && q < cpu {
		return q
	}
	return cpu
}

// OwnMemoryBytes returns the memory this process and its children may
// use: the host's (MemTotal), lowered by a memory limit of its cgroup (or
// of a cgroup above it). 0 when MemTotal cannot be read.
func OwnMemoryBytes() int64 {
	mem := MemTotal()
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return mem
	}
	if l := CgroupLimits(string(self), cgroupRoot).MemoryBytes; l > 0 && (mem == 0 || l < mem) {
		return l
	}
	return mem
}

// Limits are the CPU quota (in millicores) and memory limit of a cgroup;
// zero means none.
type Limits struct {
	MilliCPU    int64
	MemoryBytes int64
}

// CgroupLimits reads the tightest CPU quota and memory limit that apply to
// the cgroup named in selfCgroup (the content of /proc/self/cgroup), from
// the cgroup file systems mounted at root: cgroup v2 (cpu.max,
// memory.max) or v1 (cpu.cfs_quota_us over cpu.cfs_period_us,
// memory.limit_in_bytes). Every cgroup from the process's own up to the
// root counts. Whatever cannot be read counts as no limit.
func CgroupLimits(selfCgroup, root string) Limits {
	var out Limits
	for line := range strings.SplitSeq(selfCgroup, "\n") {
		parts := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(parts) != 3 {
			continue
		}
		ctrls, p := strings.Split(parts[1], ","), parts[2]
		switch {
		case parts[0] == "0" && parts[1] == "":
			// v2: one hierarchy; under v1 its mount is root/unified.
			dir := root
			if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err != nil {
				dir = filepath.Join(root, "unified")
			}
			walkUp(dir, p, func(d string) {
				out.MilliCPU = lower(out.MilliCPU, cpuMax(d))
				out.MemoryBytes = lower(out.MemoryBytes, readLimit(filepath.Join(d, "memory.max")))
			})
		case contains(ctrls, "cpu"):
			walkUp(filepath.Join(root, parts[1]), p, func(d string) {
				out.MilliCPU = lower(out.MilliCPU, cfsQuota(d))
			})
		case contains(ctrls, "memory"):
			walkUp(filepath.Join(root, parts[1]), p, func(d string) {
				out.MemoryBytes = lower(out.MemoryBytes, readLimit(filepath.Join(d, "memory.limit_in_bytes")))
			})
		}
	}
	return out
}

// walkUp calls f for the directory of cgroup p under mount and for each
// directory above it, up to the mount. Inside a cgroup namespace p may
// name a path the mount does not show: only the directories that exist
// are visited.
func walkUp(mount, p string, f func(dir string)) {
	p = path.Clean("/" + p)
	for {
		dir := filepath.Join(mount, filepath.FromSlash(p))
		if st, err := os.Stat(dir); err == nil && st.IsDir() {
			f(dir)
		}
		if p == "/" {
			return
		}
		p = path.Dir(p)
	}
}

// cpuMax reads a v2 cpu.max ("QUOTA PERIOD" or "max PERIOD") as
// millicores; 0 means no quota.
func cpuMax(dir string) int64 {
	b, err := os.ReadFile(filepath.Join(dir, "cpu.max"))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 || f[0] == "max" {
		return 0
	}
	return quotaMilli(f[0], f[1])
}

// cfsQuota reads a v1 cpu.cfs_quota_us (-1: none) over
// cpu.cfs_period_us as millicores; 0 means no quota.
func cfsQuota(dir string) int64 {
	q, err1 := os.ReadFile(filepath.Join(dir, "cpu.cfs_quota_us"))
	p, err2 := os.ReadFile(filepath.Join(dir, "cpu.cfs_period_us"))
	if err1 != nil || err2 != nil {
		return 0
	}
	return quotaMilli(strings.TrimSpace(string(q)), strings.TrimSpace(string(p)))
}

func quotaMilli(quota, period string) int64 {
	q, err1 := strconv.ParseInt(quota, 10, 64)
	p, err2 := strconv.ParseInt(period, 10, 64)
	if err1 != nil || err2 != nil || q <= 0 || p <= 0 || q > 1<<40 {
		return 0
	}
	return max(q*1000/p, 1)
}

// readLimit reads a memory limit in bytes; "max", a value beyond any
// machine (v1 writes 2^63 rounded down to a page for none) or anything
// unreadable is 0: no limit.
func readLimit(file string) int64 {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || n <= 0 || n >= 1<<62 {
		return 0
	}
	return n
}

// lower is the smaller of two limits, where 0 means none.
func lower(a, b int64) int64 {
	switch {
	case a == 0:
		return b
	case b == 0:
		return a
	}
	return min(a, b)
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// CountCPUList counts the CPUs of a kernel CPU list such as "0-3,8,10-11";
// 0 when it is malformed.
func CountCPUList(s string) int {
	n := 0
	for part := range strings.SplitSeq(strings.TrimSpace(s), ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return 0
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return 0
			}
		}
		n += b - a + 1
	}
	return n
}
