package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/tendhq/tend/spec"
)

// s3PartSize is the size of the parts a Put uploads, and of the buffer it
// holds while doing so. An object may have 10,000 parts, so an archive may
// be up to about 156 GiB.
const s3PartSize = 16 << 20

// S3 is a destination in a bucket of an S3-compatible object store, under a
// prefix: the object of name N is PREFIX/N.
type S3 struct {
	client   *minio.Client
	bucket   string
	prefix   string // "" or without a leading or trailing slash
	endpoint string // scheme://host, "" for AWS S3
	secret   string // for scrubbing error messages only
}

var _ Destination = (*S3)(nil)

// newS3 returns the destination an s3://BUCKET/PREFIX URL names, reached
// as cfg says (nil: AWS S3 in us-east-1, credentials from the
// environment). It makes no request: a wrong endpoint, credential or
// bucket shows in the first operation.
func newS3(raw string, cfg *spec.BackupS3) (Destination, error) {
	bucket, prefix, err := parseS3URL(raw)
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		cfg = &spec.BackupS3{Region: "us-east-1"}
	}
	host, secure, endpoint := "s3.amazonaws.com", true, ""
	if cfg.Endpoint != "" {
		u, err := url.Parse(cfg.Endpoint)
		if err != nil {
			// url's error repeats the URL, which may hold a password.
			return nil, errors.New("the S3 endpoint is not a URL")
		}
		if u.User != nil {
			return nil, fmt.Errorf("the S3 endpoint %s holds credentials: give them as access_key and secret_key", u.Redacted())
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.Trim(u.Path, "/") != "" || u.RawQuery != "" {
			return nil, fmt.Errorf("the S3 endpoint %q is not an http:// or https:// URL of a host, without a path", cfg.Endpoint)
		}
		host, secure, endpoint = u.Host, u.Scheme == "https", u.Scheme+"://"+u.Host
	}
	var creds *credentials.Credentials
	secret := cfg.SecretKey.Reveal()
	if cfg.AccessKey.Reveal() != "" || secret != "" {
		creds = credentials.NewStaticV4(cfg.AccessKey.Reveal(), secret, "")
	} else {
		// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN (or
		// their older names AWS_ACCESS_KEY and AWS_SECRET_KEY).
		creds = credentials.NewEnvAWS()
		secret = os.Getenv("AWS_SECRET_ACCESS_KEY")
		if secret == "" {
			secret = os.Getenv("AWS_SECRET_KEY")
		}
	}
	lookup := minio.BucketLookupAuto
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	client, err := minio.New(host, &minio.Options{Creds: creds, Secure: secure, Region: cfg.Region, BucketLookup: lookup})
	if err != nil {
		return nil, fmt.Errorf("S3 endpoint %s: %w", cfg.Endpoint, err)
	}
	return &S3{client: client, bucket: bucket, prefix: prefix, endpoint: endpoint, secret: secret}, nil
}

// parseS3URL splits s3://BUCKET/PREFIX.
func parseS3URL(raw string) (bucket, prefix string, err error) {
	rest, ok := strings.CutPrefix(raw, "s3://")
	if !ok {
		return "", "", fmt.Errorf("%q is not an s3://BUCKET/PREFIX URL", raw)
	}
	bucket, prefix, _ = strings.Cut(rest, "/")
	prefix = strings.TrimSuffix(prefix, "/")
	if bucket == "" || strings.ContainsAny(bucket, "?#@:") {
		return "", "", fmt.Errorf("%q is not an s3://BUCKET/PREFIX URL", raw)
	}
	if prefix != "" && (path.Clean(prefix) != prefix || path.IsAbs(prefix)) {
		return "", "", fmt.Errorf("the prefix of %q is not clean (no empty, . or .. segments)", raw)
	}
	return bucket, prefix, nil
}

// URL implements Destination: s3://BUCKET/PREFIX, and the endpoint when it
// is not AWS S3.
func (d *S3) URL() string {
	u := "s3://" + d.bucket
	if d.prefix != "" {
		u += "/" + d.prefix
	}
	if d.endpoint != "" {
		u += " (" + d.endpoint + ")"
	}
	return u
}

// key is the object key of name.
func (d *S3) key(name string) (string, error) {
	clean := path.Clean(name)
	if name == "" || clean != name || path.IsAbs(name) || clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("bad backup object name %q", name)
	}
	if d.prefix == "" {
		return name, nil
	}
	return d.prefix + "/" + name, nil
}

// Put implements Destination with one multipart upload of unknown size:
// the object appears when the upload completes; an upload that fails (the
// reader's error, ctx ending, the store refusing a part) is aborted, which
// leaves nothing under name. When the abort itself cannot be sent, the
// parts stay in the store as an unfinished upload, which is no object
// either (a bucket lifecycle rule AbortIncompleteMultipartUpload removes
// them).
func (d *S3) Put(ctx context.Context, name string, r io.Reader) error {
	key, err := d.key(name)
	if err != nil {
		return err
	}
	_, err = d.client.PutObject(ctx, d.bucket, key, ctxReader{ctx, r}, -1, minio.PutObjectOptions{
		PartSize:    s3PartSize,
		ContentType: "application/octet-stream",
	})
	if err != nil {
		return d.fail("writing", key, err)
	}
	return nil
}

// Open implements Destination. Its GET is sent before it returns, so that
// a missing object is an error here, not at the first Read.
func (d *S3) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	key, err := d.key(name)
	if err != nil {
		return nil, err
	}
	body, _, _, err := minio.Core{Client: d.client}.GetObject(ctx, d.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, d.fail("reading", key, err)
	}
	return body, nil
}

// List implements Destination.
func (d *S3) List(ctx context.Context, prefix string) ([]string, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the listing when an error ends the loop early
	base := ""
	if d.prefix != "" {
		base = d.prefix + "/"
	}
	var out []string
	for obj := range d.client.ListObjectsIter(ctx, d.bucket, minio.ListObjectsOptions{Prefix: base + prefix, Recursive: true}) {
		if obj.Err != nil {
			return nil, d.fail("listing", base+prefix, obj.Err)
		}
		name, ok := strings.CutPrefix(obj.Key, base)
		if !ok || name == "" || strings.HasSuffix(name, "/") {
			continue // a directory marker
		}
		out = append(out, name)
	}
	if err := ctx.Err(); err != nil {
		return nil, d.fail("listing", base+prefix, err)
	}
	sort.Strings(out)
	return out, nil
}

// Delete implements Destination.
func (d *S3) Delete(ctx context.Context, name string) error {
	key, err := d.key(name)
	if err != nil {
		return err
	}
	err = d.client.RemoveObject(ctx, d.bucket, key, minio.RemoveObjectOptions{})
	if err != nil && minio.ToErrorResponse(err).Code != minio.NoSuchKey {
		return d.fail("deleting", key, err)
	}
	return nil
}

// fail says what went wrong doing op on the object key (or the keys under
// it, for a listing): ErrNotExist for a missing object, the bucket and the
// endpoint for a missing bucket. Its message never holds the secret key.
func (d *S3) fail(op, key string, err error) error {
	where := "s3://" + d.bucket + "/" + key
	endpoint := d.endpoint
	if endpoint == "" {
		endpoint = "AWS S3"
	}
	switch minio.ToErrorResponse(err).Code {
	case minio.NoSuchKey:
		return fmt.Errorf("%s (%s): %w", where, endpoint, ErrNotExist)
	case minio.NoSuchBucket:
		return scrubbed{fmt.Sprintf("%s %s: the bucket %q does not exist at %s", op, where, d.bucket, endpoint), d.secret, err}
	}
	return scrubbed{fmt.Sprintf("%s %s (%s): %v", op, where, endpoint, err), d.secret, err}
}

// scrubbed is an error whose message has the secret key replaced.
type scrubbed struct {
	msg, secret string
	err         error
}

func (e scrubbed) Error() string {
	if e.secret == "" {
		return e.msg
	}
	return strings.ReplaceAll(e.msg, e.secret, "[secret key]")
}

func (e scrubbed) Unwrap() error { return e.err }
