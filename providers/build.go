package providers

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
)

// CheckBuild verifies that the file at path (a server's program) has the
// digest the lock file records (spec.Server.BuildDigest, "sha256:…"), so
// that a build replaced under its locked version is not started. The file
// is read whole every time (no cache that a file with its old size and
// time could fool).
func CheckBuild(path, digest string) error {
	got, err := fileDigest(path)
	if err != nil {
		return fmt.Errorf("the build %s cannot be checked against the locked digest %s: %w", path, digest, err)
	}
	if got != digest {
		return fmt.Errorf("the build %s has %s, and the lock file records %s: the build was replaced under its version; review it, then run tend lock -upgrade", path, got, digest)
	}
	return nil
}

func fileDigest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}
