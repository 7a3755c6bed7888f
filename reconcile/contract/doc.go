// Package contract records what an MCP server exposes — its tools with their
// input schemas, its resources and resource templates, its prompts with
// their arguments — and judges whether a new revision keeps faith with the
// clients of the old one.
//
// The flow is plain data:
//
//	Fetch (an MCP client) → Contract → Compare(old, new) → Diff → Evaluate(mode, versions) → Verdict
//
// A Contract is deterministic: every list is sorted by name (resources by
// URI or URI template, prompt arguments by name) and every JSON schema is
// canonical (keys sorted, compact), so that two fetches of the same server
// give equal JSON, and a stored contract can be compared byte for byte.
//
// # What breaks a client
//
// Compare looks at the input schema of every tool, top-level properties and,
// recursively, the properties of nested objects (named with a dotted path,
// "filter.tag") and the items of arrays ("tags[]"). It compares what the
// schema accepts, not what it documents: descriptions, titles, output
// schemas, annotations, formats, bounds (minimum, maxLength, pattern) and
// combinators (anyOf, oneOf, allOf, $ref) are not compared.
//
// Breaking, because a request that worked may now fail or mean something
// else:
//
//   - a removed tool, resource, resource template or prompt;
//   - a parameter that becomes required, or a new parameter that is required;
//   - a parameter whose type no longer accepts every value it did (string to
//     array; array-or-null to array; integer to string); "any" (no type) to a
//     type counts as a change;
//   - a value removed from an enum, or an enum put on a parameter that had
//     none;
//   - a removed parameter. This is breaking whether or not the schema has
//     additionalProperties false: with false (as the go-sdk derives from Go
//     structs) a client that still sends it is refused; without it, the
//     argument is silently ignored, and a call that filtered by it now does
//     something else (lists every note instead of those with a tag). Either
//     way the client's call changes meaning, so tend does not let it pass
//     under a minor version;
//   - additionalProperties becoming false where it was not;
//   - a prompt argument removed, newly required, or new and required.
//
// Additions, which an old client never notices: a new tool, resource or
// prompt; a new optional parameter or prompt argument; a required parameter
// or argument made optional; a type widened (integer to number, string to
// string-or-null); an enum value added, or an enum lifted; additionalProperties
// no longer false.
//
// # Client capabilities
//
// A server may offer a tool, resource or prompt only to clients that
// declare a capability when they initialize their session: a tool that
// samples the client's model is offered only to clients that declare
// sampling. Fetch sees what a client with FetchOptions.ClientCapabilities
// sees (roots, as the go-sdk client declares by default, when none are
// given), and records them in the contract. What only clients with other
// capabilities see is not in the contract, so its removal is not detected:
// declare the capabilities the fleet's clients use.
//
// Compare does not judge contracts fetched under different capabilities: a
// tool offered only to sampling clients would seem added or removed with
// the capability rather than with the release. It lists the differences in
// Diff.Unjudged and says how the capabilities changed; Evaluate then
// neither fails nor warns but sets Verdict.Note, and the new contract
// becomes the one the next revision is compared with. A contract recorded
// before tend recorded the capabilities counts as fetched declaring roots,
// as it was.
//
// # Versions
//
// Bump classifies a version change with semantic versioning (parsed with
// github.com/Masterminds/semver/v3, which accepts a leading "v" and
// "1.2" for "1.2.0"). Under 1.0.0, semver §4 says anything may change at any
// time; tend follows the convention of Cargo's and npm's caret ranges
// instead, so that contracts still protect 0.x servers: in 0.y.z the
// leftmost non-zero part is the major one. 0.4.1 → 0.5.0 is a major bump,
// 0.4.1 → 0.4.2 a minor one, 0.0.3 → 0.0.4 a major one.
//
// Evaluate accepts breaking changes only under a major bump. A downgrade
// with breaks is a warning, never a failure (it is a deliberate step back,
// and failing it would block a manual rollback). Every other bump — minor,
// patch, a pre-release change, the same version, or versions that are not
// semver (unknown) — fails under contract = "enforce" and warns under
// "warn"; "off" says nothing.
//
// This package talks to servers only in Fetch, and only as an MCP client; it
// stores nothing and never calls a tool.
package contract
