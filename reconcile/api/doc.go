// Package api is the HTTP side of `tend run`: the webhooks that ask for a
// sync, the health and readiness probes, the Prometheus metrics and a small
// JSON API over the daemon's status and history.
//
// Routes (NewServer):
//
//	GET  /healthz             200 "ok" while the process serves requests
//	GET  /readyz              200 once the desired state loaded, else 503
//	GET  /metrics             Prometheus exposition of Metrics' registry
//	POST /hooks/github        X-Hub-Signature-256, X-GitHub-Event
//	POST /hooks/gitlab        X-Gitlab-Token, X-Gitlab-Event
//	POST /hooks/gitea         X-Gitea-Signature / X-Forgejo-Signature / X-Hub-Signature-256
//	POST /hooks/generic       X-Tend-Signature, optional JSON {"ref": "..."}
//	GET  /api/v1/status       Backend.Status          (Authorization: Bearer)
//	GET  /api/v1/history      Backend.History         (?server=&limit=)
//	POST /api/v1/sync         Backend.Trigger("api")  202 {"accepted":true}
//	     /                    Config.Dashboard, when set (its POSTs rate limited)
//
// A webhook endpoint whose secret is empty answers 404; the JSON API answers
// 403 until an API token is set. Webhooks and the API are rate limited per
// client address; health, readiness and metrics are not. Every signature and
// token is compared in constant time, and a body is read up to the
// configured limit plus one byte, never further.
//
// What this package must not do:
//
//   - Reconcile. It holds no reconcile logic: a valid push to the tracked
//     ref becomes one Backend.Trigger call, and what a pass does, when it
//     runs and how triggers coalesce is the Backend's business. Trigger must
//     not block, so a webhook is answered at once.
//   - Log or echo a secret. Webhook secrets, the API token, signatures and
//     the Authorization header never reach a log line, a response or an
//     error. A refused request is logged once with the endpoint, the remote
//     address and a fixed reason.
//   - Register on the global Prometheus registry: Metrics lives on the
//     registry it is given, so tests and several daemons in one process do
//     not collide.
//   - Import other packages of this module: the daemon adapts itself to
//     Backend, not the other way round.
package api
