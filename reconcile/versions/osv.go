package versions

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/Masterminds/semver/v3"

	"github.com/tendhq/tend/spec"
)

// Advisory is one OSV record (https://ossf.github.io/osv-schema/): the
// fields tend reads.
type Advisory struct {
	ID               string          `json:"id"`
	Aliases          []string        `json:"aliases,omitempty"`
	Summary          string          `json:"summary,omitempty"`
	Withdrawn        string          `json:"withdrawn,omitempty"`
	Severity         []Severity      `json:"severity,omitempty"`
	Affected         []Affected      `json:"affected"`
	DatabaseSpecific json.RawMessage `json:"database_specific,omitempty"`

	// Where is the file (or URL) and line:column of the record.
	Where string `json:"-"`
}

// Severity is an OSV severity: a type (CVSS_V3, CVSS_V4, …) and its score
// (a CVSS vector). tend shows it as given.
type Severity struct {
	Type  string `json:"type"`
	Score string `json:"score"`
}

// Affected is one affected package of an advisory.
type Affected struct {
	Package           Package         `json:"package"`
	Severity          []Severity      `json:"severity,omitempty"`
	Ranges            []Range         `json:"ranges,omitempty"`
	Versions          []string        `json:"versions,omitempty"`
	DatabaseSpecific  json.RawMessage `json:"database_specific,omitempty"`
	EcosystemSpecific json.RawMessage `json:"ecosystem_specific,omitempty"`
}

// Package names an affected package: an ecosystem and a name, and
// optionally a package URL.
type Package struct {
	Ecosystem string `json:"ecosystem"`
	Name      string `json:"name"`
	PURL      string `json:"purl,omitempty"`
}

// Range types.
const (
	RangeSemver    = "SEMVER"
	RangeEcosystem = "ECOSYSTEM"
	RangeGit       = "GIT"
)

// Range is an affected range: a type and a timeline of events.
type Range struct {
	Type   string  `json:"type"`
	Repo   string  `json:"repo,omitempty"`
	Events []Event `json:"events"`
}

// Event is one event of a range; exactly one field is set.
type Event struct {
	Introduced   string `json:"introduced,omitempty"`
	Fixed        string `json:"fixed,omitempty"`
	LastAffected string `json:"last_affected,omitempty"`
	Limit        string `json:"limit,omitempty"`
}

// Advisories is a loaded advisory source.
type Advisories struct {
	Source  string
	Records []*Advisory

	once  sync.Once
	index map[string][]*Advisory // packageKey → the records that name it
}

// candidates are the records with an affected package that may be pkg
// (Package.Matches decides), in their order.
func (db *Advisories) candidates(pkg spec.PURL) []*Advisory {
	db.once.Do(func() {
		db.index = map[string][]*Advisory{}
		for _, a := range db.Records {
			seen := map[string]bool{}
			for _, af := range a.Affected {
				k := af.Package.key()
				if !seen[k] {
					seen[k] = true
					db.index[k] = append(db.index[k], a)
				}
			}
		}
	})
	keys := []string{purlKey(pkg)}
	if eco, name, ok := ecosystemOf(pkg); ok {
		keys = append(keys, ecoKey(eco, name))
	}
	if len(keys) == 1 {
		return db.index[keys[0]]
	}
	a, b := db.index[keys[0]], db.index[keys[1]]
	if len(a) == 0 || len(b) == 0 {
		return append(a[:len(a):len(a)], b...)
	}
	in := map[*Advisory]bool{}
	for _, r := range append(a[:len(a):len(a)], b...) {
		in[r] = true
	}
	var out []*Advisory
	for _, r := range db.Records {
		if in[r] {
			out = append(out, r)
		}
	}
	return out
}

func purlKey(p spec.PURL) string {
	return "purl|" + strings.ToLower(p.Type+"/"+p.Namespace+"/"+p.Name)
}

func ecoKey(eco, name string) string {
	eco, _, _ = strings.Cut(eco, ":")
	if eco == "PyPI" {
		name = normPyPI(name)
	}
	return "eco|" + eco + "|" + name
}

// key is where an affected package is indexed: its purl's, else its
// ecosystem and name.
func (p Package) key() string {
	if p.PURL != "" {
		if ap, err := spec.ParsePURL(p.PURL); err == nil {
			return purlKey(ap)
		}
		return "bad-purl"
	}
	return ecoKey(p.Ecosystem, p.Name)
}

// maxAdvisories bounds an advisory document (a file or the URL's answer).
const maxAdvisories = 256 << 20

// LoadAdvisories reads an advisory source: a folder whose .json files
// (at any depth) each hold one OSV record or a JSON array of them, or an
// http(s) URL that answers with a JSON array of OSV records (or one
// record). An unreadable or malformed source is an error naming the file
// or URL and the line and column. Withdrawn advisories are dropped.
func LoadAdvisories(ctx context.Context, source string, client *http.Client) (*Advisories, error) {
	out := &Advisories{Source: redact(source)}
	if strings.HasPrefix(source, "http://") || strings.HasPrefix(source, "https://") {
		data, err := fetchAdvisories(ctx, source, client)
		if err != nil {
			return nil, fmt.Errorf("advisories %s: %w", redact(source), err)
		}
		recs, err := parseAdvisories(data, redact(source))
		if err != nil {
			return nil, err
		}
		out.Records = recs
		return out, nil
	}
	st, err := os.Stat(source)
	if err != nil {
		return nil, fmt.Errorf("advisories: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("advisories: %s is not a folder (the source is a folder of OSV .json files, or an http(s) URL)", source)
	}
	var files []string
	err = filepath.WalkDir(source, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".json") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("advisories: %w", err)
	}
	sort.Strings(files)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("advisories: %w", err)
		}
		recs, err := parseAdvisories(data, f)
		if err != nil {
			return nil, err
		}
		out.Records = append(out.Records, recs...)
	}
	return out, nil
}

func fetchAdvisories(ctx context.Context, u string, client *http.Client) ([]byte, error) {
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, redactErr(err)
	}
	if pu, err := url.Parse(u); err == nil && pu.User != nil {
		pw, _ := pu.User.Password()
		req.SetBasicAuth(pu.User.Username(), pw)
		pu.User = nil
		req.URL = pu
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, redactErr(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET gave %s", resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAdvisories+1))
	if err != nil {
		return nil, redactErr(err)
	}
	if len(data) > maxAdvisories {
		return nil, fmt.Errorf("the answer is larger than %d MiB", maxAdvisories>>20)
	}
	return data, nil
}

// parseAdvisories reads one OSV record or a JSON array of them; where
// names the file or URL in errors.
func parseAdvisories(data []byte, where string) ([]*Advisory, error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, fmt.Errorf("%s: empty: an advisory file holds one OSV record (a JSON object) or a JSON array of them", where)
	}
	var raws []json.RawMessage
	var offsets []int
	if trimmed[0] == '[' {
		dec := json.NewDecoder(bytes.NewReader(data))
		if _, err := dec.Token(); err != nil {
			return nil, jsonErr(data, where, err, 0)
		}
		for dec.More() {
			start := int(dec.InputOffset())
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return nil, jsonErr(data, where, err, 0)
			}
			raws = append(raws, raw)
			offsets = append(offsets, start+bytes.IndexAny(data[start:], "{[\"tfn0123456789-"))
		}
		if _, err := dec.Token(); err != nil {
			return nil, jsonErr(data, where, err, 0)
		}
		if dec.More() {
			return nil, fmt.Errorf("%s:%s: more after the array", where, lineCol(data, int(dec.InputOffset())))
		}
	} else {
		if !json.Valid(data) {
			var v any
			return nil, jsonErr(data, where, json.Unmarshal(data, &v), 0)
		}
		raws = []json.RawMessage{data}
		offsets = []int{len(data) - len(trimmed)}
	}
	var out []*Advisory
	for i, raw := range raws {
		a := &Advisory{}
		if err := json.Unmarshal(raw, a); err != nil {
			return nil, jsonErr(data, where, err, offsets[i])
		}
		a.Where = where + ":" + lineCol(data, offsets[i])
		if err := a.check(); err != nil {
			return nil, fmt.Errorf("%s: %v", a.Where, err)
		}
		if a.Withdrawn != "" {
			continue
		}
		out = append(out, a)
	}
	return out, nil
}

// jsonErr gives a decoding error the line and column of where it lies;
// base is the offset of the record in data.
func jsonErr(data []byte, where string, err error, base int) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("%s:%s: not JSON: %v", where, lineCol(data, base+int(se.Offset)-1), err)
	case errors.As(err, &te):
		what := te.Field
		if what == "" {
			what = "the record"
		}
		return fmt.Errorf("%s:%s: not an OSV record: %s is a JSON %s, and OSV has a %s there", where, lineCol(data, base+int(te.Offset)), what, te.Value, te.Type.Kind())
	}
	return fmt.Errorf("%s:%s: %v", where, lineCol(data, base), err)
}

// lineCol is the 1-based line and column of an offset.
func lineCol(data []byte, off int) string {
	if off > len(data) {
		off = len(data)
	}
	if off < 0 {
		off = 0
	}
	line := 1 + bytes.Count(data[:off], []byte("\n"))
	col := off - bytes.LastIndexByte(data[:off], '\n')
	return fmt.Sprintf("%d:%d", line, col)
}

// check refuses a record that the OSV schema does not allow where tend
// reads it: no id, an event with not exactly one field, a range of an
// unknown type, a SEMVER version that is not one.
func (a *Advisory) check() error {
	if a.ID == "" {
		return errors.New("an OSV record has an id")
	}
	for i, af := range a.Affected {
		for j, r := range af.Ranges {
			at := fmt.Sprintf("%s: affected[%d].ranges[%d]", a.ID, i, j)
			switch r.Type {
			case RangeSemver, RangeEcosystem, RangeGit:
			default:
				return fmt.Errorf("%s: type %q is not SEMVER, ECOSYSTEM or GIT", at, r.Type)
			}
			introduced := false
			for k, e := range r.Events {
				if n := e.count(); n != 1 {
					return fmt.Errorf("%s.events[%d] has %d of introduced, fixed, last_affected and limit; an event has one", at, k, n)
				}
				introduced = introduced || e.Introduced != ""
				if r.Type != RangeSemver {
					continue
				}
				for _, v := range []string{e.Introduced, e.Fixed, e.LastAffected, e.Limit} {
					if v == "" || v == "0" && e.Introduced != "" || v == "*" && e.Limit != "" {
						continue
					}
					if _, err := semver.StrictNewVersion(v); err != nil {
						return fmt.Errorf("%s.events[%d]: %q is not a semantic version", at, k, v)
					}
				}
			}
			if !introduced {
				return fmt.Errorf("%s has no introduced event", at)
			}
		}
	}
	return nil
}

func (e Event) count() int {
	n := 0
	for _, v := range []string{e.Introduced, e.Fixed, e.LastAffected, e.Limit} {
		if v != "" {
			n++
		}
	}
	return n
}

// parseVersion reads an OSV version for comparison: a semantic version,
// or (ECOSYSTEM ranges) anything Masterminds/semver reads, such as
// "v1.2" or "1.2".
func parseVersion(typ, v string) (*semver.Version, error) {
	if typ == RangeSemver {
		return semver.StrictNewVersion(v)
	}
	return semver.NewVersion(v)
}

// Affects reports whether version v of the package lies in one of the
// affected ranges or in the versions list, by the OSV schema's evaluation
// (IsVulnerable). GIT ranges name commits, not versions, and are skipped.
// A range event that is not a version is an error.
func (af *Affected) Affects(v *semver.Version) (bool, error) {
	for _, s := range af.Versions {
		if s == v.Original() || s == v.String() {
			return true, nil
		}
		if lv, err := semver.NewVersion(s); err == nil && lv.Equal(v) && lv.Prerelease() == v.Prerelease() {
			return true, nil
		}
	}
	for _, r := range af.Ranges {
		if r.Type == RangeGit {
			continue
		}
		in, err := r.includes(v)
		if err != nil || in {
			return in, err
		}
	}
	return false, nil
}

type event struct {
	kind string // introduced, fixed, last_affected, limit
	v    *semver.Version
	zero bool // introduced "0": before every version
	inf  bool // limit "*": after every version
}

func (r Range) parsed() ([]event, error) {
	out := make([]event, 0, len(r.Events))
	for _, e := range r.Events {
		ev := event{}
		var s string
		switch {
		case e.Introduced != "":
			ev.kind, s = "introduced", e.Introduced
			ev.zero = s == "0"
		case e.Fixed != "":
			ev.kind, s = "fixed", e.Fixed
		case e.LastAffected != "":
			ev.kind, s = "last_affected", e.LastAffected
		case e.Limit != "":
			ev.kind, s = "limit", e.Limit
			ev.inf = strings.Contains(s, "*")
		default:
			continue
		}
		if !ev.zero && !ev.inf {
			v, err := parseVersion(r.Type, s)
			if err != nil {
				return nil, fmt.Errorf("%s range: %s %q is not a version tend can compare", r.Type, ev.kind, s)
			}
			ev.v = v
		}
		out = append(out, ev)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].less(out[j]) })
	return out, nil
}

func (e event) less(o event) bool {
	switch {
	case e.zero || o.inf:
		return !o.zero && !e.inf
	case o.zero || e.inf:
		return false
	}
	return e.v.LessThan(o.v)
}

// includes is the schema's IncludedInRanges for one range.
func (r Range) includes(v *semver.Version) (bool, error) {
	events, err := r.parsed()
	if err != nil {
		return false, err
	}
	limited, below := false, false
	for _, e := range events {
		if e.kind == "limit" {
			limited = true
			below = below || e.inf || v.LessThan(e.v)
		}
	}
	if limited && !below {
		return false, nil
	}
	vulnerable := false
	for _, e := range events {
		switch e.kind {
		case "introduced":
			if e.zero || !v.LessThan(e.v) {
				vulnerable = true
			}
		case "fixed":
			if !v.LessThan(e.v) {
				vulnerable = false
			}
		case "last_affected":
			if v.GreaterThan(e.v) {
				vulnerable = false
			}
		}
	}
	return vulnerable, nil
}

// fixes lists the fixed versions of the range, ascending.
func (af *Affected) fixes() []*semver.Version {
	var out []*semver.Version
	for _, r := range af.Ranges {
		if r.Type == RangeGit {
			continue
		}
		for _, e := range r.Events {
			if e.Fixed == "" {
				continue
			}
			if v, err := parseVersion(r.Type, e.Fixed); err == nil {
				out = append(out, v)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].LessThan(out[j]) })
	return out
}

// Matches reports whether the affected package is the server's package
// (a package URL): by the advisory's purl when it gives one, else by its
// ecosystem and name, which the purl's type maps to (golang → Go, npm,
// pypi → PyPI, cargo → crates.io, gem → RubyGems, maven, nuget,
// composer → Packagist, hex, pub, github → GitHub Actions).
func (p Package) Matches(pkg spec.PURL) bool {
	if p.PURL != "" {
		ap, err := spec.ParsePURL(p.PURL)
		if err != nil {
			return false
		}
		if !strings.EqualFold(ap.Type, pkg.Type) || !strings.EqualFold(ap.Namespace, pkg.Namespace) || !strings.EqualFold(ap.Name, pkg.Name) {
			return false
		}
		a, b := ap.Qualifiers["repository_url"], pkg.Qualifiers["repository_url"]
		return a == "" || b == "" || strings.EqualFold(strings.TrimSuffix(a, "/"), strings.TrimSuffix(b, "/"))
	}
	eco, name, ok := ecosystemOf(pkg)
	if !ok {
		return false
	}
	if p.Ecosystem != eco && !strings.HasPrefix(p.Ecosystem, eco+":") {
		return false
	}
	if eco == "PyPI" {
		return normPyPI(p.Name) == normPyPI(name)
	}
	return p.Name == name
}

func ecosystemOf(p spec.PURL) (eco, name string, ok bool) {
	joined := p.Name
	if p.Namespace != "" {
		joined = p.Namespace + "/" + p.Name
	}
	switch p.Type {
	case "golang":
		return "Go", joined, true
	case "npm":
		return "npm", joined, true
	case "pypi":
		return "PyPI", p.Name, true
	case "cargo":
		return "crates.io", p.Name, true
	case "gem":
		return "RubyGems", p.Name, true
	case "maven":
		return "Maven", p.Namespace + ":" + p.Name, p.Namespace != ""
	case "nuget":
		return "NuGet", p.Name, true
	case "composer":
		return "Packagist", joined, true
	case "hex":
		return "Hex", p.Name, true
	case "pub":
		return "Pub", p.Name, true
	case "github":
		return "GitHub Actions", joined, true
	}
	return "", "", false
}

func normPyPI(s string) string {
	s = strings.ToLower(s)
	return strings.NewReplacer("_", "-", ".", "-").Replace(s)
}
