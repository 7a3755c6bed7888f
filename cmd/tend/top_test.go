package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tendhq/tend/providers"
)

// topFixture is a sample of three servers: api on docker with one
// replica whose connections are unknown and one that failed to sample,
// web on kubernetes (no Statser), and db desired with no replica.
func topFixture() *topSample {
	return &topSample{
		at: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		rows: []topRow{
			{server: "api", provider: "docker.main", replica: 0, state: providers.StateRunning, sampled: true,
				stats: providers.Stats{CPUPercent: 12.34, MemoryBytes: 3 << 20, MemoryPercent: 1.5, Threads: 9, HasThreads: true}},
			{server: "api", provider: "docker.main", replica: 1, state: providers.StateRunning, sampled: true,
				stats: providers.Stats{CPUPercent: 0.5, MemoryBytes: 1 << 20, MemoryPercent: 0.5, Threads: 3, HasThreads: true, Connections: 2, HasConnections: true}},
			{server: "api", provider: "docker.main", replica: 2, state: providers.StateRunning, err: "stats of api replica 2: the container is gone"},
			{server: "web", provider: "kubernetes.k8s", replica: 0, state: providers.StateRunning},
			{server: "web", provider: "kubernetes.k8s", replica: 1, state: providers.StateCrashing},
		},
		noStats: map[string][]string{"kubernetes.k8s": {"web"}},
		idle:    []string{"db"},
	}
}

func TestTopText(t *testing.T) {
	var buf bytes.Buffer
	if err := topFixture().writeText(&buf); err != nil {
		t.Fatal(err)
	}
	want := `SERVER  REPLICA  STATE        CPU%  MEM     MEM%  THREADS  CONNS
api     0        running      12.3  3.0MiB  1.5   9        -
api     1        running      0.5   1.0MiB  0.5   3        2
api     2        running      -     -       -     -        -
api     total    3/3 running  12.8  4.0MiB  2.0   12       2
web     0        running      -     -       -     -        -
web     1        crashing     -     -       -     -        -
web     total    1/2 running  -     -       -     -        -

kubernetes.k8s: no resource figures (no Statser) for web
api replica 2: stats of api replica 2: the container is gone
db: no replica is observed
`
	if got := buf.String(); got != want {
		t.Errorf("text:\n%s\nwant:\n%s", got, want)
	}
}

func TestTopTextEmpty(t *testing.T) {
	var buf bytes.Buffer
	s := &topSample{noStats: map[string][]string{}, observeErrs: []string{"observing docker.main: the Engine does not answer"}}
	if err := s.writeText(&buf); err != nil {
		t.Fatal(err)
	}
	want := "SERVER  REPLICA  STATE  CPU%  MEM  MEM%  THREADS  CONNS\n\nNo replica is running.\nobserving docker.main: the Engine does not answer\n"
	if buf.String() != want {
		t.Errorf("text %q, want %q", buf.String(), want)
	}
}

func TestTopJSON(t *testing.T) {
	b, err := json.Marshal(topFixture().json())
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		SampledAt string           `json:"sampled_at"`
		Replicas  []map[string]any `json:"replicas"`
		Notes     []string         `json:"notes"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.SampledAt != "2026-01-02T03:04:05Z" {
		t.Errorf("sampled_at %q", got.SampledAt)
	}
	if len(got.Replicas) != 5 {
		t.Fatalf("%d replicas, want 5: %s", len(got.Replicas), b)
	}
	fields := []string{"server", "replica", "provider", "state", "cpu_percent", "memory_bytes", "memory_percent", "threads", "connections"}
	for i, r := range got.Replicas {
		for _, f := range fields {
			if _, ok := r[f]; !ok {
				t.Errorf("replica row %d lacks %q: %v", i, f, r)
			}
		}
	}
	r0, r1, r2 := got.Replicas[0], got.Replicas[1], got.Replicas[2]
	if r0["server"] != "api" || r0["replica"] != 0.0 || r0["state"] != "running" || r0["cpu_percent"] != 12.34 ||
		r0["memory_bytes"] != float64(3<<20) || r0["memory_percent"] != 1.5 || r0["threads"] != 9.0 || r0["connections"] != nil {
		t.Errorf("replica 0: %v, want its figures with connections null", r0)
	}
	if r1["connections"] != 2.0 {
		t.Errorf("replica 1 connections %v, want 2", r1["connections"])
	}
	for _, f := range fields[4:] {
		if r2[f] != nil {
			t.Errorf("replica 2 (no sample) has %s = %v, want null", f, r2[f])
		}
	}
	if r2["error"] != "stats of api replica 2: the container is gone" {
		t.Errorf("replica 2 error %v", r2["error"])
	}
	if _, ok := r0["error"]; ok {
		t.Errorf("replica 0 has an error field: %v", r0)
	}
	// The replicas' errors are in their rows, not in the notes.
	wantNotes := []string{"kubernetes.k8s: no resource figures (no Statser) for web", "db: no replica is observed"}
	if strings.Join(got.Notes, "\n") != strings.Join(wantNotes, "\n") {
		t.Errorf("notes %q, want %q", got.Notes, wantNotes)
	}
}

func TestTopBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0B", 1023: "1023B", 1024: "1.0KiB", 1536: "1.5KiB", 5 << 20: "5.0MiB", 3 << 30: "3.0GiB", 2 << 40: "2.0TiB"} {
		if got := topBytes(n); got != want {
			t.Errorf("topBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
