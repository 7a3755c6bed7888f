// Command tend keeps a fleet of servers in the state a git repository of HCL
// files describes. This package holds the command line only: flags, output
// and exit codes; the work is done by spec, reconcile and providers.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/tendhq/tend/providers/process"
)

// version is set at build time: -ldflags "-X main.version=1.2.3".
var version = "0.1.0"

// exitError carries an exit code out of a command without printing more.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func main() {
	// A replica supervisor of the process provider is this same binary.
	process.MaybeSupervise()
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the command line and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	root := newRootCmd(stdout, stderr)
	root.SetArgs(terraformStyleFlags(root, args))
	err := root.Execute()
	var ee exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	default:
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return 1
	}
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "tend",
		Short: "Keep a fleet of servers in the state a git repository describes",
		Long: `tend keeps a fleet of servers (MCP servers and other long-running services)
in the state that a repository of HCL files describes: it plans the difference
against what is running, applies it through a provider, verifies the result
and rolls back by itself when verification fails.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newValidateCmd(), newFmtCmd(), newPlanCmd(), newDocsCmd(), newApplyCmd(), newRollbackCmd(),
		newHistoryCmd(), newStatusCmd(), newRetryCmd(), newUnlockCmd(), newRunCmd(), newSyncCmd(), newVersionCmd(),
		newBackupCmd(), newBackupsCmd(), newRestoreCmd())
	root.AddCommand(newCapacityCmd())
	root.AddCommand(newTopCmd())
	root.AddCommand(newStoreCmd())
	root.AddCommand(newLockCmd(), newOutdatedCmd(), newAuditCmd())
	root.AddCommand(newLogsCmd())
	root.AddCommand(newApproveCmd(), newRejectCmd())
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print tend's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(cmd.OutOrStdout(), "tend %s\n", version)
			return nil
		},
	}
}

// terraformStyleFlags accepts long flags written with one dash, as Terraform
// users type them (tend plan -out FILE -detailed-exitcode): an argument
// "-NAME" or "-NAME=VALUE" whose NAME is a long flag of some command becomes
// "--NAME". Shorthand flags such as -o are untouched.
func terraformStyleFlags(root *cobra.Command, args []string) []string {
	long := map[string]bool{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.Flags().VisitAll(func(f *pflag.Flag) { long[f.Name] = true })
		c.PersistentFlags().VisitAll(func(f *pflag.Flag) { long[f.Name] = true })
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	out := make([]string, len(args))
	copy(out, args)
	for i, a := range out {
		if a == "--" {
			break
		}
		if len(a) < 3 || a[0] != '-' || a[1] == '-' {
			continue
		}
		name, _, _ := strings.Cut(a[1:], "=")
		if len(name) > 1 && long[name] {
			out[i] = "-" + a
		}
	}
	return out
}
