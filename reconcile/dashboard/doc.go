// Package dashboard is the fleet dashboard that `tend run` serves at "/":
// server-rendered pages (html/template, embedded with go:embed) with a
// small script that keeps them live through server-sent events fed by the
// loop's events.
//
// Pages and routes (Handler):
//
//	GET  /                      the fleet (?provider=&host=&state= filter it)
//	GET  /servers/NAME          one server: replicas, plan of the next apply,
//	                            history, checks, contract, backups, scaling
//	GET  /fragment/...          the live part of a page, for the script
//	GET  /events                server-sent events: the loop's events
//	GET  /ui/...                the script, the style sheet, the icon
//	POST /login, /logout        the API token, entered once, for a session
//	POST /actions/ACTION        sync, retry, rollback, backup, approve,
//	                            reject (a session, its CSRF token and a
//	                            same-origin request)
//
// What this package must not do:
//
//   - Show a secret. Values are escaped by html/template; messages that
//     leave the engine (events, revision and drift messages) go through
//     reconcile.Redact; the API token is never stored or echoed: a session
//     cookie holds a random id and its HMAC, not the token.
//   - Change the fleet on its own or beside the loop: every action goes
//     through the loop (Trigger; Loop.Do, which runs the job between
//     passes under the apply lock, as scheduled backups run; Loop.Decide,
//     which records an approval that the next pass carries out).
//   - Run inline script or load anything from elsewhere: the
//     Content-Security-Policy is default-src 'self', and the pages keep it.
//   - Block the loop: events reach the browser through a bounded buffer per
//     client, and a client that falls behind is dropped (it reconnects).
package dashboard
