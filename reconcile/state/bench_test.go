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

// BenchmarkApplyStoreOps measures the store operations of one apply, per
// server, on SQLite (a file) and on PostgreSQL (on loopback), side by side:
// the apply lock taken and released, the source snapshot, the reads of the
// plan (latest and last verified revisions, holds, contracts), and for each
// server its revision begun and finished, 20 servers an apply. ms/server is
// the figure.
func BenchmarkApplyStoreOps(b *testing.B) {
	const servers = 20
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			s := openStore(b)
			spec := []byte(`{"image":"registry.example/web:1.4.2","replicas":3,"env":{"LOG":"info","TOKEN":"(redacted)"}}`)
			files := map[string][]byte{"main.hcl": []byte(strings.Repeat(`server "web" { version = "1.4.2" }`+"\n", 40))}
			apply := 0
			for b.Loop() {
				lease, err := s.Lock(LockInfo{Owner: "bench", Operation: "apply"}, time.Minute)
				if err != nil {
					b.Fatal(err)
				}
				rev := fmt.Sprintf("%040x", apply)
				if err := s.PutSource(rev, files); err != nil {
					b.Fatal(err)
				}
				if _, err := s.LatestAll(); err != nil {
					b.Fatal(err)
				}
				if _, err := s.LastVerifiedAll(); err != nil {
					b.Fatal(err)
				}
				if _, err := s.Holds(); err != nil {
					b.Fatal(err)
				}
				if _, err := s.LastVerifiedContracts(); err != nil {
					b.Fatal(err)
				}
				for i := range servers {
					id, err := s.BeginRevision(Revision{Server: fmt.Sprintf("srv-%d", i), SourceRevision: rev,
						SpecHash: "sha256:0123456789abcdef", Version: "1.4.2", Spec: spec, Trigger: "apply", ApplyID: rev})
					if err != nil {
						b.Fatal(err)
					}
					if err := s.FinishRevision(id, OutcomeVerified, "", time.Time{}); err != nil {
						b.Fatal(err)
					}
				}
				if err := lease.Release(); err != nil {
					b.Fatal(err)
				}
				apply++
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N*servers), "ms/server")
		})
	}
}
