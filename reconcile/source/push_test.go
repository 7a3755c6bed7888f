package source

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
)

// lockEdit writes tend.lock.hcl with text, and says so in the message.
func lockEdit(text string) func(map[string][]byte) (map[string][]byte, string, error) {
	return func(map[string][]byte) (map[string][]byte, string, error) {
		return map[string][]byte{"tend.lock.hcl": []byte(text)}, "tend: update api 1.4.2 → 1.4.3 (patch)", nil
	}
}

func commitNow(t *testing.T, g *Git, req CommitRequest) CommitResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := g.Commit(ctx, req)
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	return res
}

// TestCommitPushesOverHTTP: a commit made without a worktree, under the
// source's path, is pushed to the real git http-backend and lands on the
// branch with its author, message and file; writing what is there makes
// no commit.
func TestCommitPushesOverHTTP(t *testing.T) {
	t.Parallel()
	const user, pass = "alice", "Pa55-w0rd-s3cret"
	s := newServer(t, withBasicAuth(user, pass))
	head := s.commit("one", map[string]string{"fleet/main.hcl": "server {}", "fleet/tend.lock.hcl": "old", "README": "r"})
	s.push("main")
	g := s.newGit("main", func(o *Options) { o.Path = "fleet" })
	var seen map[string][]byte
	res := commitNow(t, g, CommitRequest{Branch: "main", AuthorName: "tend bot", AuthorEmail: "tend@example.com",
		Edit: func(files map[string][]byte) (map[string][]byte, string, error) {
			seen = files
			return lockEdit("new")(files)
		}})
	if string(seen["tend.lock.hcl"]) != "old" || string(seen["main.hcl"]) != "server {}" || len(seen) != 2 {
		t.Errorf("Edit saw %v", fileNames(seen))
	}
	if res.Commit == "" || res.Parent != head || res.Created || res.Attempts != 1 {
		t.Fatalf("result %+v", res)
	}
	if got := s.git(s.bare, "rev-parse", "main"); got != res.Commit {
		t.Fatalf("main is %s, want %s", got, res.Commit)
	}
	if got := s.git(s.bare, "show", "main:fleet/tend.lock.hcl"); got != "new" {
		t.Errorf("lock file %q", got)
	}
	if got := s.git(s.bare, "show", "main:README"); got != "r" {
		t.Errorf("README %q", got)
	}
	if got := s.git(s.bare, "log", "-1", "--format=%an <%ae>|%cn|%s"); got != "tend bot <tend@example.com>|tend bot|tend: update api 1.4.2 → 1.4.3 (patch)" {
		t.Errorf("log %q", got)
	}
	s.git(s.bare, "fsck", "--strict")

	// The same content again: nothing to commit, nothing pushed.
	again := commitNow(t, g, CommitRequest{Branch: "main", AuthorName: "tend", AuthorEmail: "t@x", Edit: lockEdit("new")})
	if again.Commit != "" || s.git(s.bare, "rev-parse", "main") != res.Commit {
		t.Errorf("a commit of nothing: %+v", again)
	}
	// The fetching side still reads the branch as before.
	if snap, _ := mustFetch(t, g); snap.Commit != res.Commit || string(snap.Files["tend.lock.hcl"]) != "new" {
		t.Errorf("Fetch after Commit: %s", snap.Commit)
	}

	// Wrong credentials: an auth error that does not carry them.
	bad := s.newGit("main", func(o *Options) { o.Auth = Auth{Username: user, Password: "wrong-Pa55-XYZ"} })
	_, err := bad.Commit(context.Background(), CommitRequest{Branch: "main", AuthorName: "t", AuthorEmail: "t@x", Edit: lockEdit("x")})
	var ue *UnreachableError
	if !errors.As(err, &ue) || ue.Reason != ReasonAuth || strings.Contains(err.Error(), "wrong-Pa55-XYZ") {
		t.Errorf("wrong password: %v", err)
	}
}

// TestCommitSigned: with a key, the commit carries an OpenPGP signature
// that the source's own verification (--verify-keyring) accepts.
func TestCommitSigned(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	s.commit("one", map[string]string{"main.hcl": "a"})
	s.push("main")
	key, err := openpgp.NewEntity("tend bot", "", "tend@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	var pub bytes.Buffer
	w, _ := armor.Encode(&pub, openpgp.PublicKeyType, nil)
	if err := key.Serialize(w); err != nil {
		t.Fatal(err)
	}
	w.Close()
	res := commitNow(t, s.newGit("main"), CommitRequest{Branch: "main", AuthorName: "tend bot", AuthorEmail: "tend@example.com", SignKey: key, Edit: lockEdit("new")})
	if !strings.Contains(s.git(s.bare, "cat-file", "commit", res.Commit), "gpgsig -----BEGIN PGP SIGNATURE-----") {
		t.Fatal("the commit is not signed")
	}
	snap, _ := mustFetch(t, s.newGit("main", func(o *Options) { o.Keyring = pub.String() }))
	if snap.Commit != res.Commit || snap.Signer != "tend bot <tend@example.com>" {
		t.Errorf("verified %s by %q", snap.Commit, snap.Signer)
	}
}

// TestCommitRetriesRejectedPush: someone pushes between the fetch and the
// push; the push is rejected, tried once more on a fresh fetch (Edit sees
// the other commit), and lands on top. Rejected twice, it is reported.
func TestCommitRetriesRejectedPush(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	s.commit("one", map[string]string{"main.hcl": "a", "tend.lock.hcl": "old"})
	s.push("main")
	g := s.newGit("main")
	calls := 0
	res := commitNow(t, g, CommitRequest{Branch: "main", AuthorName: "tend", AuthorEmail: "t@x",
		Edit: func(files map[string][]byte) (map[string][]byte, string, error) {
			calls++
			if calls == 1 {
				s.commit("meanwhile", map[string]string{"other.hcl": "o"})
				s.push("main")
			} else if string(files["other.hcl"]) != "o" {
				t.Errorf("the second Edit did not see the other commit: %v", fileNames(files))
			}
			return lockEdit("new")(files)
		}})
	if calls != 2 || res.Attempts != 2 || res.Commit == "" {
		t.Fatalf("calls %d, result %+v", calls, res)
	}
	if got := s.git(s.bare, "log", "--format=%s", "-2", "main"); got != "tend: update api 1.4.2 → 1.4.3 (patch)\nmeanwhile" {
		t.Errorf("history %q", got)
	}

	_, err := g.Commit(context.Background(), CommitRequest{Branch: "main", AuthorName: "tend", AuthorEmail: "t@x",
		Edit: func(files map[string][]byte) (map[string][]byte, string, error) {
			s.git(s.work, "fetch", "-q", s.URL, "main")
			s.git(s.work, "reset", "-q", "--hard", "FETCH_HEAD")
			s.commit("again", map[string]string{"other.hcl": string(files["other.hcl"]) + "o"})
			s.push("main")
			return lockEdit("newer")(files)
		}})
	var pr *PushRejectedError
	if !errors.As(err, &pr) || pr.Branch != "main" {
		t.Fatalf("rejected twice: %v", err)
	}
	if got := s.git(s.bare, "show", "main:tend.lock.hcl"); got != "new" {
		t.Errorf("a rejected push changed the branch: %q", got)
	}
}

// TestCommitNewBranch: a branch the remote does not have starts from the
// base; the base does not move.
func TestCommitNewBranch(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	head := s.commit("one", map[string]string{"main.hcl": "a"})
	s.push("main")
	g := s.newGit("main")
	res := commitNow(t, g, CommitRequest{Branch: "tend/updates", Base: "main", AuthorName: "tend", AuthorEmail: "t@x", Edit: lockEdit("new")})
	if !res.Created || res.Parent != head || s.git(s.bare, "rev-parse", "tend/updates") != res.Commit || s.git(s.bare, "rev-parse", "main") != head {
		t.Fatalf("result %+v", res)
	}
	// The next one goes on top of the branch.
	res2 := commitNow(t, g, CommitRequest{Branch: "tend/updates", Base: "main", AuthorName: "tend", AuthorEmail: "t@x", Edit: lockEdit("newer")})
	if res2.Created || res2.Parent != res.Commit {
		t.Errorf("second commit %+v", res2)
	}
}

// TestCommitLocalRepository: a bare repository on disk is pushed to
// in-process (no git binary).
func TestCommitLocalRepository(t *testing.T) {
	s := newServer(t)
	s.commit("one", map[string]string{"main.hcl": "a"})
	s.push("main")
	path := os.Getenv("PATH")
	t.Setenv("PATH", "")
	g, err := NewGit(Options{URL: "file://" + s.bare, Ref: Ref{KindBranch, "main"}, CacheDir: t.TempDir() + "/c"})
	if err != nil {
		t.Fatal(err)
	}
	res := commitNow(t, g, CommitRequest{Branch: "main", AuthorName: "tend", AuthorEmail: "t@x", Edit: lockEdit("new")})
	t.Setenv("PATH", path)
	if s.git(s.bare, "rev-parse", "main") != res.Commit || s.git(s.bare, "show", "main:tend.lock.hcl") != "new" {
		t.Fatalf("result %+v", res)
	}
	s.git(s.bare, "fsck", "--strict")
}
