package state

import (
	"testing"
	"time"
)

func TestUsageAverageAndPeak(t *testing.T) {
	backends(t, func(t *testing.T) {
		s := openStore(t)
		t0 := time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)
		var samples []UsageSample
		for i, cpu := range []int64{100, 300, 200, 800} {
			samples = append(samples,
				UsageSample{Server: "notes", At: t0.Add(time.Duration(i) * time.Minute), Replicas: 2, MilliCPU: cpu, MemoryBytes: int64(i+1) << 20},
				UsageSample{Server: "db", At: t0.Add(time.Duration(i) * time.Minute), Replicas: 1, MilliCPU: 50, MemoryBytes: 24 << 30})
		}
		if err := s.RecordUsage(samples, time.Time{}); err != nil {
			t.Fatal(err)
		}
		got, err := s.UsageSince(t0.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		// The minute-0 sample is before since: 300, 200, 800 remain.
		n := got["notes"]
		if n.Samples != 3 || n.AvgMilliCPU != 433 || n.PeakMilliCPU != 800 || n.AvgMemoryBytes != 3<<20 || n.PeakMemoryBytes != 4<<20 {
			t.Errorf("notes = %+v, want 3 samples, cpu avg 433 peak 800, memory avg 3 MiB peak 4 MiB", n)
		}
		if !n.First.Equal(t0.Add(time.Minute)) || !n.Last.Equal(t0.Add(3*time.Minute)) {
			t.Errorf("notes spans %v to %v", n.First, n.Last)
		}
		// db's 24 GiB is past 32 bits: the average is not cut to an int4.
		if d := got["db"]; d.Samples != 3 || d.AvgMilliCPU != 50 || d.AvgMemoryBytes != 24<<30 || d.PeakMemoryBytes != 24<<30 {
			t.Errorf("db = %+v", d)
		}
		// Writing with keepSince deletes what is older, for every server.
		if err := s.RecordUsage([]UsageSample{{Server: "notes", At: t0.Add(10 * time.Minute), Replicas: 1, MilliCPU: 10, MemoryBytes: 1}}, t0.Add(3*time.Minute)); err != nil {
			t.Fatal(err)
		}
		got, err = s.UsageSince(time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if got["notes"].Samples != 2 || got["notes"].PeakMilliCPU != 800 || got["db"].Samples != 1 {
			t.Errorf("after pruning: notes %+v, db %+v; want 2 and 1 samples", got["notes"], got["db"])
		}
		if err := s.RecordUsage([]UsageSample{{Server: "", At: t0}}, time.Time{}); err == nil {
			t.Error("a sample without a server was recorded")
		}
	})
}
