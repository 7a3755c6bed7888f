package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/process"
	"github.com/tendhq/tend/reconcile"
	"github.com/tendhq/tend/reconcile/state"
	"github.com/tendhq/tend/spec"
)

// tinyServer is the program the process apply benchmark deploys: it
// listens on its port and answers /health, nothing else.
const tinyServer = `package main

import (
	"net/http"
	"os"
)

func main() {
	http.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	if err := http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), nil); err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
}
`

// buildTiny builds tinyServer once into dir and returns its path.
func buildTiny(b *testing.B, dir string) string {
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		b.Fatal(err)
	}
	for name, content := range map[string]string{"go.mod": "module tiny\n\ngo 1.21\n", "main.go": tinyServer} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(content), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "tiny")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("building the tiny server: %v\n%s", err, out)
	}
	return bin
}

// loosePorts returns n ports free on loopback when it looked, below the
// range the kernel hands out to outgoing connections (the checks' own
// connections would take them otherwise).
func loosePorts(b *testing.B, n int) []int {
	seen := map[int]bool{}
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries > 100*n {
			b.Fatalf("found %d of %d free ports", len(ports), n)
		}
		port := 10000 + rand.IntN(20000)
		if seen[port] {
			continue
		}
		seen[port] = true
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		l.Close()
		ports = append(ports, port)
	}
	return ports
}

// tinyFleet is a repository of n tiny servers of one replica each.
func tinyFleet(bin string, ports []int) map[string][]byte {
	var sb strings.Builder
	sb.WriteString(`tend {
  parallelism = 20
}

provider "process" "local" {
  stop_timeout = "1s"
}
`)
	for i, port := range ports {
		fmt.Fprintf(&sb, `
server "tiny-%04d" {
  version = "1.0.0"
  command = [%q]
  port    = %d
  check "health" {
    http {
      path = "/health"
    }
    interval = "200ms"
    timeout  = "200ms"
  }
  rollout {
    verify_for        = "0s"
    progress_deadline = "30s"
  }
}
`, i, bin, port)
	}
	return map[string][]byte{"main.hcl": []byte(sb.String())}
}

// applyTiny plans and applies a fleet of n tiny servers on a new process
// provider, checks that every one was verified, and returns tend's own CPU
// time and the wall time of plan and apply; then it stops them (not timed).
func applyTiny(b *testing.B, bin string, n int) (cpu, wall time.Duration) {
	b.Helper()
	dir, err := os.MkdirTemp("", "tend-apply-bench-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	e, done := benchEngine(b, dir)
	defer done()

	src, _, diags := reconcile.NewSource("fleet", "r1", tinyFleet(bin, loosePorts(b, n)), spec.Options{Strict: true})
	if diags.HasErrors() {
		b.Fatal(diags.Error())
	}
	ctx := context.Background()
	c0, t0 := processCPU(), time.Now()
	p, err := e.Plan(ctx, src)
	if err != nil {
		b.Fatal(err)
	}
	res, err := e.Apply(ctx, src, p)
	if err != nil {
		b.Fatal(err)
	}
	cpu, wall = processCPU()-c0, time.Since(t0)
	verified, shown := 0, 0
	for _, r := range res.Servers {
		if r.Outcome == reconcile.ResultVerified {
			verified++
		} else if shown++; shown <= 3 {
			b.Errorf("%s: %s: %s", r.Server, r.Outcome, r.Message)
		}
	}
	if verified != n {
		b.Fatalf("%d of %d servers verified", verified, n)
	}
	return cpu, wall
}

// benchEngine is an engine on the process provider "local" (managed by
// "bench") with its store in stateDir, and the function that stops the
// replicas it started and closes its store.
func benchEngine(b *testing.B, stateDir string) (*reconcile.Engine, func()) {
	b.Helper()
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		b.Fatal(err)
	}
	st, err := state.Open(filepath.Join(stateDir, "state.db"))
	if err != nil {
		b.Fatal(err)
	}
	reg := providers.NewRegistry()
	process.Register(reg)
	log := logrus.New()
	log.SetOutput(os.Stderr)
	log.SetLevel(logrus.ErrorLevel)
	e := &reconcile.Engine{Store: st, Registry: reg, ManagedBy: "bench", Host: reconcile.Host{Name: "h"},
		ProvEnv: providers.Env{StateDir: stateDir, ManagedBy: "bench"}, LoadOptions: spec.Options{Strict: true}, Log: log}
	return e, func() {
		if err := stopReplicas(stateDir, "bench"); err != nil {
			b.Error(err)
		}
		st.Close()
	}
}

// processCPU is the CPU time this process (tend's engine and provider,
// not the supervisors or the servers) has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkProcessApply measures a real apply on the process provider: 100
// and then 400 new servers of one replica each (a tiny program that
// listens and answers /health), planned, started under their supervisors
// and verified by an HTTP check. The figure is tend's own CPU time per
// server at each size, and their ratio (target: the cost per server at 400
// within 1.3x of that at 100, that is, an apply grows linearly with the
// fleet). Both sizes run in each iteration, so the ratio compares runs made
// under the same load; the metrics are medians over iterations. With
// -short (make bench-smoke) the sizes are 10 and 40.
func BenchmarkProcessApply(b *testing.B) {
	small, large := 100, 400
	if testing.Short() {
		small, large = 10, 40
	}
	bin := buildTiny(b, b.TempDir())
	var perSmall, perLarge, wallLarge []time.Duration
	b.ResetTimer()
	for b.Loop() {
		cpu, _ := applyTiny(b, bin, small)
		perSmall = append(perSmall, cpu/time.Duration(small))
		cpu, wall := applyTiny(b, bin, large)
		perLarge = append(perLarge, cpu/time.Duration(large))
		wallLarge = append(wallLarge, wall)
	}
	b.StopTimer()
	ms := func(d []time.Duration) float64 {
		slices.Sort(d)
		return float64(d[len(d)/2].Microseconds()) / 1000
	}
	s, l := ms(perSmall), ms(perLarge)
	b.ReportMetric(s, fmt.Sprintf("cpu-ms/server@%d", small))
	b.ReportMetric(l, fmt.Sprintf("cpu-ms/server@%d", large))
	b.ReportMetric(l/s, "ratio")
	b.ReportMetric(ms(wallLarge)/1000, fmt.Sprintf("wall-s@%d", large))
}
