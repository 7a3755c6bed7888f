package backup

import (
	"sort"
	"time"
)

// Kept is one good backup as retention sees it.
type Kept struct {
	ID        string
	CreatedAt time.Time
	// Protected backups are never removed: the pre-upgrade snapshot that
	// rolling back the server's current revision would restore.
	Protected bool
}

// Expired returns the IDs of the backups that retention removes, given a
// server's good backups: those past the newest count, and those older than
// age (when age > 0). The newest backup and protected ones are always kept.
func Expired(backups []Kept, count int, age time.Duration, now time.Time) []string {
	sorted := append([]Kept(nil), backups...)
	sort.SliceStable(sorted, func(i, j int) bool {
		if !sorted[i].CreatedAt.Equal(sorted[j].CreatedAt) {
			return sorted[i].CreatedAt.After(sorted[j].CreatedAt)
		}
		return sorted[i].ID > sorted[j].ID
	})
	var out []string
	for rank, b := range sorted {
		if rank == 0 || b.Protected {
			continue
		}
		tooMany := count > 0 && rank >= count
		tooOld := age > 0 && now.Sub(b.CreatedAt) > age
		if tooMany || tooOld {
			out = append(out, b.ID)
		}
	}
	sort.Strings(out)
	return out
}
