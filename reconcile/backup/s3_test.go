package backup

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/tendhq/tend/reconcile/backup/s3test"
	"github.com/tendhq/tend/spec"
)

func resolveS3(t *testing.T, url string, cfg *spec.BackupS3) Destination {
	t.Helper()
	d, err := Resolve(&spec.Backup{Destination: url, S3: cfg}, "")
	if err != nil {
		t.Fatalf("Resolve(%s): %v", url, err)
	}
	return d
}

func TestS3Destination(t *testing.T) {
	srv := s3test.Start(t)
	for _, prefix := range []string{"/tend/prod", ""} {
		t.Run("prefix="+prefix, func(t *testing.T) {
			url := "s3://" + srv.Bucket + prefix
			d := resolveS3(t, url, srv.Config())
			if want := url + " (" + srv.Endpoint + ")"; d.URL() != want {
				t.Errorf("URL() = %q, want %q", d.URL(), want)
			}
			testDestination(t, d)

			// The objects are where the prefix says; no upload that failed
			// is left unfinished.
			ctx := context.Background()
			client := srv.Client()
			key := strings.TrimPrefix(prefix+"/trip/web/1.tar.gz", "/")
			if _, err := client.StatObject(ctx, srv.Bucket, key, minio.StatObjectOptions{}); err != nil {
				t.Errorf("the object %s: %v", key, err)
			}
			// 20 MiB went up as two parts of 16 MiB and 4 MiB.
			key = strings.TrimPrefix(prefix+"/large/big.tar.gz", "/")
			if info, err := client.StatObject(ctx, srv.Bucket, key, minio.StatObjectOptions{}); err != nil || !strings.HasSuffix(info.ETag, "-2") {
				t.Errorf("the object %s: ETag %q, %v; want a multipart ETag of 2 parts", key, info.ETag, err)
			}
			for u := range client.ListIncompleteUploads(ctx, srv.Bucket, "", true) {
				if u.Err != nil {
					t.Fatalf("listing unfinished uploads: %v", u.Err)
				}
				t.Errorf("an unfinished upload of %s is left", u.Key)
			}
		})
	}
}

func TestS3FromEnvironment(t *testing.T) {
	srv := s3test.Start(t)
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	cfg := srv.Config()
	cfg.AccessKey, cfg.SecretKey = spec.Value{}, spec.Value{}
	d := resolveS3(t, "s3://"+srv.Bucket+"/env", cfg)
	if err := d.Put(context.Background(), "a", strings.NewReader("x")); err != nil {
		t.Fatalf("Put with credentials from the environment: %v", err)
	}
	if !strings.Contains(d.URL(), srv.Endpoint) || strings.Contains(d.URL(), srv.AccessKey) {
		t.Errorf("URL() = %q, want the endpoint and no credential", d.URL())
	}
}

func TestS3WrongCredentials(t *testing.T) {
	srv := s3test.Start(t)
	ctx := context.Background()
	wrong := "wrong" + srv.SecretKey[5:]
	for _, access := range []string{srv.AccessKey, "nobody"} {
		cfg := srv.Config()
		cfg.AccessKey, cfg.SecretKey = spec.Plain(access), spec.Sensitive(wrong)
		d := resolveS3(t, "s3://"+srv.Bucket+"/p", cfg)
		_, listErr := d.List(ctx, "")
		_, openErr := d.Open(ctx, "a")
		errs := map[string]error{
			"Put":    d.Put(ctx, "a", bytes.NewReader(make([]byte, 100))),
			"Open":   openErr,
			"List":   listErr,
			"Delete": d.Delete(ctx, "a"),
		}
		for op, err := range errs {
			if err == nil {
				t.Errorf("%s with a wrong secret key (access key %s): no error", op, access)
				continue
			}
			if errors.Is(err, ErrNotExist) {
				t.Errorf("%s with a wrong secret key: %v, not ErrNotExist", op, err)
			}
			msg := err.Error()
			if strings.Contains(msg, wrong) || strings.Contains(msg, srv.SecretKey) {
				t.Errorf("%s: the error shows the secret key: %s", op, msg)
			}
			if !strings.Contains(msg, srv.Endpoint) {
				t.Errorf("%s: the error does not name the endpoint: %s", op, msg)
			}
		}
		t.Logf("access key %s: Put says: %v", access, errs["Put"])
	}
}

func TestS3MissingBucket(t *testing.T) {
	srv := s3test.Start(t)
	ctx := context.Background()
	d := resolveS3(t, "s3://no-such-bucket/p", srv.Config())
	_, listErr := d.List(ctx, "")
	for op, err := range map[string]error{
		"Put":  d.Put(ctx, "a", strings.NewReader("x")),
		"List": listErr,
	} {
		if err == nil {
			t.Errorf("%s to a missing bucket: no error", op)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, `bucket "no-such-bucket" does not exist at `+srv.Endpoint) {
			t.Errorf("%s to a missing bucket: %q, want it to name the bucket and the endpoint", op, msg)
		}
	}
}

func TestS3URL(t *testing.T) {
	cases := []struct {
		url  string
		cfg  *spec.BackupS3
		want string
	}{
		{"s3://b/p", nil, "s3://b/p"},
		{"s3://b", &spec.BackupS3{Region: "eu-west-1"}, "s3://b"},
		{"s3://b/p/q/", &spec.BackupS3{Endpoint: "https://s3.example.com/", SecretKey: spec.Sensitive("s3cr3t-v4lue")}, "s3://b/p/q (https://s3.example.com)"},
	}
	for _, c := range cases {
		d := resolveS3(t, c.url, c.cfg)
		if d.URL() != c.want {
			t.Errorf("URL() of %s = %q, want %q", c.url, d.URL(), c.want)
		}
	}
	for _, bad := range []string{"s3://", "s3:///p", "s3://b/p/../q", "s3://b//p"} {
		if _, err := Resolve(&spec.Backup{Destination: bad}, ""); err == nil {
			t.Errorf("Resolve(%s): no error", bad)
		}
	}
	for _, bad := range []string{"http://u:s3cr3t@h", "http://h/path", "ftp://h", "http://u:s3cr3t@h:bad port"} {
		_, err := Resolve(&spec.Backup{Destination: "s3://b", S3: &spec.BackupS3{Endpoint: bad}}, "")
		if err == nil {
			t.Errorf("endpoint %s: no error", bad)
		} else if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("endpoint %s: the error shows the password: %v", bad, err)
		}
	}
}
