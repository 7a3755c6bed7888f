// Package fleetdocs writes the documentation of a fleet: from the desired
// state (a spec.Config) and from what the servers exposed when tend last
// verified them (their recorded contracts), it generates
//
//	README.md           the index: servers, versions, providers, change windows
//	API.md              the API reference: what each server exposes
//	servers/NAME.md     the API reference of each server in full: endpoints,
//	                    tools with their parameters and input schemas,
//	                    resources, prompts
//	CONFIGURATION.md    the configuration reference: how each server is run
//	CHANGELOG.md        what tend verified of each server, newest first, with
//	                    what its API contract added, changed or removed
//	TROUBLESHOOTING.md  each server's checks and what their failures mean,
//	                    the failures recorded, logs, retry, roll back, restore
//	fleet.json          the desired state and contracts, machine-readable
//
// CHANGELOG.md and TROUBLESHOOTING.md are written from a History the
// engine reads from the state store (Options.History).
//
// Generate is pure and deterministic: the same inputs give the same bytes
// (maps are sorted, nothing depends on the time or the machine), so that
// regenerating documentation that did not change changes nothing. Write
// puts files in a folder, rewriting only those whose content differs, and
// removes the files it generated before and no longer does; it keeps the
// list of the files it owns in a manifest (.tend-docs) and never deletes or
// overwrites a file that is not in it.
//
// Documentation is meant to be committed and published, so it must never
// show a secret: every value of the desired state is printed with
// spec.Value.String, which shows a sensitive value as "(sensitive)", and the
// content of a sensitive configuration file is not shown at all. This
// package never calls spec.Value.Reveal.
package fleetdocs
