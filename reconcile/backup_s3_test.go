package reconcile

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/reconcile/backup/s3test"
	"github.com/tendhq/tend/reconcile/state"
)

// objects lists the bucket's objects under prefix, with their content.
func objects(t *testing.T, srv *s3test.Server, prefix string) map[string]string {
	t.Helper()
	c := srv.Client()
	out := map[string]string{}
	for o := range c.ListObjects(context.Background(), srv.Bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		obj, err := c.GetObject(context.Background(), srv.Bucket, o.Key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(obj)
		obj.Close()
		if err != nil {
			t.Fatal(err)
		}
		out[o.Key] = string(b)
	}
	return out
}

// A fleet backs up to a real S3-compatible server, encrypted; its machine
// is lost; a tend with an empty state directory, told the destination is
// read-only, finds the backups there again and restores, writing nothing
// to the bucket.
func TestBackupToS3AndRecoverOnANewMachine(t *testing.T) {
	srv := s3test.Start(t)
	s3Block := func(readOnly bool) string {
		return fmt.Sprintf(`destination    = "s3://%s/fleet"
    encryption_key = secret("backup_key")
    read_only      = %v
    s3 {
      endpoint   = %q
      region     = "us-east-1"
      access_key = %q
      secret_key = secret("s3_secret")
      path_style = true
    }`, srv.Bucket, readOnly, srv.Endpoint, srv.AccessKey)
	}
	h := newBackupHarness(t, fleetParts{backup: s3Block(false)})
	h.secrets["backup_key"] = "correct horse battery staple"
	h.secrets["s3_secret"] = srv.SecretKey
	h.apply()
	h.setData("the data of v1")
	b := h.backup(state.TriggerManual)
	if !strings.HasPrefix(b.Destination, "s3://"+srv.Bucket+"/fleet") || !b.Encrypted {
		t.Fatalf("backup row: %+v", b)
	}
	before := objects(t, srv, "fleet/")
	var names []string
	for k := range before {
		names = append(names, k)
	}
	slices.Sort(names)
	want := []string{"fleet/db/" + b.ID + ".json", "fleet/db/" + b.ID + ".tar.gz.age"}
	if !slices.Equal(names, want) {
		t.Fatalf("bucket holds %q, want %q", names, want)
	}
	for k, v := range before {
		for _, secret := range []string{h.secrets["backup_key"], srv.SecretKey, "the data of v1"} {
			if strings.Contains(v, secret) {
				t.Errorf("object %s holds %q", k, secret)
			}
		}
	}

	// The machine is lost: a new state directory and store, the same
	// replicas (they run elsewhere, or were re-created by tend apply).
	h.writeFleet(fleetParts{backup: s3Block(true)})
	newState := t.TempDir()
	st, err := state.Open(filepath.Join(newState, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	e2 := &Engine{Store: st, Registry: h.eng.Registry, ProvEnv: providers.Env{StateDir: newState, ManagedBy: "test"}, ManagedBy: "test", LoadOptions: h.opts(), Progress: h.progress}
	cfg := h.source().Config
	if _, err := e2.Backup(context.Background(), cfg, BackupRequest{Server: "db", Trigger: state.TriggerManual}); err == nil || !strings.Contains(err.Error(), "read_only") {
		t.Fatalf("a backup to a read-only destination: %v", err)
	}
	added, _, errs := e2.SyncBackups(context.Background(), cfg, "")
	if added != 1 || len(errs) != 0 {
		t.Fatalf("sync from the bucket: %d added, %v", added, errs)
	}
	h.setData("lost")
	res, err := e2.Restore(context.Background(), cfg, RestoreRequest{Server: "db"})
	if err != nil || res.Outcome != RestoreDone || res.Backup.ID != b.ID {
		t.Fatalf("restore from the bucket: %+v, %v", res, err)
	}
	h.wantData("the data of v1")
	// The pre-restore backup went to the new state directory, not to the
	// read-only bucket, and the bucket is as it was.
	if res.PreRestore == nil || !strings.HasPrefix(res.PreRestore.Destination, "file://"+newState) {
		t.Fatalf("pre-restore backup: %+v", res.PreRestore)
	}
	if _, err := os.Stat(filepath.Join(newState, "backups", "db", res.PreRestore.ID+".json")); err != nil {
		t.Errorf("the pre-restore manifest: %v", err)
	}
	after := objects(t, srv, "")
	if len(after) != len(before) {
		t.Errorf("the read-only bucket changed: %d objects before, %d after", len(before), len(after))
	}
	for k, v := range before {
		if after[k] != v {
			t.Errorf("object %s changed", k)
		}
	}
	for _, secret := range []string{h.secrets["backup_key"], srv.SecretKey} {
		if strings.Contains(h.progress.String(), secret) || strings.Contains(h.logs.String(), secret) {
			t.Errorf("a secret shows in the output")
		}
	}
}
