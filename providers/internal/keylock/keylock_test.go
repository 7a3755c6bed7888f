package keylock

import (
	"sync"
	"testing"
)

func TestLockSerializesOneKey(t *testing.T) {
	var m Map
	var wg sync.WaitGroup
	var a, b int
	n := map[string]*int{"a": &a, "b": &b} // read only; each counter is its key's
	for range 50 {
		for _, k := range []string{"a", "b"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				unlock := m.Lock(k)
				defer unlock()
				*n[k]++ // the race detector fails this unless each key is serialized
			}()
		}
	}
	wg.Wait()
	if a != 50 || b != 50 {
		t.Fatalf("counts %d and %d, want 50 each", a, b)
	}
}
