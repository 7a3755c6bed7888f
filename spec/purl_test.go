package spec

import "testing"

func TestImagePURL(t *testing.T) {
	cases := map[string]string{
		"nginx:1.25":       "pkg:oci/nginx?repository_url=docker.io/library/nginx",
		"acme/notes:1.0.0": "pkg:oci/notes?repository_url=docker.io/acme/notes",
		"127.0.0.1:5000/mcp/Notes:1.2.0@sha256:ab": "pkg:oci/notes?repository_url=127.0.0.1:5000/mcp/notes",
		"registry.example.com/mcp/search":          "pkg:oci/search?repository_url=registry.example.com/mcp/search",
		"localhost/search:2":                       "pkg:oci/search?repository_url=localhost/search",
	}
	for img, want := range cases {
		p, ok := ImagePURL(img)
		if !ok || p.String() != want {
			t.Errorf("%s: %s, want %s", img, p.String(), want)
		}
	}
}

func TestParsePURL(t *testing.T) {
	cases := []struct{ in, typ, ns, name, version, err string }{
		{in: "pkg:golang/github.com/acme/notes", typ: "golang", ns: "github.com/acme", name: "notes"},
		{in: "pkg:npm/%40acme/notes@1.2.0", typ: "npm", ns: "@acme", name: "notes", version: "1.2.0"},
		{in: "pkg:PyPI/Flask?x=1#sub/dir", typ: "pypi", name: "Flask"},
		{in: "github.com/acme/notes", err: "is not a package URL: it starts with pkg:"},
		{in: "pkg:golang", err: "write pkg:TYPE/NAME"},
		{in: "pkg:1bad/x", err: "write pkg:TYPE/NAME"},
	}
	for _, tc := range cases {
		p, err := ParsePURL(tc.in)
		if tc.err != "" {
			if err == nil || !containsSub(err.Error(), tc.err) {
				t.Errorf("%s: err %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || p.Type != tc.typ || p.Namespace != tc.ns || p.Name != tc.name || p.Version != tc.version {
			t.Errorf("%s: %+v %v", tc.in, p, err)
		}
	}
}

func containsSub(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
