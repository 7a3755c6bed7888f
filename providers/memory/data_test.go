package memory

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/spec"
)

func start(t *testing.T, p *Provider, server string, replica int) providers.Instance {
	t.Helper()
	d := &providers.Desired{Server: &spec.Server{Name: server, Version: "1.0.0", Replicas: 1}, SpecHash: "h", ManagedBy: "test"}
	r := p.StartReplica(context.Background(), providers.StartRequest{Desired: d, Replica: replica})
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	return r.Instance
}

func TestVolumes(t *testing.T) {
	ctx := context.Background()
	p := New("process.mem")
	a := start(t, p, "db", 0)
	b := start(t, p, "db", 1)

	// A volume nobody wrote is an empty tar.
	var out bytes.Buffer
	if err := p.CopyOut(ctx, a, "/data", &out); err != nil {
		t.Fatal(err)
	}
	if files, err := readTar(out.Bytes()); err != nil || len(files) != 0 {
		t.Fatalf("empty volume: %v, %v", files, err)
	}

	p.SetFile("db", 0, "/data", "state", []byte("v1"))
	out.Reset()
	if err := p.CopyOut(ctx, a, "/data", &out); err != nil {
		t.Fatal(err)
	}
	if err := p.CopyIn(ctx, b, "/data", bytes.NewReader(out.Bytes())); err != nil {
		t.Fatal(err)
	}
	if got, ok := p.File("db", 1, "/data", "state"); !ok || string(got) != "v1" {
		t.Fatalf("replica 1 after copy in: %q, %v", got, ok)
	}

	// A bad stream changes nothing.
	if err := p.CopyIn(ctx, b, "/data", strings.NewReader(strings.Repeat("x", 1024))); err == nil {
		t.Fatal("a bad tar was copied in")
	}
	if got, _ := p.File("db", 1, "/data", "state"); string(got) != "v1" {
		t.Fatalf("a bad copy in changed the volume: %q", got)
	}

	// Volumes outlive the instance, as real volumes do.
	p.StopReplica(ctx, providers.StopRequest{Instance: a})
	if err := p.CopyOut(ctx, a, "/data", &out); err == nil {
		t.Fatal("copy out of a stopped instance")
	}
	start(t, p, "db", 0)
	if got, ok := p.File("db", 0, "/data", "state"); !ok || string(got) != "v1" {
		t.Fatalf("replica 0 after stop and start: %q, %v", got, ok)
	}
}

func TestHaltResume(t *testing.T) {
	ctx := context.Background()
	p := New("process.mem")
	a := start(t, p, "db", 0)
	if err := p.Halt(ctx, a, 0); err != nil {
		t.Fatal(err)
	}
	obs := p.Observe(ctx, providers.ObserveRequest{ManagedBy: "test"})
	if len(obs.Instances) != 1 || obs.Instances[0].State != providers.StateExited {
		t.Fatalf("after halt: %+v", obs.Instances)
	}
	if err := p.Halt(ctx, a, 0); err != nil {
		t.Fatalf("halting a halted replica: %v", err)
	}
	in, err := p.Resume(ctx, a)
	if err != nil || in.State != providers.StateRunning || in.ID != a.ID {
		t.Fatalf("resume: %+v, %v", in, err)
	}
	if strings.Join(p.Halts, ",") != "db/0,db/0" || strings.Join(p.Resumes, ",") != "db/0" {
		t.Fatalf("recorded halts %v, resumes %v", p.Halts, p.Resumes)
	}

	p.ResumeExit["db/0"] = 1
	_ = p.Halt(ctx, a, 0)
	if in, _ := p.Resume(ctx, a); in.State != providers.StateExited {
		t.Fatalf("ResumeExit: %s", in.State)
	}
	if in, _ := p.Resume(ctx, a); in.State != providers.StateRunning {
		t.Fatalf("the second resume: %s", in.State)
	}

	ghost := providers.Instance{Identity: providers.Identity{Server: "nope"}}
	if err := p.Halt(ctx, ghost, 0); err == nil {
		t.Fatal("halt of an unknown instance")
	}
	if _, err := p.Resume(ctx, ghost); err == nil {
		t.Fatal("resume of an unknown instance")
	}
}

func TestExecWritesAndStdin(t *testing.T) {
	ctx := context.Background()
	p := New("process.mem")
	p.ExecStdin = map[string][]byte{}
	p.ExecWrites["migrate"] = []FileWrite{{Replica: 0, Path: "/data", Name: "schema", Data: []byte("2")}}
	d := &providers.Desired{Server: &spec.Server{Name: "db"}}
	if r := p.Exec(ctx, providers.ExecRequest{Desired: d, Command: []string{"migrate"}, Stdin: strings.NewReader("input")}); r.Err != nil || r.ExitCode != 0 {
		t.Fatalf("exec: %+v", r)
	}
	if got, _ := p.File("db", 0, "/data", "schema"); string(got) != "2" {
		t.Fatalf("migrate wrote %q", got)
	}
	if string(p.ExecStdin["migrate"]) != "input" {
		t.Fatalf("stdin recorded: %q", p.ExecStdin["migrate"])
	}
	// A failing task writes nothing.
	p.SetFile("db", 0, "/data", "schema", []byte("1"))
	p.ExecExit["migrate"] = 1
	p.Exec(ctx, providers.ExecRequest{Desired: d, Command: []string{"migrate"}})
	if got, _ := p.File("db", 0, "/data", "schema"); string(got) != "1" {
		t.Fatalf("a failed migrate wrote %q", got)
	}
}
