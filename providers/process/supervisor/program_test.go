package supervisor

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckProgram: the supervisor starts (and restarts) only a program
// with the locked digest.
func TestCheckProgram(t *testing.T) {
	p := filepath.Join(t.TempDir(), "mcp-notes-1.1.0")
	if err := os.WriteFile(p, []byte("build 1.1.0"), 0o755); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("build 1.1.0"))
	good := "sha256:" + hex.EncodeToString(sum[:])
	if err := checkProgram(p, good); err != nil {
		t.Fatalf("the locked build: %v", err)
	}
	if err := os.WriteFile(p, []byte("another build"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := checkProgram(p, good); err == nil || !strings.Contains(err.Error(), "the lock file records "+good) {
		t.Fatalf("a replaced build: %v", err)
	}
	if err := checkProgram(p+"-gone", good); err == nil {
		t.Fatal("a missing build passed")
	}
}
