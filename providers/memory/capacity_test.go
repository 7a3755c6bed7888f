package memory

import (
	"context"
	"errors"
	"testing"

	"github.com/tendhq/tend/providers"
)

func TestSized(t *testing.T) {
	want := providers.Capacity{Hosts: []providers.HostCapacity{{Name: "h", MilliCPU: 2000, MemoryBytes: 1 << 30}}}
	p := NewSized("memory.test", want)
	var pr providers.Provider = p
	if _, ok := pr.(providers.CapacityReporter); !ok {
		t.Fatal("a Sized provider is no CapacityReporter")
	}
	if _, ok := pr.(providers.Execer); !ok {
		t.Error("a Sized provider lost the memory provider's Execer")
	}
	if _, ok := any(New("memory.plain")).(providers.CapacityReporter); ok {
		t.Error("a plain memory provider reports a capacity")
	}
	got, err := p.Capacity(context.Background())
	if err != nil || len(got.Hosts) != 1 || got.Hosts[0] != want.Hosts[0] {
		t.Fatalf("Capacity = %+v, %v; want %+v", got, err, want)
	}
	got.Hosts[0].MilliCPU = 1 // the answer is a copy
	boom := errors.New("backend gone")
	p.SetCapacity(providers.Capacity{}, boom)
	if _, err := p.Capacity(context.Background()); !errors.Is(err, boom) {
		t.Errorf("Capacity after SetCapacity(err) = %v", err)
	}
	p.SetCapacity(want, nil)
	if got, _ := p.Capacity(context.Background()); got.Hosts[0].MilliCPU != 2000 {
		t.Errorf("Capacity changed through an earlier answer: %+v", got)
	}
	if n := p.CapacityCalls(); n != 3 {
		t.Errorf("CapacityCalls = %d, want 3", n)
	}
}
