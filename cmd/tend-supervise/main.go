// Command tend-supervise is the supervisor of the process provider's
// replicas on its own: one runs beside each replica, restarts it when it
// exits and records how it ended, and outlives tend. tend starts it as
// `tend-supervise __tend-supervise INSTANCE_DIR` when it lies beside tend's
// executable (make build and go install github.com/tendhq/tend/cmd/...
// put it there), and otherwise runs itself as the supervisor. It links the
// supervisor alone, so that the supervisor of each replica costs about
// 1.4 MiB of private memory rather than the 6.4 MiB that tend's packages
// cost; see package supervisor.
package main

import (
	"fmt"
	"os"

	"github.com/tendhq/tend/providers/process/supervisor"
)

func main() {
	supervisor.MaybeRun()
	fmt.Fprintf(os.Stderr, "usage: %s %s INSTANCE_DIR\n\n"+
		"tend-supervise supervises one replica of tend's process provider; tend starts it.\n",
		os.Args[0], supervisor.Arg)
	os.Exit(2)
}
