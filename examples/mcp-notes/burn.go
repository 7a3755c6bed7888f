package main

import (
	"runtime"
	"sync/atomic"
	"time"
)

// maxBurn bounds --burn-per-request: a load-test aid, not a way to hang a
// worker.
const maxBurn = time.Second

// burnSink keeps the compiler from dropping the busy loop.
var burnSink atomic.Uint64

// burnCPU keeps the calling goroutine busy on its OS thread until that
// thread has used d of CPU time (user plus system, as the kernel counts it
// for the thread). A busy machine makes a burning request slower, not
// cheaper: each one costs the same CPU. Where the thread's CPU time cannot
// be read (threadCPU reports false), it burns d of wall-clock time instead.
func burnCPU(d time.Duration) {
	if d <= 0 {
		return
	}
	runtime.LockOSThread() // the thread's clock must be this goroutine's
	defer runtime.UnlockOSThread()
	now := threadCPU
	if _, ok := threadCPU(); !ok {
		start := time.Now()
		now = func() (time.Duration, bool) { return time.Since(start), true }
	}
	start, _ := now()
	x := burnSink.Load() | 1
	for {
		for range 4096 { // xorshift: cheap work between two reads of the clock
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
		}
		if t, _ := now(); t-start >= d {
			break
		}
	}
	burnSink.Store(x)
}
