package versions

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/Masterminds/semver/v3"

	"github.com/tendhq/tend/spec"
)

func ev(kind, v string) Event {
	switch kind {
	case "i":
		return Event{Introduced: v}
	case "f":
		return Event{Fixed: v}
	case "l":
		return Event{LastAffected: v}
	}
	return Event{Limit: v}
}

// TestAffectsSchemaExamples evaluates the range examples of the OSV
// schema (docs/schema.md, "Examples" and "last_affected vs fixed") and
// the pseudocode's edge cases (IsVulnerable, BeforeLimits).
func TestAffectsSchemaExamples(t *testing.T) {
	semverR := func(events ...Event) []Range { return []Range{{Type: RangeSemver, Events: events}} }
	cases := []struct {
		name     string
		ranges   []Range
		versions []string
		affected map[string]bool
	}{
		{"unfixed: every version", semverR(ev("i", "0")),
			nil, map[string]bool{"0.0.1": true, "1.0.0": true, "99.0.0": true, "0.0.0-alpha": true}},
		{"fixed: everything before 1.0.2", semverR(ev("i", "0"), ev("f", "1.0.2")),
			nil, map[string]bool{"0.1.0": true, "1.0.1": true, "1.0.2-rc.1": true, "1.0.2": false, "1.0.3": false, "2.0.0": false}},
		{"multiple: [1.0.0, 1.0.2) and [3.0.0, 3.2.5)", semverR(ev("i", "1.0.0"), ev("f", "1.0.2"), ev("i", "3.0.0"), ev("f", "3.2.5")),
			nil, map[string]bool{"0.9.9": false, "1.0.0": true, "1.0.1": true, "1.0.2": false, "2.5.0": false, "3.0.0": true, "3.2.4": true, "3.2.5": false, "4.0.0": false}},
		{"multiple, events out of order", semverR(ev("f", "3.2.5"), ev("i", "3.0.0"), ev("f", "1.0.2"), ev("i", "1.0.0")),
			nil, map[string]bool{"1.0.1": true, "2.0.0": false, "3.1.0": true, "3.2.5": false}},
		{"last_affected 2.1.214 (ECOSYSTEM): 2.1.214 affected, above not", []Range{{Type: RangeEcosystem, Events: []Event{ev("i", "0"), ev("l", "2.1.214")}}},
			nil, map[string]bool{"1.0.0": true, "2.1.214": true, "2.1.215": false, "3.0.0": false}},
		{"fixed 2.1.214 (SEMVER): 2.1.214 not affected", semverR(ev("i", "0"), ev("f", "2.1.214")),
			nil, map[string]bool{"2.1.213": true, "2.1.214": false}},
		{"limit: affected only below it", semverR(ev("i", "1.0.0"), ev("l", "9.9.9"), ev("x", "2.0.0")),
			nil, map[string]bool{"0.5.0": false, "1.5.0": true, "2.0.0": false, "3.0.0": false}},
		{"limit *: no limit", semverR(ev("i", "1.0.0"), ev("x", "*")),
			nil, map[string]bool{"0.5.0": false, "5.0.0": true}},
		{"two limits: below either", semverR(ev("i", "1.0.0"), ev("x", "1.5.0"), ev("x", "3.0.0")),
			nil, map[string]bool{"1.2.0": true, "2.0.0": true, "3.0.0": false}},
		{"versions list only (GIT range skipped)", []Range{{Type: RangeGit, Repo: "https://example.com/r.git", Events: []Event{ev("i", "0"), ev("f", "c43455749b914feef56b178b256f29b3016146eb")}}},
			[]string{"2.8.0", "2.9.2"}, map[string]bool{"2.8.0": true, "2.9.2": true, "2.9.1": false, "2.10.0": false}},
		{"ECOSYSTEM range plus versions (pikepdf)", []Range{{Type: RangeEcosystem, Events: []Event{ev("i", "2.8.0"), ev("f", "2.10.0")}}},
			[]string{"2.8.0", "2.9.0"}, map[string]bool{"2.7.9": false, "2.8.0": true, "2.9.2": true, "2.10.0": false}},
		{"ECOSYSTEM with v prefixes and short versions", []Range{{Type: RangeEcosystem, Events: []Event{ev("i", "v1.2"), ev("f", "v1.4")}}},
			nil, map[string]bool{"1.1.9": false, "1.2.0": true, "1.3.7": true, "1.4.0": false}},
		{"two ranges: either", []Range{{Type: RangeSemver, Events: []Event{ev("i", "1.0.0"), ev("f", "1.1.0")}}, {Type: RangeSemver, Events: []Event{ev("i", "2.0.0"), ev("f", "2.0.5")}}},
			nil, map[string]bool{"1.0.5": true, "1.5.0": false, "2.0.4": true, "2.0.5": false}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			af := Affected{Ranges: tc.ranges, Versions: tc.versions}
			for v, want := range tc.affected {
				got, err := af.Affects(semver.MustParse(v))
				if err != nil {
					t.Fatalf("%s: %v", v, err)
				}
				if got != want {
					t.Errorf("%s: affected %v, want %v", v, got, want)
				}
			}
		})
	}
}

func TestAffectsUncomparable(t *testing.T) {
	af := Affected{Ranges: []Range{{Type: RangeEcosystem, Events: []Event{ev("i", "0"), ev("f", "1:2.3-4+deb")}}}}
	if _, err := af.Affects(semver.MustParse("1.0.0")); err == nil || !strings.Contains(err.Error(), `fixed "1:2.3-4+deb" is not a version`) {
		t.Fatalf("err = %v", err)
	}
}

func TestPackageMatches(t *testing.T) {
	cases := []struct {
		server string
		pkg    Package
		want   bool
	}{
		{"pkg:golang/github.com/acme/notes", Package{Ecosystem: "Go", Name: "github.com/acme/notes"}, true},
		{"pkg:golang/github.com/acme/notes", Package{Ecosystem: "Go", Name: "github.com/acme/other"}, false},
		{"pkg:npm/elliptic", Package{Ecosystem: "npm", Name: "elliptic"}, true},
		{"pkg:npm/elliptic", Package{Ecosystem: "PyPI", Name: "elliptic"}, false},
		{"pkg:pypi/Flask_Cors", Package{Ecosystem: "PyPI", Name: "flask-cors"}, true},
		{"pkg:maven/org.acme/notes", Package{Ecosystem: "Maven", Name: "org.acme:notes"}, true},
		{"pkg:maven/org.acme/notes", Package{Ecosystem: "Maven:https://maven.google.com", Name: "org.acme:notes"}, true},
		{"pkg:oci/notes?repository_url=127.0.0.1:5000/mcp/notes", Package{Ecosystem: "OCI", Name: "notes", PURL: "pkg:oci/notes?repository_url=127.0.0.1:5000/mcp/notes"}, true},
		{"pkg:oci/notes?repository_url=127.0.0.1:5000/mcp/notes", Package{Ecosystem: "OCI", Name: "notes", PURL: "pkg:oci/notes?repository_url=registry.example.com/notes"}, false},
		{"pkg:oci/notes?repository_url=127.0.0.1:5000/mcp/notes", Package{Ecosystem: "OCI", Name: "notes", PURL: "pkg:oci/notes"}, true},
		{"pkg:oci/notes?repository_url=127.0.0.1:5000/mcp/notes", Package{Ecosystem: "OCI", Name: "notes"}, false},
	}
	for _, tc := range cases {
		p, err := spec.ParsePURL(tc.server)
		if err != nil {
			t.Fatal(err)
		}
		if got := tc.pkg.Matches(p); got != tc.want {
			t.Errorf("%s vs %+v: %v, want %v", tc.server, tc.pkg, got, tc.want)
		}
	}
}

const advNotes = `{
  "schema_version": "1.6.0",
  "id": "TEND-2026-0001",
  "aliases": ["CVE-2026-1111", "GHSA-aaaa-bbbb-cccc"],
  "summary": "notes leaks other users' notes",
  "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"}],
  "affected": [{
    "package": {"ecosystem": "Go", "name": "github.com/acme/notes", "purl": "pkg:golang/github.com/acme/notes"},
    "ranges": [{"type": "SEMVER", "events": [{"introduced": "1.1.0"}, {"fixed": "1.2.1"}, {"introduced": "2.0.0"}, {"fixed": "2.0.3"}]}]
  }],
  "database_specific": {"severity": "HIGH"}
}
`

const advWithdrawn = `[{"id": "TEND-2026-0002", "withdrawn": "2026-01-01T00:00:00Z",
  "affected": [{"package": {"ecosystem": "Go", "name": "github.com/acme/notes"}, "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}]}]}]},
 {"id": "TEND-2026-0003", "summary": "all of 1.x before 1.5.0",
  "affected": [{"package": {"ecosystem": "Go", "name": "github.com/acme/notes"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"last_affected": "1.4.9"}]}]}]}]
`

func writeAdvisories(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestLoadAdvisories reads a folder (nested, a record per file or an
// array) and the same over HTTP on loopback; withdrawn records are
// dropped.
func TestLoadAdvisories(t *testing.T) {
	dir := writeAdvisories(t, map[string]string{"TEND-2026-0001.json": advNotes, "more/two.json": advWithdrawn, "README.md": "not an advisory"})
	db, err := LoadAdvisories(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	ids := func(db *Advisories) string {
		var out []string
		for _, a := range db.Records {
			out = append(out, a.ID+"@"+strings.TrimPrefix(a.Where, dir+"/"))
		}
		return strings.Join(out, " ")
	}
	if got := ids(db); got != "TEND-2026-0001@TEND-2026-0001.json:1:1 TEND-2026-0003@more/two.json:3:2" {
		t.Fatalf("records: %s", got)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/osv.json" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("[" + advNotes + "," + strings.TrimPrefix(strings.TrimSpace(advWithdrawn), "[")))
	}))
	defer srv.Close()
	db, err = LoadAdvisories(context.Background(), srv.URL+"/osv.json", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(db.Records) != 2 || db.Records[0].ID != "TEND-2026-0001" || db.Records[1].ID != "TEND-2026-0003" {
		t.Fatalf("over HTTP: %+v", db.Records)
	}
	if _, err := LoadAdvisories(context.Background(), srv.URL+"/gone.json", nil); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("a 404: %v", err)
	}
}

// TestAdvisoryErrors: a malformed source is an error naming the file and
// the line and column.
func TestAdvisoryErrors(t *testing.T) {
	cases := []struct{ body, want string }{
		{"{\n  \"id\": \"X-1\",\n  \"affected\": [,]\n}", "bad.json:3:16: not JSON"},
		{"[\n {\"id\": \"X-1\"},\n {\"id\": 7}\n]", "bad.json:3:10: not an OSV record: id is a JSON number"},
		{"{\"affected\": []}", "bad.json:1:1: an OSV record has an id"},
		{"{\"id\": \"X-2\", \"affected\": [{\"package\": {}, \"ranges\": [{\"type\": \"SEMVER\", \"events\": [{\"introduced\": \"0\", \"fixed\": \"1.0.0\"}]}]}]}", "X-2: affected[0].ranges[0].events[0] has 2 of introduced"},
		{"{\"id\": \"X-3\", \"affected\": [{\"package\": {}, \"ranges\": [{\"type\": \"SEMVER\", \"events\": [{\"introduced\": \"v1.0\"}]}]}]}", `"v1.0" is not a semantic version`},
		{"{\"id\": \"X-4\", \"affected\": [{\"package\": {}, \"ranges\": [{\"type\": \"RPM\", \"events\": [{\"introduced\": \"0\"}]}]}]}", `type "RPM" is not SEMVER, ECOSYSTEM or GIT`},
		{"{\"id\": \"X-5\", \"affected\": [{\"package\": {}, \"ranges\": [{\"type\": \"SEMVER\", \"events\": [{\"fixed\": \"1.0.0\"}]}]}]}", "has no introduced event"},
		{"", "bad.json: empty"},
	}
	for _, tc := range cases {
		dir := writeAdvisories(t, map[string]string{"bad.json": tc.body})
		_, err := LoadAdvisories(context.Background(), dir, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want %q", tc.body, err, tc.want)
		}
	}
	if _, err := LoadAdvisories(context.Background(), filepath.Join(t.TempDir(), "missing"), nil); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("a missing folder: %v", err)
	}
}

// TestAuditFindings: running and desired versions, the first fixed
// version the constraint allows, and the note when none is.
func TestAuditFindings(t *testing.T) {
	dir := writeAdvisories(t, map[string]string{"a.json": advNotes, "b.json": advWithdrawn})
	db, err := LoadAdvisories(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	pkg, _ := spec.ParsePURL("pkg:golang/github.com/acme/notes")
	cases := []struct {
		version, constraint string
		want                []string // id=fixed|note
	}{
		{"1.1.5", "~> 1.1", []string{"TEND-2026-0001=1.2.1", "TEND-2026-0003=|no fixed version is known"}},
		{"1.1.5", "", []string{"TEND-2026-0001=1.2.1", "TEND-2026-0003=|no fixed version is known"}},
		{"1.1.5", "< 1.2.0", []string{"TEND-2026-0001=|no version that \"< 1.2.0\" allows is fixed (fixed in 1.2.1, 2.0.3)", "TEND-2026-0003=|no fixed version is known"}},
		{"2.0.1", ">= 2.0, < 3.0", []string{"TEND-2026-0001=2.0.3"}},
		{"1.5.0", "", nil},
		{"1.0.0", "", []string{"TEND-2026-0003=|no fixed version is known"}},
	}
	for _, tc := range cases {
		var c *semver.Constraints
		if tc.constraint != "" {
			c, err = spec.ParseConstraint(tc.constraint)
			if err != nil {
				t.Fatal(err)
			}
		}
		fs, errs := db.Check(pkg, semver.MustParse(tc.version), c, tc.constraint)
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		var got []string
		for _, f := range fs {
			s := f.ID + "=" + f.Fixed
			if f.FixedNote != "" {
				s += "|" + f.FixedNote
			}
			got = append(got, s)
		}
		if strings.Join(got, " ; ") != strings.Join(tc.want, " ; ") {
			t.Errorf("%s (%q): %q, want %q", tc.version, tc.constraint, got, tc.want)
		}
	}
}

// BenchmarkAudit: 1,000 servers, each its own Go package, against 2,000
// advisories (two per package) read from a folder.
func BenchmarkAudit(b *testing.B) {
	files := map[string]string{}
	cfg := &spec.Config{Servers: map[string]*spec.Server{}}
	for i := range 1000 {
		name := "example.com/svc" + strconvItoa(i)
		files["a"+strconvItoa(i)+".json"] = `[{"id": "A-` + strconvItoa(i) + `", "affected": [{"package": {"ecosystem": "Go", "name": "` + name + `"}, "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.2.0"}]}]}]},
 {"id": "B-` + strconvItoa(i) + `", "affected": [{"package": {"ecosystem": "Go", "name": "` + name + `"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "2.0.0"}, {"last_affected": "2.3.0"}]}], "versions": ["2.0.0", "2.1.0"]}]}]`
		s := "svc" + strconvItoa(i)
		cfg.Servers[s] = &spec.Server{Name: s, Version: "1.1.0", Package: "pkg:golang/" + name}
	}
	dir := writeAdvisories(b, files)
	b.ResetTimer()
	for b.Loop() {
		db, err := LoadAdvisories(context.Background(), dir, nil)
		if err != nil {
			b.Fatal(err)
		}
		fs, errs := Audit(AuditInput{Config: cfg, Advisories: db})
		if len(fs) != 1000 || len(errs) > 0 {
			b.Fatalf("%d findings, %v", len(fs), errs)
		}
	}
}

func strconvItoa(i int) string { return strconv.Itoa(i) }
