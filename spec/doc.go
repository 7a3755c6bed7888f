// Package spec turns a state repository of HCL files into typed desired
// state: servers, providers, variables, windows and notification targets.
//
// It parses every *.hcl file under a directory (skipping hidden folders and
// environments/), applies the chosen environment's variable values, evaluates
// expressions with the language's functions, and checks everything it can
// without looking at the running fleet: types, references, dependency cycles,
// version pins, durations, cron schedules, ports shared on a host.
//
// All problems come back at once as hcl.Diagnostics, each with the range of
// the source it is about. Values that come from secret() or a sensitive
// variable stay marked through decoding and land in Value, whose printed and
// JSON forms are always "(sensitive)".
//
// spec must not import any other package of tend, observe or change the
// fleet, or reach the network: it is pure computation on files, the
// reconciler's environment and its secret source.
package spec
