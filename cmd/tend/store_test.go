package main

import (
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/tendhq/tend/internal/pgtest"
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

// stopPostgresAfter runs the tests, then stops the PostgreSQL server a test
// started (testscript.Main, not pgtest.Main, runs them).
type stopPostgresAfter struct{ m *testing.M }

func (s stopPostgresAfter) Run() int {
	code := s.m.Run()
	pgtest.Stop()
	return code
}

// postgresCondition is the script condition [postgres]: PostgreSQL is
// installed (and its server started). Without it, it is false, unless
// TEND_REQUIRE_POSTGRES=1, which makes it an error.
func postgresCondition() (bool, error) {
	_, skip, err := pgtest.Ensure(func(string, ...any) {})
	if err != nil {
		return false, err
	}
	return skip == nil, nil
}

func cmdPGStore(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) > 1 || len(args) == 1 && args[0] != "-wrong-password" {
		ts.Fatalf("usage: pg-store [-wrong-password]")
	}
	s, skip, err := pgtest.Ensure(ts.Logf)
	if skip != nil {
		ts.Fatalf("pgtest: %v: guard the script with [!postgres] skip", skip)
	}
	ts.Check(err)
	dsn, drop, err := s.NewDatabase()
	ts.Check(err)
	ts.Defer(drop)
	if len(args) == 1 {
		dsn = strings.Replace(dsn, ":"+s.Password+"@", ":wrong-"+s.Password+"@", 1)
	}
	ts.Setenv("TEND_STORE", dsn)
	ts.Setenv("PG_PASSWORD", s.Password)
}
