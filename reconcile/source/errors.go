package source

import (
	"fmt"
	"strings"
	"time"
)

// Reasons of an UnreachableError.
const (
	ReasonNetwork  = "network"   // connection refused, DNS, TLS, protocol error...
	ReasonTimeout  = "timeout"   // Options.Timeout expired
	ReasonCanceled = "canceled"  // the caller's context was canceled
	ReasonAuth     = "auth"      // authentication required or refused
	ReasonNotFound = "not-found" // the remote says there is no such repository
	ReasonHostKey  = "host-key"  // ssh host key unknown or mismatched
)

// UnreachableError says the remote could not be asked or fetched from:
// network, authentication, timeout. Its text names the remote (without
// userinfo) and the cause, never a password, token or passphrase. Unwrap
// gives the cause, so errors.Is(err, context.DeadlineExceeded) works.
type UnreachableError struct {
	Remote  string        // the URL without userinfo
	Op      string        // "ls-remote" or "fetch"
	Reason  string        // one of the Reason constants
	Timeout time.Duration // the bound that expired, for ReasonTimeout
	Err     error         // the cause, its text scrubbed of secrets
	// NoCredentials is set, for ReasonAuth, when no credentials were
	// configured.
	NoCredentials bool
}

func (e *UnreachableError) Error() string {
	var why string
	switch e.Reason {
	case ReasonTimeout:
		why = fmt.Sprintf("timed out after %s", e.Timeout)
	case ReasonCanceled:
		why = "canceled"
	case ReasonAuth:
		if e.NoCredentials {
			why = fmt.Sprintf("the remote requires credentials and none are configured (%v)", e.Err)
		} else {
			why = fmt.Sprintf("authentication failed: the remote refused the credentials (%v)", e.Err)
		}
	case ReasonNotFound:
		why = fmt.Sprintf("repository not found (%v)", e.Err)
	case ReasonHostKey:
		why = fmt.Sprintf("ssh host key check failed (%v)", e.Err)
	default:
		why = fmt.Sprint(e.Err)
	}
	return fmt.Sprintf("source: cannot reach %s (%s): %s", e.Remote, e.Op, why)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// RefError says the ref does not exist on the remote: no such branch or
// tag, no tag in the semver range, the commit is in no branch or tag, or the
// repository is empty. Available lists a few of what exists.
type RefError struct {
	Remote    string
	Ref       Ref
	Reason    string   // what is missing, e.g. `branch "dev" not found`
	What      string   // what Available lists: "branches", "tags", "semver tags"
	Available []string // up to maxListed names, sorted (semver tags: newest first)
	More      int      // how many more exist beyond Available
}

func (e *RefError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "source: %s on %s", e.Reason, e.Remote)
	if e.What != "" {
		if len(e.Available) == 0 {
			fmt.Fprintf(&b, "; it has no %s", e.What)
		} else {
			fmt.Fprintf(&b, "; %s: %s", e.What, strings.Join(e.Available, ", "))
			if e.More > 0 {
				fmt.Fprintf(&b, " (and %d more)", e.More)
			}
		}
	}
	return b.String()
}

// Reasons of a SignatureError.
const (
	SigUnsigned   = "unsigned"            // no signature at all
	SigUnknownKey = "unknown-key"         // signed by a key not in the keyring
	SigInvalid    = "invalid"             // by a keyring key, but does not verify (tampered, expired, revoked)
	SigMultiple   = "multiple-signatures" // more than one signature block
	SigNotPGP     = "not-openpgp"         // e.g. an ssh or x509 signature
)

// SignatureError says the commit or annotated tag that the ref resolves to
// is not signed by a key of Options.Keyring.
type SignatureError struct {
	Remote string
	Ref    string // the resolved ref
	Commit string // full hash of the commit
	Tag    string // the annotated tag's name, when the tag was the signed object
	KeyID  string // the signing key id (16 hex digits), when there was a signature
	Reason string // one of the Sig constants
	Err    error  // the OpenPGP error, if any
}

func (e *SignatureError) Error() string {
	obj := "commit " + e.Commit
	if e.Tag != "" {
		obj = fmt.Sprintf("tag %s (commit %s)", e.Tag, e.Commit)
	}
	where := ""
	if e.Ref != "" && e.Ref != e.Commit {
		where = " on " + e.Ref
	}
	switch e.Reason {
	case SigUnsigned:
		return fmt.Sprintf("source: %s%s is not signed; a signature by a key of the keyring is required", obj, where)
	case SigUnknownKey:
		return fmt.Sprintf("source: %s%s is signed by key %s, which is not in the keyring", obj, where, e.KeyID)
	case SigMultiple:
		return fmt.Sprintf("source: %s%s carries more than one signature, which is refused", obj, where)
	case SigNotPGP:
		return fmt.Sprintf("source: %s%s is not signed with OpenPGP (%v)", obj, where, e.Err)
	default:
		return fmt.Sprintf("source: %s%s: signature by key %s does not verify: %v", obj, where, e.KeyID, e.Err)
	}
}

func (e *SignatureError) Unwrap() error { return e.Err }

// PathError says Options.Path does not exist, or is not a directory, in the
// commit the ref resolves to.
type PathError struct {
	Path   string
	Commit string
	Ref    string
	Reason string // "does not exist" or "is not a directory"
}

func (e *PathError) Error() string {
	return fmt.Sprintf("source: path %q %s in commit %s (%s)", e.Path, e.Reason, e.Commit, e.Ref)
}

// SizeError says the files under Path add up to more than Options.MaxBytes.
type SizeError struct {
	Path   string
	Commit string
	Limit  int64
	File   string // the file whose size went over the limit
}

func (e *SizeError) Error() string {
	p := e.Path
	if p == "" {
		p = "/"
	}
	return fmt.Sprintf("source: files under %q in commit %s add up to more than %d bytes (limit reached at %s)", p, e.Commit, e.Limit, e.File)
}

// scrubbed is an error whose text has had secrets removed; Unwrap still
// gives the original error for errors.Is / errors.As.
type scrubbed struct {
	msg string
	err error
}

func (s *scrubbed) Error() string { return s.msg }
func (s *scrubbed) Unwrap() error { return s.err }

// redactor removes secrets from error texts.
type redactor struct{ secrets []string }

func (r redactor) str(s string) string {
	for _, sec := range r.secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "***")
		}
	}
	return s
}

// maxErrText bounds the cause's text in an error (a server may answer an
// error with a whole HTML page).
const maxErrText = 400

func (r redactor) err(err error) error {
	if err == nil {
		return nil
	}
	msg := strings.Join(strings.Fields(r.str(err.Error())), " ")
	if len(msg) > maxErrText {
		msg = msg[:maxErrText] + "…"
	}
	return &scrubbed{msg: msg, err: err}
}
