// Command genfleet writes a state repository with N servers, to measure tend
// on a large fleet: go run ./hack/genfleet -servers 5000 -out /tmp/fleet.
// With -provider null its servers run on the null provider, which runs
// nothing, so that plan and apply of the whole fleet need no backend.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/tendhq/tend/internal/fleetgen"
)

func main() {
	n := flag.Int("servers", 1000, "how many servers")
	out := flag.String("out", "", "directory to write (created; must be empty or absent)")
	typ := flag.String("provider", "process", "the servers' provider type: process, or null (runs nothing, keeps records)")
	flag.Parse()
	if *out == "" || *n < 1 || (*typ != "process" && *typ != "null") {
		fmt.Fprintln(os.Stderr, "usage: genfleet -servers N -out DIR [-provider process|null]")
		os.Exit(2)
	}
	if entries, err := os.ReadDir(*out); err == nil && len(entries) > 0 {
		fmt.Fprintf(os.Stderr, "genfleet: %s is not empty\n", *out)
		os.Exit(1)
	}
	if err := fleetgen.WriteOn(*out, *n, *typ); err != nil {
		fmt.Fprintln(os.Stderr, "genfleet:", err)
		os.Exit(1)
	}
	fmt.Printf("wrote %d servers to %s (set TEND_SECRET_API_TOKEN to resolve their secret)\n", *n, *out)
}
