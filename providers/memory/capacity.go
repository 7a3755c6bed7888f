package memory

import (
	"context"
	"sync"

	"github.com/tendhq/tend/providers"
)

var _ providers.CapacityReporter = (*Sized)(nil)

// Sized is a memory provider that reports a capacity, which a test sets.
// It is a memory provider in every other way (the embedded Provider's
// methods, and so its optional interfaces, are its own); a plain Provider
// stands for a backend that cannot tell its capacity.
type Sized struct {
	*Provider

	capMu    sync.Mutex
	capacity providers.Capacity
	capErr   error
	capCalls int
}

// NewSized returns an empty provider registered under key (TYPE.NAME)
// that reports c.
func NewSized(key string, c providers.Capacity) *Sized {
	return &Sized{Provider: New(key), capacity: c}
}

// SetCapacity sets what Capacity answers from now on: c, or err when it
// is not nil.
func (p *Sized) SetCapacity(c providers.Capacity, err error) {
	p.capMu.Lock()
	defer p.capMu.Unlock()
	p.capacity, p.capErr = c, err
}

// Capacity implements providers.CapacityReporter.
func (p *Sized) Capacity(ctx context.Context) (providers.Capacity, error) {
	p.capMu.Lock()
	defer p.capMu.Unlock()
	p.capCalls++
	if err := ctx.Err(); err != nil {
		return providers.Capacity{}, err
	}
	if p.capErr != nil {
		return providers.Capacity{}, p.capErr
	}
	c := p.capacity
	c.Hosts = append([]providers.HostCapacity(nil), c.Hosts...)
	return c, nil
}

// CapacityCalls is how many times Capacity was called.
func (p *Sized) CapacityCalls() int {
	p.capMu.Lock()
	defer p.capMu.Unlock()
	return p.capCalls
}
