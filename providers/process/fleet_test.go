package process

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/process/supervisor"
	"github.com/tendhq/tend/spec"
)

const (
	// fleetReplicas is how many replicas TestFleet runs.
	fleetReplicas = 500
	// fleetWorkers is how many of them it starts or stops at a time: a
	// start waits about a second for its replica to be up.
	fleetWorkers = 64
	// maxSupervisorPrivate is what the supervisor of one replica may cost
	// in private memory (issue 16: 1,000 servers of 2 replicas on one
	// host).
	maxSupervisorPrivate = 2 << 20
)

// TestFleet runs 500 replicas of one server under the supervisor as tend
// ships it (tend-supervise, built here without -race, as make build
// builds it) and the smallest server there is, and measures what the
// supervisors cost in private memory (the pages of tend-supervise's
// program are shared by all of them). It checks that crashed replicas are
// restarted with their exit codes recorded, that a provider that did not
// start them finds them all, and that stopping them leaves no process.
func TestFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 500 replicas")
	}
	bin := buildFleet(t)
	root := tempRoot(t)
	p := newTestProvider(t, root)
	p.supervisorExe = filepath.Join(bin, supervisor.Program)
	port := fleetPorts(t, fleetReplicas)
	d := &providers.Desired{
		Server: &spec.Server{
			Name: "fleet", Provider: "process.test", Version: "1.0.0",
			Command:  []spec.Value{spec.Plain(filepath.Join(bin, "healthserver"))},
			Replicas: fleetReplicas,
			Ports:    []spec.Port{{Name: "http", Number: port, Protocol: "tcp"}},
		},
		SpecHash: "f1", Revision: "rev-f1", ManagedBy: testManagedBy,
	}
	t.Cleanup(func() { cleanupFleet(t, p, bin) })
	ctx := context.Background()

	t0 := time.Now()
	mustAll(t, "StartReplica", forEach(fleetReplicas, func(i int) error {
		return p.StartReplica(ctx, providers.StartRequest{Desired: d, Replica: i}).Err
	}))
	t.Logf("started %d replicas in %v", fleetReplicas, time.Since(t0).Round(time.Millisecond))
	mustAll(t, "GET /health", forEach(fleetReplicas, func(i int) error {
		return retry(10*time.Second, func() error { return expectBody(port+i, "/health", "ok") })
	}))

	// Observed by a provider that did not start them (tend run again):
	// it recognises the supervisors by the program spec.json records.
	p2 := newTestProvider(t, root)
	var insts []providers.Instance
	eventually(t, 10*time.Second, func() error {
		insts = observe(t, p2)
		return allRunning(insts)
	})

	sum := fleetMemory(t, p.supervisorExe, insts)
	per := sum.private / uint64(len(insts))
	t.Logf("supervisors (%s): private %.2f MiB a replica (anonymous %.2f MiB, Pss %.2f MiB, shared program included), %.1f MiB for %d",
		filepath.Base(p.supervisorExe), mib(per), mib(sum.anon/uint64(len(insts))), mib(sum.pss/uint64(len(insts))), mib(sum.private), len(insts))
	if per >= maxSupervisorPrivate {
		t.Errorf("a supervisor costs %.2f MiB of private memory, want under %.0f MiB", mib(per), mib(maxSupervisorPrivate))
	}

	checkFleetRestarts(t, p, port)

	t0 = time.Now()
	mustAll(t, "StopReplica", forEach(fleetReplicas, func(i int) error {
		inst := providers.Instance{Identity: providers.Identity{ManagedBy: testManagedBy, Server: "fleet", Replica: i}}
		return p.StopReplica(ctx, providers.StopRequest{Instance: inst, Grace: time.Second}).Err
	}))
	t.Logf("stopped %d replicas in %v", fleetReplicas, time.Since(t0).Round(time.Millisecond))
	if left := observe(t, p2); len(left) != 0 {
		t.Errorf("%d instances left after stopping them all", len(left))
	}
	if pids := fleetProcesses(bin); len(pids) != 0 {
		t.Errorf("%d processes left after stopping them all: %v", len(pids), pids)
	}
}

// fleetPorts returns the first of n consecutive ports that are free on
// 127.0.0.1, below the range the kernel takes the local ports of
// connections from: a connection anywhere on the host would soon take one
// of hundreds of ports in that range, and a replica restarted after a
// crash could not listen again.
func fleetPorts(t *testing.T, n int) int {
	t.Helper()
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		fmt.Sscan(string(b), &low)
	}
	const first = 10000
	slots := (low - first) / n
	if slots < 1 {
		t.Skipf("no room for %d ports between %d and %d", n, first, low)
	}
	start := rand.IntN(slots) // another run of this test may look at once
	for k := range slots {
		base := first + (start+k)%slots*n
		if portsFree(base, n) {
			return base
		}
	}
	t.Fatalf("no %d consecutive free ports on 127.0.0.1 between %d and %d", n, first, low)
	return 0
}

func portsFree(base, n int) bool {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for i := range n {
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(base+i))
		if err != nil {
			return false
		}
		ls = append(ls, l)
	}
	return true
}

// checkFleetRestarts crashes a few replicas (an exit code of the
// program's own, and SIGKILL) and waits for their supervisors to restart
// them and record how they ended.
func checkFleetRestarts(t *testing.T, p *Provider, port int) {
	t.Helper()
	type crash struct {
		replica, code int
		kill          bool
	}
	crashes := []crash{{0, 3, false}, {123, 137, true}, {250, 42, false}, {377, 137, true}, {fleetReplicas - 1, 7, false}}
	before := map[int]int{}
	for _, c := range crashes {
		st := statusOf(t, p, "fleet", c.replica)
		before[c.replica] = st.ChildPID
		if c.kill {
			if err := syscall.Kill(st.ChildPID, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		} else {
			_ = expectBody(port+c.replica, "/exit/"+strconv.Itoa(c.code), "exiting") // it may exit before it answers
		}
	}
	for _, c := range crashes {
		eventually(t, 10*time.Second, func() error {
			inst := observeOne(t, p, "fleet", c.replica)
			st := statusOf(t, p, "fleet", c.replica)
			if inst.Restarts != 1 || inst.State != providers.StateRunning || st.LastExitCode == nil || *st.LastExitCode != c.code ||
				!strings.Contains(inst.Message, fmt.Sprintf("exit code %d", c.code)) {
				return fmt.Errorf("replica %d: %s, %d restarts (%s), status %+v; want running, 1 restart, exit code %d",
					c.replica, inst.State, inst.Restarts, inst.Message, st, c.code)
			}
			pid, err := httpGet(port+c.replica, "/pid")
			if err != nil {
				return err
			}
			if pid == strconv.Itoa(before[c.replica]) {
				return fmt.Errorf("replica %d: pid %s answers, the one that crashed", c.replica, pid)
			}
			return nil
		})
	}
}

// buildFleet builds tend-supervise and the fleet's server, without -race
// whatever this test binary was built with: the figures are those of the
// program tend ships.
func buildFleet(t *testing.T) string {
	t.Helper()
	bin := t.TempDir()
	cmd := exec.Command("go", "build", "-o", bin+string(filepath.Separator), "../../cmd/tend-supervise", "./testdata/healthserver")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// cleanupFleet stops whatever replicas are left and kills every process
// that runs a program of bin.
func cleanupFleet(t *testing.T, p *Provider, bin string) {
	errs := forEach(fleetReplicas, func(i int) error {
		dir, _ := p.instanceDir(testManagedBy, "fleet", i)
		if _, err := os.Stat(dir); err != nil {
			return nil
		}
		inst := providers.Instance{Identity: providers.Identity{ManagedBy: testManagedBy, Server: "fleet", Replica: i}}
		return p.StopReplica(context.Background(), providers.StopRequest{Instance: inst, Grace: time.Second}).Err
	})
	for _, err := range errs {
		t.Errorf("cleanup: %v", err)
	}
	if pids := fleetProcesses(bin); len(pids) > 0 {
		t.Errorf("cleanup: killing %d processes left running: %v", len(pids), pids)
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// fleetProcesses lists the live processes of this user that run a program
// of bin.
func fleetProcesses(bin string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !ownProcess(pid) {
			continue
		}
		if args := readCmdline(pid); len(args) > 0 && filepath.Dir(args[0]) == bin {
			if _, ok := live(pid); ok {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// forEach runs f for 0..n-1, fleetWorkers at a time, and returns the
// errors.
func forEach(n int, f func(i int) error) []error {
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	next := make(chan int)
	for range fleetWorkers {
		wg.Go(func() {
			for i := range next {
				if err := f(i); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("replica %d: %w", i, err))
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return errs
}

func mustAll(t *testing.T, what string, errs []error) {
	t.Helper()
	if len(errs) > 0 {
		t.Fatalf("%s failed for %d replicas, first: %v", what, len(errs), errors.Join(errs[:min(len(errs), 3)]...))
	}
}

func retry(d time.Duration, f func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func expectBody(port int, path, want string) error {
	got, err := httpGet(port, path)
	if err == nil && got != want {
		err = fmt.Errorf("GET %s: %q, want %q", path, got, want)
	}
	return err
}

func allRunning(insts []providers.Instance) error {
	if len(insts) != fleetReplicas {
		return fmt.Errorf("%d instances, want %d", len(insts), fleetReplicas)
	}
	for _, inst := range insts {
		if inst.State != providers.StateRunning {
			return fmt.Errorf("replica %d is %s (%s)", inst.Replica, inst.State, inst.Message)
		}
	}
	return nil
}

// memory is a sum over processes of /proc/PID/smaps_rollup, in bytes.
type memory struct {
	private uint64 // Private_Clean + Private_Dirty: pages no other process maps
	anon    uint64 // Anonymous
	pss     uint64 // Pss: each page divided among the processes that map it
}

// fleetMemory sums the memory of the instances' supervisors, each of which
// must run exe.
func fleetMemory(t *testing.T, exe string, insts []providers.Instance) memory {
	t.Helper()
	var sum memory
	for _, inst := range insts {
		pid, _ := strconv.Atoi(inst.ID)
		if args := readCmdline(pid); len(args) == 0 || args[0] != exe {
			t.Fatalf("replica %d: supervisor pid %d runs %q, want %s", inst.Replica, pid, args, exe)
		}
		m, err := smapsRollup(pid)
		if err != nil {
			t.Fatal(err)
		}
		sum.private += m.private
		sum.anon += m.anon
		sum.pss += m.pss
	}
	return sum
}

func smapsRollup(pid int) (memory, error) {
	var m memory
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
	if err != nil {
		return m, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 || f[2] != "kB" {
			continue
		}
		kb, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			return m, fmt.Errorf("smaps_rollup of %d: %q", pid, sc.Text())
		}
		switch f[0] {
		case "Private_Clean:", "Private_Dirty:":
			m.private += kb << 10
		case "Anonymous:":
			m.anon += kb << 10
		case "Pss:":
			m.pss += kb << 10
		}
	}
	return m, nil
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
