//go:build !linux

package main

import "time"

// threadCPU cannot read a thread's CPU time here; burnCPU uses the wall
// clock.
func threadCPU() (time.Duration, bool) { return 0, false }
