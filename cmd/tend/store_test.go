package main

import (
	"math/rand/v2"
	"os"
	"strconv"

	"github.com/rogpeppe/go-internal/testscript"
)

// cmdScribble is the script command scribble FILE OFFSET [LEN]: it writes
// LEN (default 4096) pseudo-random bytes into FILE at OFFSET, as a failing
// disk or a stray write would.
func cmdScribble(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 || len(args) > 3 {
		ts.Fatalf("usage: scribble FILE OFFSET [LEN]")
	}
	off, err := strconv.ParseInt(args[1], 10, 64)
	ts.Check(err)
	n := 4096
	if len(args) == 3 {
		n, err = strconv.Atoi(args[2])
		ts.Check(err)
	}
	junk := make([]byte, n)
	rng := rand.New(rand.NewPCG(15, 4))
	for i := range junk {
		junk[i] = byte(rng.UintN(256))
	}
	f, err := os.OpenFile(ts.MkAbs(args[0]), os.O_WRONLY, 0)
	ts.Check(err)
	_, err = f.WriteAt(junk, off)
	ts.Check(err)
	ts.Check(f.Close())
}
