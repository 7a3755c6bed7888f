package backup

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"testing"
)

// testDestination is the contract every Destination keeps, run against d.
// Each case works under its own top-level name, so the cases share d.
func testDestination(t *testing.T, d Destination) {
	ctx := context.Background()
	cases := []struct {
		name string
		run  func(t *testing.T, d Destination)
	}{
		{"round trip", func(t *testing.T, d Destination) {
			objects := map[string][]byte{
				"trip/web/1.tar.gz":       []byte("archive one"),
				"trip/web/1.json":         []byte(`{"id":1}`),
				"trip/web/2.tar.gz":       {},
				"trip/db/nested/x.tar.gz": []byte("nested"),
			}
			for name, data := range objects {
				put(t, d, name, data)
			}
			for name, data := range objects {
				if got := read(t, d, name); !bytes.Equal(got, data) {
					t.Errorf("%s holds %q, want %q", name, got, data)
				}
			}
			wantList(t, d, "trip/", "trip/db/nested/x.tar.gz", "trip/web/1.json", "trip/web/1.tar.gz", "trip/web/2.tar.gz")
			wantList(t, d, "trip/web/", "trip/web/1.json", "trip/web/1.tar.gz", "trip/web/2.tar.gz")
			wantList(t, d, "trip/web/1", "trip/web/1.json", "trip/web/1.tar.gz")
			wantList(t, d, "trip/none/")
			if err := d.Delete(ctx, "trip/web/1.json"); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			wantList(t, d, "trip/web/", "trip/web/1.tar.gz", "trip/web/2.tar.gz")
			if err := d.Delete(ctx, "trip/web/1.json"); err != nil {
				t.Errorf("Delete of a missing name: %v, want nil", err)
			}
			all, err := d.List(ctx, "")
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			if !slices.IsSorted(all) || !slices.Contains(all, "trip/db/nested/x.tar.gz") {
				t.Errorf("List(\"\") = %q, want sorted, with trip/db/nested/x.tar.gz", all)
			}
		}},
		{"replace", func(t *testing.T, d Destination) {
			put(t, d, "replace/a", []byte("old"))
			put(t, d, "replace/a", []byte("new"))
			if got := read(t, d, "replace/a"); string(got) != "new" {
				t.Errorf("replaced object holds %q, want new", got)
			}
			wantList(t, d, "replace/", "replace/a")
		}},
		{"large object", func(t *testing.T, d Destination) {
			data := randomBytes(20 << 20)
			put(t, d, "large/big.tar.gz", data)
			if got := read(t, d, "large/big.tar.gz"); !bytes.Equal(got, data) {
				t.Errorf("the 20 MiB object came back as %d bytes, different", len(got))
			}
		}},
		{"missing", func(t *testing.T, d Destination) {
			rc, err := d.Open(ctx, "missing/nothing.tar.gz")
			if err == nil {
				rc.Close()
				t.Fatal("Open of a missing name: no error")
			}
			if !errors.Is(err, ErrNotExist) {
				t.Errorf("Open of a missing name: %v, want ErrNotExist", err)
			}
		}},
		{"reader fails midway", func(t *testing.T, d Destination) {
			boom := errors.New("boom")
			for _, n := range []int{100, 17 << 20} { // within the first part, and after it
				err := d.Put(ctx, "fail/a", io.MultiReader(bytes.NewReader(randomBytes(n)), errReader{boom}))
				if !errors.Is(err, boom) {
					t.Errorf("Put with a reader failing after %d bytes: %v, want boom", n, err)
				}
				wantNothing(t, d, "fail/", "fail/a")
			}
		}},
		{"failed put keeps the old object", func(t *testing.T, d Destination) {
			put(t, d, "keep/a", []byte("old"))
			boom := errors.New("boom")
			if err := d.Put(ctx, "keep/a", io.MultiReader(bytes.NewReader(randomBytes(17<<20)), errReader{boom})); !errors.Is(err, boom) {
				t.Errorf("Put with a failing reader: %v, want boom", err)
			}
			if got := read(t, d, "keep/a"); string(got) != "old" {
				t.Errorf("after a failed Put the object holds %d bytes, want old", len(got))
			}
			wantList(t, d, "keep/", "keep/a")
		}},
		{"cancelled", func(t *testing.T, d Destination) {
			for _, n := range []int{0, 100, 17 << 20} {
				cctx, cancel := context.WithCancel(ctx)
				r := &cancelAfter{r: bytes.NewReader(randomBytes(20 << 20)), n: n, cancel: cancel}
				if n == 0 {
					cancel()
				}
				err := d.Put(cctx, "cancel/a", r)
				cancel()
				if !errors.Is(err, context.Canceled) {
					t.Errorf("Put cancelled after %d bytes: %v, want context.Canceled", n, err)
				}
				wantNothing(t, d, "cancel/", "cancel/a")
			}
		}},
		{"bad names", func(t *testing.T, d Destination) {
			for _, name := range []string{"", "/abs", "../up", "a/../../up", "a//b", "a/./b", "a/"} {
				if err := d.Put(ctx, name, bytes.NewReader(nil)); err == nil {
					t.Errorf("Put(%q): no error", name)
				}
				if rc, err := d.Open(ctx, name); err == nil {
					rc.Close()
					t.Errorf("Open(%q): no error", name)
				}
				if err := d.Delete(ctx, name); err == nil {
					t.Errorf("Delete(%q): no error", name)
				}
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, d) })
	}
}

func TestDirDestination(t *testing.T) {
	d, err := NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	testDestination(t, d)
}

func put(t *testing.T, d Destination, name string, data []byte) {
	t.Helper()
	if err := d.Put(context.Background(), name, bytes.NewReader(data)); err != nil {
		t.Fatalf("Put(%s): %v", name, err)
	}
}

func read(t *testing.T, d Destination, name string) []byte {
	t.Helper()
	rc, err := d.Open(context.Background(), name)
	if err != nil {
		t.Fatalf("Open(%s): %v", name, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading %s: %v", name, err)
	}
	return data
}

func wantList(t *testing.T, d Destination, prefix string, want ...string) {
	t.Helper()
	got, err := d.List(context.Background(), prefix)
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("List(%q) = %q, want %q", prefix, got, want)
	}
}

// wantNothing checks that neither List under prefix nor Open of name finds
// anything.
func wantNothing(t *testing.T, d Destination, prefix, name string) {
	t.Helper()
	wantList(t, d, prefix)
	rc, err := d.Open(context.Background(), name)
	if err == nil {
		rc.Close()
		t.Errorf("Open(%s) found an object", name)
	} else if !errors.Is(err, ErrNotExist) {
		t.Errorf("Open(%s): %v, want ErrNotExist", name, err)
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rng := rand.NewChaCha8([32]byte{1})
	_, _ = rng.Read(b)
	return b
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// cancelAfter cancels its context once it has yielded n bytes, and goes on
// yielding.
type cancelAfter struct {
	r      io.Reader
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.n -= n; c.n <= 0 {
		c.cancel()
	}
	return n, err
}
