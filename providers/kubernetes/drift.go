package kubernetes

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Drift is told from server-side apply's field ownership. Right after an
// apply, tend records a digest of the fields its apply owns (the
// managedFields entry of manager "tend", operation Apply) in the object's
// tend.dev/fields annotation. Whoever changes one of those fields to
// another value (kubectl edit, set, scale, patch, or another applier
// forcing it) takes that field away from tend's entry, so the digest no
// longer matches. Fields tend does not set, such as those the API server
// defaults, are never in tend's entry, so they never show as drift; a hand
// edit that writes the value tend set leaves the field shared, which is no
// drift either.

// fieldsExcluded are the fields left out of the digest, by kind: the
// replica count of a Deployment changes hands with every scale (tend's own
// StopReplica, an autoscaler) and is compared by value instead.
var fieldsExcluded = map[string][][]string{
	"Deployment": {
		{"f:spec", "f:replicas"},
		{"f:metadata", "f:annotations", "f:" + AnnotationReplicas},
	},
}

// fieldsDigest is the digest of the fields tend's apply owns in an object,
// or "" when tend has applied none.
func fieldsDigest(kind string, mf []metav1.ManagedFieldsEntry) string {
	for _, e := range mf {
		if e.Manager != FieldManager || e.Operation != metav1.ManagedFieldsOperationApply || e.Subresource != "" || e.FieldsV1 == nil {
			continue
		}
		var set map[string]any
		if err := json.Unmarshal(e.FieldsV1.GetRawBytes(), &set); err != nil {
			return ""
		}
		for _, p := range fieldsExcluded[kind] {
			removePath(set, p)
		}
		b, _ := json.Marshal(set) // map keys are sorted: a canonical form
		sum := sha256.Sum256(b)
		return hex.EncodeToString(sum[:])[:16]
	}
	return ""
}

func removePath(m map[string]any, p []string) {
	for i, k := range p {
		if i == len(p)-1 {
			delete(m, k)
			return
		}
		next, ok := m[k].(map[string]any)
		if !ok {
			return
		}
		m = next
	}
}

// objectDrift says whether an object's tend-owned fields were changed by
// someone else, and by whom.
func objectDrift(kind, name string, om metav1.ObjectMeta) []string {
	want := om.Annotations[AnnotationFields]
	if want == "" {
		return nil // tend has not recorded it yet (an apply cut short); the next apply does
	}
	got := fieldsDigest(kind, om.ManagedFields)
	if got == want {
		return nil
	}
	if got == "" {
		return []string{fmt.Sprintf("%s %s: no field is tend's any more (it was replaced by hand)", kind, name)}
	}
	var who []string
	for _, e := range om.ManagedFields {
		if e.Manager == FieldManager || e.Subresource != "" || e.Manager == "kube-controller-manager" || e.FieldsV1 == nil {
			continue
		}
		paths := fieldPaths(e.FieldsV1.GetRawBytes())
		if len(paths) == 0 {
			continue
		}
		if len(paths) > 4 {
			paths = append(paths[:4], fmt.Sprintf("and %d more", len(paths)-4))
		}
		when := ""
		if e.Time != nil {
			when = " at " + e.Time.UTC().Format("2006-01-02T15:04:05Z")
		}
		who = append(who, fmt.Sprintf("%s%s: %s", e.Manager, when, strings.Join(paths, ", ")))
	}
	msg := fmt.Sprintf("%s %s: fields tend set were changed by someone else", kind, name)
	if len(who) > 0 {
		msg += " (" + strings.Join(who, "; ") + ")"
	}
	return []string{msg}
}

// fieldPaths lists the leaves of a managedFields set in a readable form,
// such as spec.template.spec.containers[name=server].image.
func fieldPaths(raw []byte) []string {
	var set map[string]any
	if json.Unmarshal(raw, &set) != nil {
		return nil
	}
	var out []string
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		if len(m) == 0 || (len(m) == 1 && m["."] != nil) {
			if prefix != "" {
				out = append(out, prefix)
			}
			return
		}
		for _, k := range sortedKeys(m) {
			if k == "." {
				continue
			}
			child, _ := m[k].(map[string]any)
			walk(joinField(prefix, k), child)
		}
	}
	walk("", set)
	sort.Strings(out)
	return out
}

func joinField(prefix, k string) string {
	switch {
	case strings.HasPrefix(k, "f:"):
		if prefix == "" {
			return k[2:]
		}
		return prefix + "." + k[2:]
	case strings.HasPrefix(k, "k:"):
		var key map[string]any
		if json.Unmarshal([]byte(k[2:]), &key) == nil {
			var parts []string
			for _, kk := range sortedKeys(key) {
				parts = append(parts, fmt.Sprintf("%s=%v", kk, key[kk]))
			}
			return prefix + "[" + strings.Join(parts, ",") + "]"
		}
		return prefix + "[" + k[2:] + "]"
	case strings.HasPrefix(k, "v:"):
		return prefix + "[" + k[2:] + "]"
	case strings.HasPrefix(k, "i:"):
		return prefix + "[" + k[2:] + "]"
	}
	return prefix + "." + k
}
