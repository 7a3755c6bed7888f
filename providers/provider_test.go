package providers

import (
	"sync"
	"testing"

	"github.com/tendhq/tend/spec"
)

// The daemon's loop and its status API use one registry at once (run with
// -race).
func TestRegistryConcurrentGet(t *testing.T) {
	r := NewRegistry()
	var built int
	var mu sync.Mutex
	r.Register("process", func(p *spec.Provider, env Env) (Provider, error) {
		mu.Lock()
		built++
		mu.Unlock()
		return nil, nil
	})
	cfg := &spec.Config{Providers: map[string]*spec.Provider{}}
	for i := range 8 {
		cfg.Providers["process.p"+string(rune('a'+i))] = &spec.Provider{Type: "process", Name: "p" + string(rune('a'+i))}
	}
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for key := range cfg.Providers {
				if _, err := r.Get(cfg, key, Env{}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if built != len(cfg.Providers) {
		t.Fatalf("built %d providers for %d keys, want each once", built, len(cfg.Providers))
	}
}
