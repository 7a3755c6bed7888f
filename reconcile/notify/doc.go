// Package notify delivers tend's events (an apply, a failure, a rollback,
// drift, a held revision, a backup) to the webhooks of the notify blocks.
//
// New builds a Notifier from the notify blocks. Send hands it an Event; the
// Notifier queues a copy for every target whose events list the event's kind
// and whose servers list the event's server (a target without servers takes
// every server, and an event without a server — a revision that does not
// load — concerns the whole fleet and reaches every target that takes its
// kind). Send never waits for the network: each target has a bounded queue
// and one goroutine that delivers its events in order; when the queue is
// full the oldest queued event is dropped and the drop is logged. Close stops
// taking events and waits, until its context ends, for the queues to drain.
//
// A delivery is an HTTP POST (Content-Type application/json, User-Agent
// tend, plus the target's headers) of either the Event as JSON (format
// "json") or a Slack incoming-webhook body (format "slack": a one-line text
// and an attachment with the fields). A 2xx answer is success. 429, 5xx and
// network errors are retried with exponential backoff (Options.Backoff,
// doubled each time), waiting at least as long as a Retry-After answer asks,
// up to 30s; any other answer, including a redirect, is final. A delivery
// that finally fails is one log line with the target's name, the event and
// the status.
//
// What notify must not do:
//
//   - show a secret: a sensitive URL and every header value are revealed
//     only to send the request. Log lines name the target; they carry the
//     URL's host only when the URL is not sensitive, never its path or
//     query, never a header value, and never a response body. Network errors
//     are logged without the URL, and for a sensitive URL without its host;
//   - follow a redirect with the default client: a redirect could carry the
//     target's headers to another host;
//   - block the caller of Send on the network, or let one slow target delay
//     another;
//   - import another package of tend than spec.
package notify
