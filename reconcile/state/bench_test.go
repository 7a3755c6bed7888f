package state

import (
	"fmt"
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
