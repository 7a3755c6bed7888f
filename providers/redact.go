package providers

import (
	"sort"
	"strings"

	"github.com/tendhq/tend/spec"
)

// Redactor hides secret values in messages.
type Redactor []string

// String replaces every secret in s with spec.Redacted.
func (r Redactor) String(s string) string {
	for _, v := range r {
		if v != "" {
			s = strings.ReplaceAll(s, v, spec.Redacted)
		}
	}
	return s
}

// Error returns err, or an error whose text has its secrets replaced.
func (r Redactor) Error(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if red := r.String(msg); red != msg {
		return redactedError{msg: red}
	}
	return err
}

// redactedError replaces an error whose text held a secret; it keeps no
// link to the original, which would still hold it.
type redactedError struct{ msg string }

func (e redactedError) Error() string { return e.msg }

// Add adds secrets, longest first so that one secret inside another is
// hidden whole.
func (r *Redactor) Add(vs ...string) {
	for _, v := range vs {
		if v != "" {
			*r = append(*r, v)
		}
	}
	sort.Slice(*r, func(i, j int) bool { return len((*r)[i]) > len((*r)[j]) })
}
