// Package keylock serializes work by key: the providers take one lock per
// replica or server, so that two changes of the same one never interleave
// while different ones run at once.
package keylock

import "sync"

// Map holds one mutex per key. The zero value is ready to use.
type Map struct {
	mu sync.Mutex
	m  map[string]*sync.Mutex
}

// Lock locks key and returns the function that unlocks it.
func (m *Map) Lock(key string) (unlock func()) {
	m.mu.Lock()
	if m.m == nil {
		m.m = map[string]*sync.Mutex{}
	}
	l := m.m[key]
	if l == nil {
		l = &sync.Mutex{}
		m.m[key] = l
	}
	m.mu.Unlock()
	l.Lock()
	return l.Unlock
}
