package process

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestFollowFileAcrossRotation follows a log that is appended in pieces,
// rotated (renamed to PATH.1, a new file made) and truncated: every complete
// line comes once, in order, and a half line waits for its end.
func TestFollowFileAcrossRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "stdout.log")
	if err := os.WriteFile(path, []byte("old 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	appendTo := func(s string) {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(s)
		f.Close()
	}
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuf
	done := make(chan error, 1)
	go func() { done <- followFile(ctx, path, 6, &out) }()
	wait := func(want string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for out.String() != want {
			if time.Now().After(deadline) {
				t.Fatalf("followed %q, want %q", out.String(), want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	appendTo("a 1\na 2 half")
	wait("a 1\n")
	appendTo(" done\n")
	wait("a 1\na 2 half done\n")
	appendTo("a 3\n")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	appendTo("b 1\n")
	wait("a 1\na 2 half done\na 3\nb 1\n")
	if err := os.WriteFile(path, []byte("c\n"), 0o644); err != nil { // truncated and rewritten, shorter
		t.Fatal(err)
	}
	wait("a 1\na 2 half done\na 3\nb 1\nc\n")
	appendTo("tail without end")
	time.Sleep(3 * followPoll)
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("followFile ended with %v, want context.Canceled", err)
	}
	if got := out.String(); !strings.HasSuffix(got, "c\ntail without end\n") || strings.Contains(got, "old 1") {
		t.Fatalf("followed %q", got)
	}
}
