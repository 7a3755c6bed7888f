// Package s3test runs a real S3-compatible server for the tests of the s3
// backup destination: versitygw (the Versity S3 gateway) with its posix
// backend, which keeps buckets as directories and objects as files under the
// test's t.TempDir(), listening on 127.0.0.1 on a port chosen free, with a
// random access key and secret key, and one bucket made.
//
// The binary comes from hack/s3-server.sh, which builds it once into a cache
// (${TEND_CACHE_DIR:-$HOME/.cache/tend}/s3-versitygw-v1.8.0/bin);
// TEND_S3_SERVER_BIN names another versitygw binary (or a directory holding
// one). When it is not there, Start skips the test; with TEND_REQUIRE_S3=1
// it builds it with hack/s3-server.sh build, and fails the test when that
// fails. It must not be imported by anything but tests.
package s3test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
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

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/tendhq/tend/spec"
)

const (
	// RequireEnv set to 1 turns a missing server from a skip into a
	// failure (after trying to build it).
	RequireEnv = "TEND_REQUIRE_S3"
	// BinEnv names the versitygw binary to run, or a directory holding it.
	BinEnv = "TEND_S3_SERVER_BIN"
	// Region is the server's region.
	Region = "us-east-1"
	// Bucket is the bucket Start makes.
	Bucket = "tend-backups"

	binaryName = "versitygw"
	// coldBuild is about what hack/s3-server.sh build takes on 2 cores when
	// Go's build cache is cold.
	coldBuild = 5 * time.Minute
)

// Server is a running S3 server.
type Server struct {
	// Endpoint is its URL, http://127.0.0.1:PORT.
	Endpoint string
	// AccessKey and SecretKey are the credentials of its root user.
	AccessKey, SecretKey string
	// Bucket is the bucket that Start made (Bucket).
	Bucket string
	// Dir holds the buckets' directories; Log is the server's output.
	Dir, Log string

	t        testing.TB
	cmd      *exec.Cmd
	done     chan struct{}
	err      error
	stopOnce sync.Once
}

// Required reports whether TEND_REQUIRE_S3=1.
func Required() bool { return os.Getenv(RequireEnv) == "1" }

// Start runs a server with one bucket, Bucket, for the test, and stops it
// when the test ends. It skips the test when the server's binary is not
// there (unless Required), and fails it when the server does not start.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := Binary(t)
	if err != nil {
		if Required() {
			t.Fatalf("s3test: %v (%s=1)", err, RequireEnv)
		}
		t.Skipf("s3test: %v (set %s=1 to make this a failure)", err, RequireEnv)
	}
	for attempt := 1; ; attempt++ {
		s := &Server{Bucket: Bucket, Dir: t.TempDir(), t: t}
		t.Cleanup(s.Stop)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err = s.start(ctx, bin)
		cancel()
		if err == nil {
			return s
		}
		// The port was free when chosen; another process may have taken
		// it since. Try once more then.
		s.Stop()
		if attempt == 2 || !strings.Contains(err.Error(), "address already in use") {
			t.Fatalf("s3test: starting %s: %v", bin, err)
		}
	}
}

// Config is how the s3 block of a backup reaches the server.
func (s *Server) Config() *spec.BackupS3 {
	return &spec.BackupS3{
		Endpoint:  s.Endpoint,
		Region:    Region,
		AccessKey: spec.Plain(s.AccessKey),
		SecretKey: spec.Sensitive(s.SecretKey),
		PathStyle: true,
	}
}

// Client is a client of the server, as its root user.
func (s *Server) Client() *minio.Client {
	c, err := minio.New(strings.TrimPrefix(s.Endpoint, "http://"), &minio.Options{
		Creds:        credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Region:       Region,
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		s.t.Fatalf("s3test: %v", err)
	}
	return c
}

func (s *Server) start(ctx context.Context, bin string) error {
	s.AccessKey, s.SecretKey = "tend"+randomHex(8), randomHex(20)
	data, meta := filepath.Join(s.Dir, "data"), filepath.Join(s.Dir, "meta")
	for _, d := range []string{data, meta} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	s.Endpoint = "http://" + addr
	s.Log = filepath.Join(s.Dir, "versitygw.log")
	logFile, err := os.Create(s.Log)
	if err != nil {
		return err
	}
	defer logFile.Close()
	// The metadata (ETags, content types) goes to a sidecar directory, not
	// to extended attributes, which some temporary file systems lack.
	s.cmd = exec.Command(bin, "--port", addr, "--region", Region, "--quiet",
		"posix", "--sidecar", meta, data)
	// The credentials go by the environment, not on the command line that
	// ps shows.
	s.cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY_ID="+s.AccessKey, "ROOT_SECRET_ACCESS_KEY="+s.SecretKey)
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	s.cmd.SysProcAttr = sysProcAttr()
	if err := s.cmd.Start(); err != nil {
		return err
	}
	s.done = make(chan struct{})
	go func() { s.err = s.cmd.Wait(); close(s.done) }()

	// Ready when it makes the bucket.
	client := s.Client()
	for {
		err := client.MakeBucket(ctx, s.Bucket, minio.MakeBucketOptions{Region: Region})
		if err == nil {
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("versitygw exited (%v); its output:\n%s", s.err, s.tail(30))
		case <-ctx.Done():
			return fmt.Errorf("making the bucket %s: %v; versitygw's output:\n%s", s.Bucket, err, s.tail(30))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop stops the server (gracefully, then not); Start has t.Cleanup call it.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		if s.cmd == nil || s.cmd.Process == nil {
			return
		}
		if s.t.Failed() {
			s.t.Logf("s3test: last lines of versitygw's output:\n%s", s.tail(15))
		}
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(5 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	})
}

func (s *Server) tail(n int) string {
	data, _ := os.ReadFile(s.Log)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

var (
	binMu   sync.Mutex
	binPath string
)

// Binary finds the versitygw binary: TEND_S3_SERVER_BIN, or the one
// hack/s3-server.sh built, building it first when Required.
func Binary(t testing.TB) (string, error) {
	binMu.Lock()
	defer binMu.Unlock()
	if binPath != "" {
		return binPath, nil
	}
	p, fromEnv := os.Getenv(BinEnv), true
	if p == "" {
		fromEnv = false
		dir, err := binDir(t)
		if err != nil {
			return "", err
		}
		p = dir
	}
	if fi, err := os.Stat(p); err == nil && fi.IsDir() {
		p = filepath.Join(p, binaryName)
	}
	if _, err := exec.LookPath(p); err != nil {
		if fromEnv {
			return "", fmt.Errorf("%s: %w", BinEnv, err)
		}
		return "", err
	}
	binPath = p
	return p, nil
}

// binDir runs hack/s3-server.sh bindir, or build when Required.
func binDir(t testing.TB) (string, error) {
	script, err := findScript()
	if err != nil {
		return "", err
	}
	if out, err := exec.Command("bash", script, "bindir").Output(); err == nil {
		return strings.TrimSpace(string(out)), nil
	}
	if !Required() {
		return "", fmt.Errorf("the S3 server is not built: run %s build (about %s when Go's build cache is cold)", script, coldBuild)
	}
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if deadline, ok := d.Deadline(); ok && time.Until(deadline) < coldBuild {
			return "", fmt.Errorf("the S3 server is not built yet, and building it may take about %s, "+
				"more than is left before this test's deadline: run %s build first", coldBuild, script)
		}
	}
	t.Logf("s3test: building the S3 server with %s build", script)
	start := time.Now()
	cmd := exec.Command("bash", script, "build")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s build: %v\n%s", script, err, stderr.String())
	}
	t.Logf("s3test: built in %s", time.Since(start).Round(time.Second))
	return strings.TrimSpace(stdout.String()), nil
}

// findScript finds hack/s3-server.sh in the module that holds the current
// directory (a test runs in its package's directory).
func findScript() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "hack", "s3-server.sh")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("hack/s3-server.sh not found above the current directory; set " + BinEnv)
		}
		dir = parent
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
