package state

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestSources(t *testing.T) {
	backends(t, func(t *testing.T) {
		s := openStore(t)
		files := map[string][]byte{
			"tend.hcl":                     []byte("server \"web\" {\n  image = \"web:1.4\"\n}\n"),
			"servers/db.hcl":               []byte(strings.Repeat("# padding\n", 1000)),
			"empty.hcl":                    {},
			"binary":                       {0, 1, 2, 0xff, 0xfe},
			"ünïcode/ファイル.hcl":             []byte("x = 1\n"),
			strings.Repeat("d/", 80) + "f": []byte("deep"),
		}
		if err := s.PutSource("dir-abc", files); err != nil {
			t.Fatal(err)
		}
		if err := s.PutSource("dir-abc", files); err != nil {
			t.Fatalf("PutSource twice: %v", err)
		}
		got, err := s.GetSource("dir-abc")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(files) {
			t.Fatalf("got %d files, want %d", len(got), len(files))
		}
		for name, b := range files {
			if g, ok := got[name]; !ok || !bytes.Equal(g, b) {
				t.Errorf("%s: got %q, want %q", name, g, b)
			}
		}

		// Stored compressed.
		var data []byte
		var n int
		if err := s.db.QueryRow(`SELECT data FROM sources WHERE rev = 'dir-abc'`).Scan(&data); err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(data, []byte{0x1f, 0x8b}) || len(data) > 2000 {
			t.Errorf("snapshot is not gzip or not compressed: %d bytes", len(data))
		}
		if err := s.db.QueryRow(`SELECT count(*) FROM sources`).Scan(&n); err != nil || n != 1 {
			t.Errorf("sources rows = %d, %v", n, err)
		}

		// Different files under a stored revision are refused, the first kept.
		changed := map[string][]byte{"tend.hcl": []byte("other")}
		if err := s.PutSource("dir-abc", changed); !errors.Is(err, ErrSourceMismatch) {
			t.Errorf("PutSource with other files = %v, want ErrSourceMismatch", err)
		}
		if got, _ := s.GetSource("dir-abc"); len(got) != len(files) {
			t.Error("the first snapshot was replaced")
		}

		// An empty snapshot is a snapshot.
		if err := s.PutSource("empty", nil); err != nil {
			t.Fatal(err)
		}
		if got, err := s.GetSource("empty"); err != nil || len(got) != 0 || got == nil {
			t.Errorf("empty snapshot = %v, %v", got, err)
		}

		if _, err := s.GetSource("nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetSource(missing) = %v, want ErrNotFound", err)
		}
		if err := s.PutSource("", files); err == nil {
			t.Error("PutSource accepted an empty revision")
		}
		if err := s.PutSource("bad", map[string][]byte{"": nil}); err == nil {
			t.Error("PutSource accepted an empty file name")
		}
	})
}

func TestSourceEncodingDeterministic(t *testing.T) {
	files := map[string][]byte{}
	for _, n := range []string{"z", "a", "m/n", "b", "y", "c"} {
		files[n] = []byte("content of " + n)
	}
	var first []byte
	for i := range 20 {
		raw, err := encodeSource(files)
		if err != nil {
			t.Fatal(err)
		}
		gz, err := compress(raw)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = gz
		} else if !bytes.Equal(gz, first) {
			t.Fatal("encoding differs between runs")
		}
	}
}
