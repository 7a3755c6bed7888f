package main

import (
	"flag"
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

var updateScripts = flag.Bool("update", false, "rewrite the expected output in testscripts")

// TestMain lets testscripts run the real tend binary: the test binary itself,
// re-executed as "tend".
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"tend": func() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) },
	})
}

// TestScript runs testdata/script/*.txtar: each is a small state repository
// and the commands a person would type, with their exit codes and output.
func TestScript(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		UpdateScripts:       *updateScripts,
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			// The machine's settings must not leak into a script.
			for _, k := range []string{"TEND_ENV", "TEND_SECRETS_DIR", "NO_COLOR"} {
				env.Setenv(k, "")
			}
			return nil
		},
	})
}
