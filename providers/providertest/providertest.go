// Package providertest is the conformance suite every provider must pass
// against its real backend: create, observe, update, drift, kill, scale,
// delete, orphans, foreign objects, idempotence and the optional
// capabilities (Execer, Statser, DataCopier, and DataCopier with Halter: a
// restore).
//
// A provider's test calls Run with a Harness that supplies what differs per
// backend: how to build a server spec whose replicas answer GET /health,
// how to change a live object by hand, how to kill a replica's workload and
// how to create an object tend does not own.
package providertest

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/spec"
)

// Harness is what the suite needs from one backend.
type Harness struct {
	Provider  providers.Provider
	ManagedBy string // a unique identity for this run
	// Server returns a server spec named name at version with replicas
	// replicas whose replicas answer GET /health with 200 and the version
	// in the body on their first port. Calls with the same name must give
	// the same ports, with room for at least replicas+1 replicas.
	Server func(name, version string, replicas int) *spec.Server
	// Tamper changes a live object by hand (a config file, an env file, a
	// container's config) so that Observe must report drift for it.
	Tamper func(t *testing.T, inst providers.Instance)
	// Kill makes a replica's workload die (SIGKILL of the process, docker
	// kill, ...).
	Kill func(t *testing.T, inst providers.Instance)
	// Foreign creates an object of the backend that tend does not own (a
	// process, a container) and returns a check that it still exists, and
	// a cleanup.
	Foreign func(t *testing.T) (alive func() bool, cleanup func())
	Timeout time.Duration // how long to wait for states to settle (default 20s)
	// WholeSet says the backend rolls every replica of a server when its
	// spec changes (a Kubernetes Deployment): after StartReplica of
	// replica i of a new spec, the replicas after i are not expected to
	// keep running the old one. Every replica must still end at the new
	// spec.
	WholeSet bool
	// CopyInMerges says the provider's DataCopier.CopyIn extracts the
	// stream over the volume's content instead of replacing it: files of
	// the volume that are not in the stream stay. The Restore subtest then
	// does not expect a file made after the backup to be gone.
	CopyInMerges bool
	// NoWorkload says the provider runs nothing (the null provider): a
	// replica is a record, with no process to answer, die or be changed
	// by hand. The suite then takes a replica that Observe lists running
	// at the spec hash and version it was started with for one that
	// answers, and one that Observe no longer lists (or lists failed) for
	// one that stopped answering. Tamper and Kill may be nil; the Drift
	// and Kill subtests are then skipped.
	NoWorkload bool
}

// Server names the suite uses.
const (
	webServer     = "conformance-web"
	orphanServer  = "conformance-orphan"
	dataServer    = "conformance-data"
	restoreServer = "conformance-restore"
)

// dataVolumePath is where the DataCopier subtest mounts the volume it adds
// when the harness's spec has none.
const dataVolumePath = "/conformance-data"

type suite struct {
	h       Harness
	timeout time.Duration
	// addrs remembers where each replica of each server answered, so that
	// the suite can check nothing answers there once it is gone.
	addrs map[string]map[int]string
}

// Run runs the conformance subtests against h. The subtests share the
// backend and run in order; a failure of one the rest depend on stops Run.
func Run(t *testing.T, h Harness) {
	t.Helper()
	switch {
	case h.Provider == nil:
		t.Fatal("providertest: Harness.Provider is nil")
	case h.ManagedBy == "":
		t.Fatal("providertest: Harness.ManagedBy is empty")
	case h.Server == nil || h.Foreign == nil:
		t.Fatal("providertest: Harness.Server and Foreign are required")
	case !h.NoWorkload && (h.Tamper == nil || h.Kill == nil):
		t.Fatal("providertest: Harness.Tamper and Kill are required of a provider that runs a workload")
	}
	s := &suite{h: h, timeout: h.Timeout, addrs: map[string]map[int]string{}}
	if s.timeout <= 0 {
		s.timeout = 20 * time.Second
	}
	t.Cleanup(func() { s.stopAll(t) })

	foreignAlive, foreignCleanup := h.Foreign(t)
	t.Cleanup(foreignCleanup)
	if !foreignAlive() {
		t.Fatal("the foreign object is not alive right after Harness.Foreign created it")
	}

	// Create and Observe set up the three replicas the next subtests use.
	if !t.Run("Create", s.testCreate) {
		t.Fatal("creating the server failed; the remaining subtests depend on it")
	}
	if !t.Run("Observe", s.testObserve) {
		t.Fatal("observing the server failed; the remaining subtests depend on it")
	}
	t.Run("Idempotence", s.testIdempotence)
	t.Run("Update", s.testUpdate)
	t.Run("Drift", s.testDrift)
	t.Run("Kill", s.testKill)
	t.Run("Scale", s.testScale)
	t.Run("Execer", s.testExecer)
	t.Run("Statser", s.testStatser)
	t.Run("DataCopier", s.testDataCopier)
	t.Run("Restore", s.testRestore)
	t.Run("Delete", s.testDelete)
	t.Run("Orphan", s.testOrphan)
	t.Run("Foreign", func(t *testing.T) {
		if !foreignAlive() {
			t.Error("the object tend does not own (Harness.Foreign) is gone after the suite ran: the provider touched it")
		}
	})
}

// ---- subtests ----

func (s *suite) testCreate(t *testing.T) {
	d := s.desired(t, webServer, "1.0.0", 3)
	for i := range 3 {
		s.start(t, d, i)
	}
	for i := range 3 {
		s.waitHealthy(t, d, i)
	}
}

func (s *suite) testObserve(t *testing.T) {
	d := s.desired(t, webServer, "1.0.0", 3)
	insts := s.waitRunning(t, webServer, 3)
	for i, inst := range insts {
		s.checkInstance(t, d, inst, i)
	}
}

func (s *suite) testIdempotence(t *testing.T) {
	d := s.desired(t, webServer, "1.0.0", 3)
	a := s.start(t, d, 0)
	b := s.start(t, d, 0)
	if a.SpecHash != d.SpecHash || b.SpecHash != d.SpecHash {
		t.Errorf("StartReplica twice with the same Desired: spec hashes %q and %q, want %q both times", a.SpecHash, b.SpecHash, d.SpecHash)
	}
	insts := s.waitRunning(t, webServer, 3)
	for i, inst := range insts {
		if inst.SpecHash != d.SpecHash {
			t.Errorf("after starting replica 0 twice, Observe shows replica %d with spec hash %q, want %q", i, inst.SpecHash, d.SpecHash)
		}
	}
	s.waitHealthy(t, d, 0)
}

func (s *suite) testUpdate(t *testing.T) {
	old := s.desired(t, webServer, "1.0.0", 3)
	d := s.desired(t, webServer, "2.0.0", 3)
	if d.SpecHash == old.SpecHash {
		t.Fatalf("Harness.Server gives the same spec hash %s for versions 1.0.0 and 2.0.0", d.SpecHash)
	}
	for i := range 3 {
		inst := s.start(t, d, i)
		if inst.SpecHash != d.SpecHash || inst.Version != "2.0.0" {
			t.Errorf("StartReplica of replica %d at 2.0.0 returned spec hash %q version %q, want %q and 2.0.0", i, inst.SpecHash, inst.Version, d.SpecHash)
		}
		s.waitHealthy(t, d, i)
		// The replicas not yet updated keep running the old version.
		for j := i + 1; j < 3 && !s.h.WholeSet; j++ {
			s.waitHealthy(t, old, j)
		}
	}
	insts := s.waitRunning(t, webServer, 3)
	for i, inst := range insts {
		s.checkInstance(t, d, inst, i)
	}
}

func (s *suite) testDrift(t *testing.T) {
	if s.h.Tamper == nil {
		t.Skipf("%s runs nothing that could be changed by hand (Harness.NoWorkload)", s.h.Provider.Type())
	}
	d := s.desired(t, webServer, "2.0.0", 3)
	insts := s.waitRunning(t, webServer, 3)
	for _, inst := range insts {
		if len(inst.Drift) != 0 {
			t.Fatalf("replica %d reports drift before anything was changed by hand: %q", inst.Replica, inst.Drift)
		}
	}
	s.h.Tamper(t, insts[1])
	got := s.observeServer(t, webServer)
	if len(got) != 3 {
		t.Fatalf("after Tamper, Observe lists %d instances of %s, want 3: %s", len(got), webServer, describe(got))
	}
	for _, inst := range got {
		if inst.Replica == 1 && len(inst.Drift) == 0 {
			t.Errorf("replica 1 was changed by hand (Harness.Tamper) but Observe reports no drift for it")
		}
		if inst.Replica != 1 && len(inst.Drift) != 0 {
			t.Errorf("only replica 1 was changed by hand, but replica %d reports drift %q", inst.Replica, inst.Drift)
		}
	}
	// Starting the replica again puts it back as tend would create it.
	s.start(t, d, 1)
	s.waitHealthy(t, d, 1)
	for _, inst := range s.waitRunning(t, webServer, 3) {
		if len(inst.Drift) != 0 {
			t.Errorf("after StartReplica replaced the tampered replica, replica %d still reports drift %q", inst.Replica, inst.Drift)
		}
	}
}

func (s *suite) testKill(t *testing.T) {
	if s.h.Kill == nil {
		t.Skipf("%s runs nothing that could die (Harness.NoWorkload)", s.h.Provider.Type())
	}
	d := s.desired(t, webServer, "2.0.0", 3)
	before := s.observeOne(t, webServer, 2)
	s.h.Kill(t, before)

	// The provider must notice: a failed or starting state, or a restart.
	var noticed providers.Instance
	s.eventually(t, "the provider to notice the killed replica 2 (exited, crashing, missing, starting, or Restarts above "+strconv.Itoa(before.Restarts)+")", func() error {
		inst, ok := s.find(t, webServer, 2)
		if !ok {
			return errors.New("observe does not list replica 2 any more")
		}
		noticed = inst
		if inst.State.Failed() || inst.State == providers.StateStarting || inst.Restarts > before.Restarts {
			return nil
		}
		return fmt.Errorf("replica 2 is %s with %d restarts (%s)", inst.State, inst.Restarts, inst.Message)
	})
	t.Logf("after the kill, replica 2 was observed %s with %d restarts (%s)", noticed.State, noticed.Restarts, noticed.Message)

	// Then it either answers again or is reported failed, steadily (a
	// failed state that lasts failedFor, not one between a death and a
	// restart).
	const failedFor = 5 * time.Second
	var failedSince time.Time
	s.eventually(t, "replica 2 to answer again, or to be reported failed for "+failedFor.String()+", after the kill", func() error {
		inst, ok := s.find(t, webServer, 2)
		if !ok {
			return errors.New("observe does not list replica 2 any more")
		}
		if !inst.State.Failed() {
			failedSince = time.Time{}
		} else if failedSince.IsZero() {
			failedSince = time.Now()
		}
		switch {
		case inst.State == providers.StateRunning:
			if err := s.health(inst, d); err != nil {
				return err
			}
			t.Logf("replica 2 answers again (restarts %d)", inst.Restarts)
			return nil
		case inst.State.Failed() && time.Since(failedSince) >= failedFor:
			t.Logf("replica 2 stays %s (%s)", inst.State, inst.Message)
			return nil
		}
		return fmt.Errorf("replica 2 is %s (%s)", inst.State, inst.Message)
	})
	// The others were not touched.
	for i := range 2 {
		s.waitHealthy(t, d, i)
	}
}

func (s *suite) testScale(t *testing.T) {
	// Down: stop the highest replica.
	s.stop(t, s.observeOne(t, webServer, 2))
	insts := s.observeServer(t, webServer)
	if len(insts) != 2 || insts[0].Replica != 0 || insts[1].Replica != 1 {
		t.Fatalf("after StopReplica of replica 2, Observe lists %s, want replicas 0 and 1", describe(insts))
	}
	s.waitGone(t, webServer, 2)
	// Up: start replicas 2 and 3.
	d4 := s.desired(t, webServer, "2.0.0", 4)
	for _, i := range []int{2, 3} {
		s.start(t, d4, i)
		s.waitHealthy(t, d4, i)
	}
	insts = s.waitRunning(t, webServer, 4)
	for i, inst := range insts {
		s.checkInstance(t, d4, inst, i)
	}
}

func (s *suite) testExecer(t *testing.T) {
	ex, ok := s.h.Provider.(providers.Execer)
	if !ok {
		t.Skipf("%s does not implement providers.Execer", s.h.Provider.Type())
	}
	d := s.desired(t, webServer, "2.0.0", 4)
	inst := s.observeOne(t, webServer, 0)
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	res := ex.Exec(ctx, providers.ExecRequest{
		Desired: d, Instance: &inst,
		Command: []string{"sh", "-c", "echo hi"},
		Stdout:  &stdout, Stderr: &stderr,
	})
	if res.Err != nil {
		t.Fatalf("Exec sh -c 'echo hi' in replica 0: %v (stderr %q)", res.Err, stderr.String())
	}
	if res.ExitCode != 0 {
		t.Errorf("Exec sh -c 'echo hi': exit code %d, want 0 (stderr %q)", res.ExitCode, stderr.String())
	}
	if strings.TrimSpace(stdout.String()) != "hi" {
		t.Errorf("Exec sh -c 'echo hi': stdout %q, want \"hi\\n\"", stdout.String())
	}
}

func (s *suite) testStatser(t *testing.T) {
	st, ok := s.h.Provider.(providers.Statser)
	if !ok {
		t.Skipf("%s does not implement providers.Statser", s.h.Provider.Type())
	}
	inst := s.observeOne(t, webServer, 0)
	// A connection held open to the replica while it is sampled: a
	// provider that counts connections must count it.
	a, err := s.addr(inst, s.desired(t, webServer, inst.Version, 1))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", a, s.timeout)
	if err != nil {
		t.Fatalf("connect to %s replica 0 at %s: %v", webServer, a, err)
	}
	defer conn.Close()
	var got providers.Stats
	s.eventually(t, "Stats of replica 0 to report memory, threads and the open connection", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
		defer cancel()
		var err error
		if got, err = st.Stats(ctx, inst); err != nil {
			return fmt.Errorf("stats: %w", err)
		}
		if got.MemoryBytes <= 0 {
			return fmt.Errorf("stats report memory %d bytes, want more than 0 (%+v)", got.MemoryBytes, got)
		}
		// Every Statser here counts the threads of a running replica.
		if !got.HasThreads || got.Threads < 1 {
			return fmt.Errorf("stats report threads %d (known %v), want at least 1 (%+v)", got.Threads, got.HasThreads, got)
		}
		// The replica accepts the connection in its own time.
		if got.HasConnections && got.Connections < 1 {
			return fmt.Errorf("stats report %d connections, want at least the 1 open to it (%+v)", got.Connections, got)
		}
		return nil
	})
	if got.CPUPercent < 0 || got.MemoryPercent < 0 {
		t.Errorf("Stats reports negative use: %+v", got)
	}
	if !got.HasConnections {
		t.Logf("%s does not count the replica's connections here", s.h.Provider.Type())
	}
}

func (s *suite) testDataCopier(t *testing.T) {
	dc, ok := s.h.Provider.(providers.DataCopier)
	if !ok {
		t.Skipf("%s does not implement providers.DataCopier", s.h.Provider.Type())
	}
	srv := s.h.Server(dataServer, "1.0.0", 1)
	if len(srv.Volumes) == 0 {
		srv.Volumes = []*spec.Volume{{Name: "conformance", Path: dataVolumePath}}
	}
	vpath := srv.Volumes[0].Path
	d := s.desiredOf(srv)
	inst := s.start(t, d, 0)
	s.waitHealthy(t, d, 0)

	want := []byte("conformance data " + s.h.ManagedBy + "\n")
	var in bytes.Buffer
	tw := tar.NewWriter(&in)
	if err := tw.WriteHeader(&tar.Header{Name: "hello.txt", Mode: 0o644, Size: int64(len(want)), ModTime: time.Now(), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write(want)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	if err := dc.CopyIn(ctx, inst, vpath, &in); err != nil {
		t.Fatalf("CopyIn to volume %s: %v", vpath, err)
	}
	var out bytes.Buffer
	if err := dc.CopyOut(ctx, inst, vpath, &out); err != nil {
		t.Fatalf("CopyOut of volume %s: %v", vpath, err)
	}
	var names []string
	tr := tar.NewReader(&out)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("CopyOut of volume %s wrote a bad tar stream: %v (entries so far %q)", vpath, err, names)
		}
		name := strings.TrimPrefix(strings.TrimPrefix(hdr.Name, "./"), "/")
		names = append(names, name)
		if name == "hello.txt" || strings.HasSuffix(name, "/hello.txt") {
			got, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("hello.txt copied out of %s holds %q, want %q as copied in", vpath, got, want)
			}
			return
		}
	}
	t.Errorf("CopyOut of volume %s has no hello.txt, which CopyIn put there; entries: %q", vpath, names)
}

// testRestore is what a restore does with a replica: back its volume up
// (CopyOut), let it change, halt the replica, copy the backup in, resume
// it; the replica must be the same one, healthy, with the backed-up data.
func (s *suite) testRestore(t *testing.T) {
	dc, isCopier := s.h.Provider.(providers.DataCopier)
	h, isHalter := s.h.Provider.(providers.Halter)
	var missing []string
	if !isCopier {
		missing = append(missing, "providers.DataCopier")
	}
	if !isHalter {
		missing = append(missing, "providers.Halter")
	}
	if len(missing) > 0 {
		t.Skipf("%s does not implement %s", s.h.Provider.Type(), strings.Join(missing, " and "))
	}
	srv := s.h.Server(restoreServer, "1.0.0", 1)
	if len(srv.Volumes) == 0 {
		srv.Volumes = []*spec.Volume{{Name: "conformance", Path: dataVolumePath}}
	}
	vpath := srv.Volumes[0].Path
	d := s.desiredOf(srv)
	s.start(t, d, 0)
	s.waitHealthy(t, d, 0)
	inst := s.waitRunning(t, restoreServer, 1)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 4*s.timeout)
	defer cancel()

	// The data at backup time, and the backup.
	backedUp := []byte("backed up " + s.h.ManagedBy + "\n")
	if err := dc.CopyIn(ctx, inst, vpath, tarOf(t, tarFile{"state.txt", backedUp, 0o640})); err != nil {
		t.Fatalf("CopyIn to volume %s: %v", vpath, err)
	}
	var backup bytes.Buffer
	if err := dc.CopyOut(ctx, inst, vpath, &backup); err != nil {
		t.Fatalf("CopyOut of volume %s: %v", vpath, err)
	}
	if got := readTar(t, bytes.NewReader(backup.Bytes())); got["state.txt"].content == nil {
		t.Fatalf("the backup (CopyOut of %s) has no state.txt, which CopyIn put there; entries: %q", vpath, names(got))
	}

	// What changes after the backup.
	if err := dc.CopyIn(ctx, inst, vpath, tarOf(t,
		tarFile{"state.txt", []byte("changed after the backup\n"), 0o644},
		tarFile{"new.txt", []byte("made after the backup\n"), 0o644},
	)); err != nil {
		t.Fatalf("CopyIn to volume %s: %v", vpath, err)
	}

	// The restore: halt, copy in, resume.
	if err := h.Halt(ctx, inst, time.Second); err != nil {
		t.Fatalf("Halt %s replica 0: %v", restoreServer, err)
	}
	halted := s.observeOne(t, restoreServer, 0)
	if !halted.State.Failed() {
		t.Errorf("after Halt, Observe reports %s replica 0 %s (%s), want a failed state (exited or missing)", restoreServer, halted.State, halted.Message)
	}
	s.waitGone(t, restoreServer, 0)
	if err := h.Halt(ctx, inst, time.Second); err != nil {
		t.Errorf("Halt of the halted %s replica 0: %v, want no error", restoreServer, err)
	}
	if err := dc.CopyIn(ctx, inst, vpath, bytes.NewReader(backup.Bytes())); err != nil {
		t.Fatalf("CopyIn of the backup into the halted replica's volume %s: %v", vpath, err)
	}
	resumed, err := h.Resume(ctx, inst)
	if err != nil {
		t.Fatalf("Resume %s replica 0: %v", restoreServer, err)
	}
	if resumed.ManagedBy != inst.ManagedBy || resumed.Server != inst.Server || resumed.Replica != inst.Replica || resumed.SpecHash != inst.SpecHash {
		t.Errorf("Resume returned %+v, want the halted replica %+v", resumed.Identity, inst.Identity)
	}
	if resumed.State.Failed() {
		t.Errorf("Resume returned %s replica 0 %s (%s)", restoreServer, resumed.State, resumed.Message)
	}
	s.waitHealthy(t, d, 0)
	after := s.waitRunning(t, restoreServer, 1)[0]
	s.checkInstance(t, d, after, 0)
	if after.Identity != inst.Identity {
		t.Errorf("after Resume, Observe reports identity %+v, want the halted replica's %+v", after.Identity, inst.Identity)
	}

	// The data is the backup's.
	var out bytes.Buffer
	if err := dc.CopyOut(ctx, after, vpath, &out); err != nil {
		t.Fatalf("CopyOut of volume %s after the restore: %v", vpath, err)
	}
	got := readTar(t, &out)
	switch f := got["state.txt"]; {
	case f.content == nil:
		t.Errorf("after the restore, volume %s has no state.txt; entries: %q", vpath, names(got))
	default:
		if !bytes.Equal(f.content, backedUp) {
			t.Errorf("after the restore, state.txt holds %q, want %q as backed up", f.content, backedUp)
		}
		if f.mode != 0o640 {
			t.Errorf("after the restore, state.txt has mode %04o, want 0640 as backed up", f.mode)
		}
	}
	if _, ok := got["new.txt"]; ok && !s.h.CopyInMerges {
		t.Errorf("after the restore, volume %s still holds new.txt, made after the backup: CopyIn must replace the volume's content (or the harness must set CopyInMerges)", vpath)
	}

	// Resume of a running replica changes nothing.
	again, err := h.Resume(ctx, after)
	if err != nil {
		t.Fatalf("Resume of the running %s replica 0: %v", restoreServer, err)
	}
	if again.ID != after.ID || !again.StartedAt.Equal(after.StartedAt) {
		t.Errorf("Resume of the running %s replica 0 returned ID %s started at %v, want it left alone (ID %s started at %v)", restoreServer, again.ID, again.StartedAt, after.ID, after.StartedAt)
	}
	if now := s.observeOne(t, restoreServer, 0); now.ID != after.ID || now.State != providers.StateRunning {
		t.Errorf("after Resume of the running replica, Observe reports ID %s %s (%s), want ID %s running", now.ID, now.State, now.Message, after.ID)
	}
	s.stop(t, after)
	s.waitGone(t, restoreServer, 0)
}

// tarFile is one regular file of a tar stream the suite writes.
type tarFile struct {
	name    string
	content []byte
	mode    int64
}

func tarOf(t *testing.T, files ...tarFile) io.Reader {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		hdr := &tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.content)), ModTime: time.Now(), Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.content); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf
}

// tarEntry is one entry of a tar stream a provider wrote: the content of a
// regular file (nil for other entries) and the permission bits.
type tarEntry struct {
	content []byte
	mode    os.FileMode
}

// readTar reads a tar stream into its entries, by name without a leading
// "./" or "/" or a trailing "/".
func readTar(t *testing.T, r io.Reader) map[string]tarEntry {
	t.Helper()
	out := map[string]tarEntry{}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("a bad tar stream: %v (entries so far %q)", err, names(out))
		}
		name := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(hdr.Name, "./"), "/"), "/")
		e := tarEntry{mode: os.FileMode(hdr.Mode).Perm()}
		if hdr.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatalf("read %s from a tar stream: %v", hdr.Name, err)
			}
			e.content = b
			if e.content == nil {
				e.content = []byte{}
			}
		}
		out[name] = e
	}
}

func names(entries map[string]tarEntry) []string {
	out := make([]string, 0, len(entries))
	for n := range entries {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func (s *suite) testDelete(t *testing.T) {
	insts := s.observeServer(t, webServer)
	if len(insts) == 0 {
		t.Fatalf("Observe lists no instance of %s to delete", webServer)
	}
	for _, inst := range insts {
		s.stop(t, inst)
	}
	if got := s.observeServer(t, webServer); len(got) != 0 {
		t.Errorf("after StopReplica of every replica, Observe still lists %s", describe(got))
	}
	for i := range s.addrs[webServer] {
		s.waitGone(t, webServer, i)
	}
}

func (s *suite) testOrphan(t *testing.T) {
	d := s.desired(t, orphanServer, "1.0.0", 1)
	s.start(t, d, 0)
	s.waitHealthy(t, d, 0)
	// The server is no longer desired: nothing tells the provider, which
	// must still list it (pruning is the engine's job).
	res := s.h.Provider.Observe(context.Background(), providers.ObserveRequest{ManagedBy: s.h.ManagedBy})
	if res.Err != nil {
		t.Fatalf("Observe: %v", res.Err)
	}
	var orphan *providers.Instance
	for i := range res.Instances {
		if res.Instances[i].Server == orphanServer {
			orphan = &res.Instances[i]
		}
	}
	if orphan == nil {
		t.Fatalf("Observe for %s does not list the orphaned server %s: %s", s.h.ManagedBy, orphanServer, describe(res.Instances))
	}
	if orphan.ManagedBy != s.h.ManagedBy || orphan.SpecHash != d.SpecHash {
		t.Errorf("orphan identity %+v, want managed by %s with spec hash %s", orphan.Identity, s.h.ManagedBy, d.SpecHash)
	}
	// Observe with a server filter lists that server's instances and no
	// other's: the engine checks one server through it during an apply,
	// and must not pay for, or be confused by, the rest of the fleet.
	for _, c := range []struct {
		server string
		want   int
	}{{orphanServer, 1}, {webServer, 0}} {
		res := s.h.Provider.Observe(context.Background(), providers.ObserveRequest{ManagedBy: s.h.ManagedBy, Server: c.server})
		if res.Err != nil {
			t.Fatalf("Observe of %s alone: %v", c.server, res.Err)
		}
		if len(res.Instances) != c.want {
			t.Errorf("Observe of %s alone lists %s; want %d instance(s) of it", c.server, describe(res.Instances), c.want)
		}
		for _, in := range res.Instances {
			if in.Server != c.server || in.ID != orphan.ID {
				t.Errorf("Observe of %s alone lists %s replica %d (%s)", c.server, in.Server, in.Replica, in.ID)
			}
		}
	}
	// Pruning it: StopReplica of what Observe listed, with nothing else.
	s.stop(t, providers.Instance{Identity: orphan.Identity, ID: orphan.ID, Provider: orphan.Provider, Host: orphan.Host, Ports: orphan.Ports})
	if got := s.observeServer(t, orphanServer); len(got) != 0 {
		t.Errorf("after StopReplica of the orphan, Observe still lists %s", describe(got))
	}
	s.waitGone(t, orphanServer, 0)
}

// ---- helpers ----

func (s *suite) desired(t *testing.T, name, version string, replicas int) *providers.Desired {
	t.Helper()
	srv := s.h.Server(name, version, replicas)
	if srv == nil {
		t.Fatalf("Harness.Server(%q, %q, %d) returned nil", name, version, replicas)
	}
	if srv.Name != name || srv.Version != version || len(srv.Ports) == 0 {
		t.Fatalf("Harness.Server(%q, %q, %d) returned name %q version %q with %d ports; want the name, the version and a port", name, version, replicas, srv.Name, srv.Version, len(srv.Ports))
	}
	return s.desiredOf(srv)
}

func (s *suite) desiredOf(srv *spec.Server) *providers.Desired {
	return &providers.Desired{
		Server:    srv,
		SpecHash:  spec.RuntimeHash(srv.Fields()),
		Revision:  "conformance",
		ManagedBy: s.h.ManagedBy,
	}
}

func (s *suite) start(t *testing.T, d *providers.Desired, replica int) providers.Instance {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	res := s.h.Provider.StartReplica(ctx, providers.StartRequest{Desired: d, Replica: replica})
	if res.Err != nil {
		t.Fatalf("StartReplica %s replica %d (version %s): %v", d.Server.Name, replica, d.Server.Version, res.Err)
	}
	if res.Instance.Server != d.Server.Name || res.Instance.Replica != replica {
		t.Errorf("StartReplica %s replica %d returned an instance of %s replica %d", d.Server.Name, replica, res.Instance.Server, res.Instance.Replica)
	}
	if res.Instance.State.Failed() {
		t.Fatalf("StartReplica %s replica %d: the replica is %s at once (%s)", d.Server.Name, replica, res.Instance.State, res.Instance.Message)
	}
	return res.Instance
}

func (s *suite) stop(t *testing.T, inst providers.Instance) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	if res := s.h.Provider.StopReplica(ctx, providers.StopRequest{Instance: inst, Grace: time.Second}); res.Err != nil {
		t.Fatalf("StopReplica %s replica %d: %v", inst.Server, inst.Replica, res.Err)
	}
}

// stopAll stops every instance Observe lists for the run's identity.
func (s *suite) stopAll(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*s.timeout)
	defer cancel()
	res := s.h.Provider.Observe(ctx, providers.ObserveRequest{ManagedBy: s.h.ManagedBy})
	if res.Err != nil {
		t.Errorf("cleanup: Observe: %v", res.Err)
		return
	}
	for _, inst := range res.Instances {
		if r := s.h.Provider.StopReplica(ctx, providers.StopRequest{Instance: inst, Grace: time.Second}); r.Err != nil {
			t.Errorf("cleanup: StopReplica %s replica %d: %v", inst.Server, inst.Replica, r.Err)
		}
	}
}

// observeServer returns the instances of one server, from one Observe of
// everything the run's identity owns, checked for order and ownership.
func (s *suite) observeServer(t *testing.T, server string) []providers.Instance {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	res := s.h.Provider.Observe(ctx, providers.ObserveRequest{ManagedBy: s.h.ManagedBy})
	if res.Err != nil {
		t.Fatalf("Observe: %v", res.Err)
	}
	var out []providers.Instance
	for _, inst := range res.Instances {
		if inst.ManagedBy != s.h.ManagedBy {
			t.Errorf("Observe for %s lists an instance managed by %q: %s/%d", s.h.ManagedBy, inst.ManagedBy, inst.Server, inst.Replica)
		}
		if inst.Server == server {
			out = append(out, inst)
		}
	}
	for i := 1; i < len(out); i++ {
		if out[i].Replica == out[i-1].Replica {
			t.Errorf("Observe lists replica %d of %s twice: %s", out[i].Replica, server, describe(out))
		} else if out[i].Replica < out[i-1].Replica {
			t.Errorf("Observe does not sort instances by replica: %s", describe(out))
		}
	}
	return out
}

func (s *suite) find(t *testing.T, server string, replica int) (providers.Instance, bool) {
	t.Helper()
	for _, inst := range s.observeServer(t, server) {
		if inst.Replica == replica {
			return inst, true
		}
	}
	return providers.Instance{}, false
}

func (s *suite) observeOne(t *testing.T, server string, replica int) providers.Instance {
	t.Helper()
	inst, ok := s.find(t, server, replica)
	if !ok {
		t.Fatalf("Observe does not list %s replica %d", server, replica)
	}
	return inst
}

// waitRunning waits until Observe lists exactly replicas 0..n-1 of server,
// all running, and returns them.
func (s *suite) waitRunning(t *testing.T, server string, n int) []providers.Instance {
	t.Helper()
	var insts []providers.Instance
	s.eventually(t, fmt.Sprintf("Observe to list %d running replicas of %s", n, server), func() error {
		insts = s.observeServer(t, server)
		if len(insts) != n {
			return fmt.Errorf("observe lists %d instances, want %d: %s", len(insts), n, describe(insts))
		}
		for i, inst := range insts {
			if inst.Replica != i {
				return fmt.Errorf("observe lists replicas %s, want 0..%d", describe(insts), n-1)
			}
			if inst.State != providers.StateRunning {
				return fmt.Errorf("replica %d is %s (%s)", i, inst.State, inst.Message)
			}
		}
		return nil
	})
	return insts
}

// checkInstance checks an observed instance against the desired server.
func (s *suite) checkInstance(t *testing.T, d *providers.Desired, inst providers.Instance, replica int) {
	t.Helper()
	want := d.Identity(replica)
	got := inst.Identity
	if got.ManagedBy != want.ManagedBy || got.Server != want.Server || got.Replica != want.Replica ||
		got.SpecHash != want.SpecHash || got.Version != want.Version {
		t.Errorf("replica %d: observed identity %+v, want %+v", replica, got, want)
	}
	if got.Revision != want.Revision {
		t.Errorf("replica %d: observed revision %q, want %q", replica, got.Revision, want.Revision)
	}
	if inst.State != providers.StateRunning {
		t.Errorf("replica %d: state %s (%s), want running", replica, inst.State, inst.Message)
	}
	if inst.ID == "" {
		t.Errorf("replica %d: observed with no ID", replica)
	}
	for name := range providers.ReplicaPorts(d.Server, replica) {
		if inst.Ports[name] <= 0 {
			t.Errorf("replica %d: observed ports %v lack port %q", replica, inst.Ports, name)
		}
	}
	if len(inst.Drift) != 0 {
		t.Errorf("replica %d: drift %q, nothing was changed by hand", replica, inst.Drift)
	}
}

// addr is where the replica's first port is reached.
func (s *suite) addr(inst providers.Instance, d *providers.Desired) (string, error) {
	name := d.Server.Ports[0].Name
	port := inst.Ports[name]
	if port <= 0 {
		return "", fmt.Errorf("%s replica %d is observed with no port %q (ports %v)", inst.Server, inst.Replica, name, inst.Ports)
	}
	host := inst.Host
	if host == "" {
		host = "127.0.0.1"
	}
	a := net.JoinHostPort(host, strconv.Itoa(port))
	if s.addrs[inst.Server] == nil {
		s.addrs[inst.Server] = map[int]string{}
	}
	s.addrs[inst.Server][inst.Replica] = a
	return a, nil
}

// health checks that the replica answers /health with d's version.
func (s *suite) health(inst providers.Instance, d *providers.Desired) error {
	if s.h.NoWorkload {
		if inst.State != providers.StateRunning || inst.SpecHash != d.SpecHash || inst.Version != d.Server.Version {
			return fmt.Errorf("%s replica %d is observed %s at spec hash %q version %q, want running at %q version %q",
				inst.Server, inst.Replica, inst.State, inst.SpecHash, inst.Version, d.SpecHash, d.Server.Version)
		}
		return nil
	}
	a, err := s.addr(inst, d)
	if err != nil {
		return err
	}
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + a + "/health")
	if err != nil {
		return fmt.Errorf("%s replica %d: GET /health on %s: %w", inst.Server, inst.Replica, a, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), d.Server.Version) {
		return fmt.Errorf("%s replica %d: GET /health on %s answers %d %q, want 200 with %q", inst.Server, inst.Replica, a, resp.StatusCode, b, d.Server.Version)
	}
	return nil
}

// waitHealthy waits until the replica is observed and answers /health with
// d's version.
func (s *suite) waitHealthy(t *testing.T, d *providers.Desired, replica int) {
	t.Helper()
	s.eventually(t, fmt.Sprintf("%s replica %d to answer /health with %s", d.Server.Name, replica, d.Server.Version), func() error {
		inst, ok := s.find(t, d.Server.Name, replica)
		if !ok {
			return fmt.Errorf("observe does not list %s replica %d", d.Server.Name, replica)
		}
		return s.health(inst, d)
	})
}

// waitGone waits until nothing answers where the replica answered.
func (s *suite) waitGone(t *testing.T, server string, replica int) {
	t.Helper()
	if s.h.NoWorkload {
		s.eventually(t, fmt.Sprintf("Observe to list %s replica %d no more, or failed", server, replica), func() error {
			if inst, ok := s.find(t, server, replica); ok && !inst.State.Failed() {
				return fmt.Errorf("observe still lists it %s", inst.State)
			}
			return nil
		})
		return
	}
	a, ok := s.addrs[server][replica]
	if !ok {
		return
	}
	s.eventually(t, fmt.Sprintf("%s replica %d to stop answering on %s", server, replica, a), func() error {
		c := http.Client{Timeout: time.Second}
		resp, err := c.Get("http://" + a + "/health")
		if err != nil {
			return nil
		}
		resp.Body.Close()
		return fmt.Errorf("%s still answers %d after StopReplica", a, resp.StatusCode)
	})
}

// eventually retries f until it returns nil, for at most the timeout.
func (s *suite) eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(s.timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s: %v", s.timeout, what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func describe(insts []providers.Instance) string {
	if len(insts) == 0 {
		return "[]"
	}
	parts := make([]string, len(insts))
	for i, inst := range insts {
		parts[i] = fmt.Sprintf("%s/%d(%s, hash %s)", inst.Server, inst.Replica, inst.State, inst.SpecHash)
	}
	return "[" + strings.Join(parts, " ") + "]"
}
