package spec

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"
)

// Redacted is what every printer shows in place of a sensitive value.
const Redacted = "(sensitive)"

// Value is a string from the desired state that may be sensitive (it came
// from secret(), a sensitive variable, or a value computed from either).
//
// Its String, GoString, Format-by-%v and JSON forms never show a sensitive
// value, so that a Value can be logged or printed without thought. Code that
// must hand the real value to a backend calls Reveal.
type Value struct {
	v         string
	sensitive bool
	unknown   bool
}

// Plain returns a non-sensitive Value.
func Plain(s string) Value { return Value{v: s} }

// Sensitive returns a sensitive Value.
func Sensitive(s string) Value { return Value{v: s, sensitive: true} }

// unknownValue is a value known only later (an unresolved secret or version).
func unknownValue(sensitive bool) Value { return Value{unknown: true, sensitive: sensitive} }

// IsSensitive reports whether the value must never be shown.
func (v Value) IsSensitive() bool { return v.sensitive }

// IsKnown reports whether the value is known (false for a secret that could
// not be resolved while validating).
func (v Value) IsKnown() bool { return !v.unknown }

// Reveal returns the real value. Only code that hands the value to a backend
// may call it; never print what it returns.
func (v Value) Reveal() string { return v.v }

// String returns the value, or "(sensitive)".
func (v Value) String() string {
	switch {
	case v.sensitive:
		return Redacted
	case v.unknown:
		return "(known after resolution)"
	}
	return v.v
}

// GoString keeps %#v from showing a sensitive value.
func (v Value) GoString() string { return v.String() }

// MarshalJSON writes the value, or "(sensitive)".
func (v Value) MarshalJSON() ([]byte, error) { return json.Marshal(v.String()) }

// Digest is a stable hash of the value for state and plan fingerprints: a
// sensitive value is stored and compared only as this digest.
func (v Value) Digest() string {
	sum := sha256.Sum256([]byte(v.v))
	return hex.EncodeToString(sum[:])
}

// Values renders a list of Values for display.
func Values(vs []Value) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.String()
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
