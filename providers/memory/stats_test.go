package memory

import (
	"context"
	"errors"
	"testing"

	"github.com/tendhq/tend/providers"
)

func TestStats(t *testing.T) {
	p := New("memory.test")
	p.SetStats("web", 0, providers.Stats{CPUPercent: 42.5, MemoryBytes: 1 << 20, MemoryPercent: 12})
	p.SetStats("web", 1, providers.Stats{CPUPercent: 7})
	p.SetStats("web", 1, providers.Stats{CPUPercent: 8}) // the last one stands
	ctx := context.Background()

	st, err := p.Stats(ctx, providers.Instance{Identity: providers.Identity{Server: "web", Replica: 0}})
	if err != nil || st != (providers.Stats{CPUPercent: 42.5, MemoryBytes: 1 << 20, MemoryPercent: 12}) {
		t.Errorf("replica 0: %+v, %v", st, err)
	}
	st, err = p.Stats(ctx, providers.Instance{Identity: providers.Identity{Server: "web", Replica: 1}})
	if err != nil || st != (providers.Stats{CPUPercent: 8}) {
		t.Errorf("replica 1: %+v, %v", st, err)
	}
	_, err = p.Stats(ctx, providers.Instance{Identity: providers.Identity{Server: "web", Replica: 2}})
	if err == nil || err.Error() != "stats of web replica 2: no such replica" {
		t.Errorf("unknown replica: %v", err)
	}
	// Another provider does not see them.
	if _, err := New("memory.other").Stats(ctx, providers.Instance{Identity: providers.Identity{Server: "web"}}); err == nil {
		t.Error("another provider reports the stats of the first")
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := p.Stats(cancelled, providers.Instance{Identity: providers.Identity{Server: "web"}}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v, want context.Canceled", err)
	}
}
