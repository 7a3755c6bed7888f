package state

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// BenchmarkRevisionWrite measures recording one applied revision: a
// BeginRevision and its FinishRevision, two write transactions.
func BenchmarkRevisionWrite(b *testing.B) {
	s := openStore(b)
	spec := []byte(`{"image":"registry.example/web:1.4.2","replicas":3,"env":{"LOG":"info","TOKEN":"(redacted)"}}`)
	i := 0
	for b.Loop() {
		id, err := s.BeginRevision(Revision{
			Server:         fmt.Sprintf("srv-%d", i%50),
			SourceRevision: "0123456789abcdef0123456789abcdef01234567",
			SpecHash:       "sha256:0123456789abcdef",
			Version:        "1.4.2",
			Spec:           spec,
			Trigger:        "apply",
			ApplyID:        "apply-1",
		})
		if err != nil {
			b.Fatal(err)
		}
		if err := s.FinishRevision(id, OutcomeVerified, "", time.Time{}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// bigStore returns the path of a closed store of n revisions with a spec of
// about 1.3 KB each (a redacted server spec), 50 servers: at 100,000
// revisions, about 200 MB.
func bigStore(b *testing.B, n int) string {
	b.Helper()
	s := openStore(b)
	spec := `{"image":"registry.example/web:1.4.2",` + strings.Repeat(`"env":{"LOG":"info","TOKEN":"(redacted)"},`, 30) + `"replicas":3}`
	if _, err := s.db.Exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
		INSERT INTO revisions (server, source_revision, spec_hash, version, spec, triggered_by, outcome, apply_id, started_at, finished_at)
		SELECT 'srv-' || (i % 50), printf('%040x', i / 50), printf('sha256:%064x', i), '1.4.2', CAST(? || i AS BLOB), 'apply', 'verified',
			'apply-' || (i / 50), ?, ?
		FROM n`, n, spec, formatTime(s.now()), formatTime(s.now())); err != nil {
		b.Fatal(err)
	}
	path := s.Path()
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkOpen measures opening a store of 100,000 revisions (what every
// tend command does), and BenchmarkQuickCheck its quick_check (what the
// commands that write add to that).
func BenchmarkOpen(b *testing.B) {
	path := bigStore(b, 100_000)
	for b.Loop() {
		s, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}

func BenchmarkQuickCheck(b *testing.B) {
	for _, n := range []int{5_000, 100_000} {
		b.Run(fmt.Sprintf("revisions=%d", n), func(b *testing.B) {
			path := bigStore(b, n)
			fi, err := os.Stat(path)
			if err != nil {
				b.Fatal(err)
			}
			s := reopen(b, path)
			for b.Loop() {
				if err := s.QuickCheck(b.Context()); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(fi.Size())/(1<<20), "MB")
		})
	}
}
