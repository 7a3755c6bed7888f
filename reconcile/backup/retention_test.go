package backup

import (
	"slices"
	"testing"
	"time"
)

func TestExpired(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	b := func(id string, ago time.Duration, protected bool) Kept {
		return Kept{ID: id, CreatedAt: now.Add(-ago), Protected: protected}
	}
	cases := []struct {
		name  string
		in    []Kept
		count int
		age   time.Duration
		want  []string
	}{
		{"nothing", nil, 3, 0, nil},
		{"within count", []Kept{b("a", day, false), b("b", 2*day, false)}, 3, 0, nil},
		{"past count, oldest go", []Kept{b("a", day, false), b("b", 2*day, false), b("c", 3*day, false), b("d", 4*day, false)}, 2, 0, []string{"c", "d"}},
		{"order of the input does not matter", []Kept{b("d", 4*day, false), b("a", day, false), b("c", 3*day, false), b("b", 2*day, false)}, 2, 0, []string{"c", "d"}},
		{"too old", []Kept{b("a", day, false), b("b", 10*day, false), b("c", 40*day, false)}, 30, 30 * day, []string{"c"}},
		{"count and age together", []Kept{b("a", day, false), b("b", 2*day, false), b("c", 40*day, false)}, 1, 30 * day, []string{"b", "c"}},
		{"the newest stays even when too old", []Kept{b("a", 90*day, false), b("b", 100*day, false)}, 5, 30 * day, []string{"b"}},
		{"the newest stays with count 1", []Kept{b("a", day, false)}, 1, time.Hour, nil},
		{"protected stays past count", []Kept{b("a", day, false), b("b", 2*day, true), b("c", 3*day, false)}, 1, 0, []string{"c"}},
		{"protected stays past age", []Kept{b("a", day, false), b("b", 50*day, true)}, 5, 30 * day, nil},
		{"same time: the higher id is newer", []Kept{b("x1", day, false), b("x2", day, false)}, 1, 0, []string{"x1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Expired(c.in, c.count, c.age, now)
			if !slices.Equal(got, c.want) {
				t.Errorf("Expired = %q, want %q", got, c.want)
			}
		})
	}
}
