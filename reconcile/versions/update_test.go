package versions

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Masterminds/semver/v3"

	"github.com/tendhq/tend/spec"
)

func TestPolicyAllows(t *testing.T) {
	t.Parallel()
	from := semver.MustParse("1.4.2")
	for _, tc := range []struct {
		policy, v string
		want      bool
	}{
		{spec.PolicyPatch, "1.4.3", true}, {spec.PolicyPatch, "1.5.0", false}, {spec.PolicyPatch, "1.4.1", false},
		{spec.PolicyMinor, "1.5.0", true}, {spec.PolicyMinor, "2.0.0", false},
		{spec.PolicyMajor, "2.0.0", true}, {spec.PolicyMajor, "1.4.0", false},
		{spec.PolicyNone, "1.4.3", false}, {spec.PolicyNone, "1.4.2", true},
	} {
		if got := PolicyAllows(tc.policy, from, semver.MustParse(tc.v)); got != tc.want {
			t.Errorf("%s 1.4.2 → %s: %v, want %v", tc.policy, tc.v, got, tc.want)
		}
	}
}

// updateRepo is a state repository whose api takes the builds of a
// folder and whose search takes the releases of an HTTP index, locked by
// tend lock's own code at api 1.4.2 and search 3.1.0.
type updateRepo struct {
	t           *testing.T
	dir, builds string
	index       *[]string
	cfg         *spec.Config
	lock        *spec.Lock
}

func newUpdateRepo(t *testing.T, extra string) *updateRepo {
	t.Helper()
	r := &updateRepo{t: t, dir: t.TempDir(), builds: t.TempDir(), index: &[]string{"3.1.0"}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		var rs []string
		for i, v := range *r.index {
			rs = append(rs, fmt.Sprintf(`{"version": %q, "digest": "sha256:%064d"}`, v, i+1))
		}
		fmt.Fprintf(w, `{"releases": [%s]}`, strings.Join(rs, ","))
	}))
	t.Cleanup(srv.Close)
	r.addBuilds("1.4.2")
	hcl := fmt.Sprintf(`
server "api" {
  version = ">= 1.4"
  command = ["%s/api-${version}"]
  port    = 8000
}
server "search" {
  version = "~> 3.1"
  command = ["/usr/bin/search"]
  port    = 9000
  release {
    index = "%s/index.json"
  }
}
%s`, r.builds, srv.URL, extra)
	if err := os.WriteFile(filepath.Join(r.dir, "main.hcl"), []byte(hcl), 0o644); err != nil {
		t.Fatal(err)
	}
	unlocked, _, diags := spec.Load(r.dir, spec.Options{Unlocked: true})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	lk, _, diags := Lock(context.Background(), &Resolver{}, LockRequest{Config: unlocked})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	r.write(lk)
	return r
}

func (r *updateRepo) addBuilds(vs ...string) {
	for _, v := range vs {
		if err := os.WriteFile(filepath.Join(r.builds, "api-"+v), []byte("build "+v), 0o755); err != nil {
			r.t.Fatal(err)
		}
	}
}

// write writes the lock file and loads the repository with it, as the
// daemon has it.
func (r *updateRepo) write(lk *spec.Lock) {
	r.t.Helper()
	if err := os.WriteFile(filepath.Join(r.dir, spec.LockFileName), lk.Bytes(), 0o644); err != nil {
		r.t.Fatal(err)
	}
	l := spec.NewLoader(spec.Options{})
	cfg, diags := l.LoadDir(r.dir)
	if diags.HasErrors() {
		r.t.Fatal(diags)
	}
	r.cfg, r.lock = cfg, l.Lock()
}

func (r *updateRepo) update(policies map[string]string) (*spec.Lock, map[string]Available) {
	r.t.Helper()
	lk, found := Update(context.Background(), &Resolver{}, r.cfg, r.lock, policies)
	out := map[string]Available{}
	for _, a := range found {
		out[a.Server] = a
	}
	return lk, out
}

// TestUpdatePolicies: patch takes 1.4.3 and not 1.5.0, minor 1.5.0 and
// not 2.0.0, major 2.0.0, none nothing; each says what it held back.
func TestUpdatePolicies(t *testing.T) {
	r := newUpdateRepo(t, "")
	if got := r.lock.Servers["api"].Version; got != "1.4.2" {
		t.Fatalf("locked %s", got)
	}
	r.addBuilds("1.4.3", "1.5.0", "2.0.0", "2.1.0-rc.1")
	*r.index = append(*r.index, "3.1.1", "3.2.0", "4.0.0")
	for _, tc := range []struct {
		policy, to, bump, search string
	}{
		{spec.PolicyPatch, "1.4.3", "patch", "3.1.1"},
		{spec.PolicyMinor, "1.5.0", "minor", "3.2.0"},
		{spec.PolicyMajor, "2.0.0", "major", "3.2.0"},
		{spec.PolicyNone, "1.4.2", "", "3.1.0"},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			lk, found := r.update(map[string]string{"api": tc.policy, "search": tc.policy})
			a := found["api"]
			if a.Error != "" || a.Locked != "1.4.2" || a.To != tc.to || a.Bump != tc.bump || a.Allowed != "2.0.0" || a.NewerBump != "major" {
				t.Fatalf("api: %+v", a)
			}
			if got := lk.Servers["api"].Version; got != tc.to {
				t.Errorf("the new lock has api %s, want %s", got, tc.to)
			}
			if tc.to != "2.0.0" && !strings.Contains(a.HeldBack, "2.0.0 is allowed by the constraint, and the policy") {
				t.Errorf("held back: %q", a.HeldBack)
			}
			if got := lk.Servers["search"].Version; got != tc.search {
				t.Errorf("search %s, want %s (%+v)", got, tc.search, found["search"])
			}
			if a.Moves() && lk.Servers["api"].Digest == r.lock.Servers["api"].Digest {
				t.Error("the digest did not follow the version")
			}
			if r.lock.Servers["api"].Version != "1.4.2" {
				t.Error("Update changed the old lock")
			}
		})
	}
	// A server not named keeps its entry.
	lk, _ := r.update(map[string]string{"api": spec.PolicyMajor})
	if lk.Servers["search"].Version != "3.1.0" {
		t.Errorf("search moved without being named: %s", lk.Servers["search"].Version)
	}
}

// TestUpdateHeldByPin: a requires pin of another server keeps api below
// what its policy would take.
func TestUpdateHeldByPin(t *testing.T) {
	r := newUpdateRepo(t, `
server "web" {
  version = "1.0.0"
  command = ["/usr/bin/web"]
  port    = 7000
  requires "api" {
    version = "< 1.5.0"
  }
}`)
	r.addBuilds("1.4.3", "1.5.0", "2.0.0")
	lk, found := r.update(map[string]string{"api": spec.PolicyMinor})
	a := found["api"]
	if a.To != "1.4.3" || a.Bump != "patch" || a.Allowed != "1.4.3" || lk.Servers["api"].Version != "1.4.3" {
		t.Fatalf("api: %+v", a)
	}
	if a.HeldBack != `2.0.0 is newer, and server "web" requires "< 1.5.0"` {
		t.Errorf("held back: %q", a.HeldBack)
	}
}

// TestUpdateNothingNew: no newer release, no move; a source that cannot
// be read is an error of its server alone.
func TestUpdateNothingNew(t *testing.T) {
	r := newUpdateRepo(t, "")
	lk, found := r.update(map[string]string{"api": spec.PolicyMajor, "search": spec.PolicyMajor})
	for _, n := range []string{"api", "search"} {
		if found[n].Moves() || found[n].Error != "" || found[n].HeldBack != "" {
			t.Errorf("%s: %+v", n, found[n])
		}
	}
	if string(lk.Bytes()) != string(r.lock.Bytes()) {
		t.Errorf("the lock changed:\n%s", lk.Bytes())
	}
	if err := os.RemoveAll(r.builds); err != nil {
		t.Fatal(err)
	}
	_, found = r.update(map[string]string{"api": spec.PolicyMajor, "search": spec.PolicyMajor})
	if found["api"].Error == "" || found["api"].Moves() || found["search"].Error != "" {
		t.Errorf("api %+v, search %+v", found["api"], found["search"])
	}
}
