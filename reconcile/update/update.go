package update

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/tendhq/tend/reconcile/source"
	"github.com/tendhq/tend/reconcile/versions"
	"github.com/tendhq/tend/spec"
)

// Job is the servers whose update settings in effect share a schedule and
// what a run does with what it finds (commit, branch, author, key): one
// run resolves them together and makes at most one commit.
type Job struct {
	Key         string            `json:"job"` // stable while the settings stay
	Schedule    string            `json:"schedule"`
	Commit      bool              `json:"commit"`
	Branch      string            `json:"branch,omitempty"`
	AuthorName  string            `json:"author_name,omitempty"`
	AuthorEmail string            `json:"author_email,omitempty"`
	SigningKey  *spec.Value       `json:"-"`
	Policies    map[string]string `json:"policies"` // server → policy
}

// Jobs groups the servers of cfg that have update settings in effect, by
// schedule and commit settings, in a stable order.
func Jobs(cfg *spec.Config) []Job {
	byKey := map[string]*Job{}
	for _, n := range cfg.ServerNames() {
		u := cfg.UpdateOf(n)
		if u == nil || u.Schedule == "" || cfg.Servers[n].Release == nil {
			continue
		}
		keyDigest := ""
		if u.SigningKey != nil {
			keyDigest = u.SigningKey.Digest()
		}
		sig := strings.Join([]string{u.Schedule, fmt.Sprint(u.Commit), u.Branch, u.AuthorName, u.AuthorEmail, keyDigest}, "\x00")
		sum := sha256.Sum256([]byte(sig))
		key := hex.EncodeToString(sum[:6])
		j := byKey[key]
		if j == nil {
			j = &Job{Key: key, Schedule: u.Schedule, Commit: u.Commit, AuthorName: u.AuthorName, AuthorEmail: u.AuthorEmail, SigningKey: u.SigningKey, Policies: map[string]string{}}
			if u.Commit {
				j.Branch = u.Branch
			}
			byKey[key] = j
		}
		j.Policies[n] = u.Policy
	}
	out := make([]Job, 0, len(byKey))
	for _, j := range byKey {
		out = append(out, *j)
	}
	sort.Slice(out, func(i, k int) bool { return out[i].Key < out[k].Key })
	return out
}

// Servers returns the job's servers, sorted.
func (j Job) Servers() []string {
	out := make([]string, 0, len(j.Policies))
	for n := range j.Policies {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Repo is the state repository, where update commits go.
type Repo interface {
	Commit(ctx context.Context, req source.CommitRequest) (source.CommitResult, error)
}

// Runner runs update jobs.
type Runner struct {
	// Repo is the git source tend watches; nil when it watches a
	// directory, where commit = true cannot be done.
	Repo Repo
	// Watched is the branch tend watches ("" when it watches a tag, a
	// semver range or a commit); update commits go there unless the
	// settings name another branch.
	Watched string
	// Describe names the source for messages (no credentials).
	Describe string
	// LoadOptions load the files of the branch an update commits on.
	LoadOptions spec.Options
	// Resolver gives the resolver of a run; nil: one per run, with the
	// registry credentials of cfg (versions.ConfigKeychain).
	Resolver func(cfg *spec.Config) *versions.Resolver
}

// Report is what one run found and did.
type Report struct {
	Job      string               `json:"job"`
	At       time.Time            `json:"at"`
	Commit   bool                 `json:"commit"` // the settings commit
	Servers  []versions.Available `json:"servers"`
	Branch   string               `json:"branch,omitempty"`
	Pushed   string               `json:"pushed,omitempty"` // the commit pushed, when one was
	Attempts int                  `json:"attempts,omitempty"`
	Message  string               `json:"message,omitempty"` // the commit message
	Error    string               `json:"error,omitempty"`   // the run failed; Servers may still say what is available
}

// Moves returns the servers the run moves (or would, without commit).
func (r Report) Moves() []versions.Available {
	var out []versions.Available
	for _, a := range r.Servers {
		if a.Moves() {
			out = append(out, a)
		}
	}
	return out
}

func (r *Runner) resolver(cfg *spec.Config) *versions.Resolver {
	if r.Resolver != nil {
		return r.Resolver(cfg)
	}
	return &versions.Resolver{Keychain: versions.ConfigKeychain(cfg)}
}

// Run runs job against the desired state tend runs (cfg, loaded from
// files). Without commit it reports what the lock file of files would
// take. With commit it fetches the branch, resolves against the branch's
// own files, and pushes the upgraded lock file when something moves.
func (r *Runner) Run(ctx context.Context, cfg *spec.Config, files map[string][]byte, job Job) Report {
	rep := Report{Job: job.Key, At: time.Now().UTC(), Commit: job.Commit}
	if !job.Commit {
		rep.Servers, _, rep.Error = r.resolve(ctx, cfg, files, job)
		return rep
	}
	rep.Branch = job.Branch
	if rep.Branch == "" {
		rep.Branch = r.Watched
	}
	var fail string
	switch {
	case r.Repo == nil:
		fail = fmt.Sprintf("commit = true needs a git repository, and tend run watches the directory %s: it reports updates and commits nothing; run tend run on the repository's URL, or set commit = false", r.Describe)
	case rep.Branch == "":
		fail = fmt.Sprintf("commit = true without a branch, and tend run watches %s, not a branch: name the branch update commits go to (update { branch = \"...\" })", r.Describe)
	}
	if fail != "" {
		rep.Servers, _, _ = r.resolve(ctx, cfg, files, job)
		rep.Error = fail
		return rep
	}
	key, err := signingKey(job.SigningKey)
	if err != nil {
		rep.Error = err.Error()
		return rep
	}
	req := source.CommitRequest{
		Branch: rep.Branch, Base: r.Watched, AuthorName: job.AuthorName, AuthorEmail: job.AuthorEmail, SignKey: key,
		Edit: func(branchFiles map[string][]byte) (map[string][]byte, string, error) {
			bcfg, err := r.load(branchFiles)
			if err != nil {
				return nil, "", err
			}
			found, lk, failed := r.resolve(ctx, bcfg, branchFiles, job)
			rep.Servers = found
			if failed != "" {
				return nil, "", fmt.Errorf("%s", failed)
			}
			moves := rep.Moves()
			if len(moves) == 0 {
				return nil, "", nil
			}
			return map[string][]byte{spec.LockFileName: lk.Bytes()}, Message(moves), nil
		},
	}
	res, err := r.Repo.Commit(ctx, req)
	rep.Attempts = res.Attempts
	if err != nil {
		rep.Error = err.Error()
		return rep
	}
	rep.Pushed, rep.Message = res.Commit, res.Message
	return rep
}

// resolve runs versions.Update on the lock file of files; failed says why
// it could not run at all.
func (r *Runner) resolve(ctx context.Context, cfg *spec.Config, files map[string][]byte, job Job) ([]versions.Available, *spec.Lock, string) {
	src, ok := files[spec.LockFileName]
	if !ok {
		return nil, nil, fmt.Sprintf("the repository has no %s: run tend lock and commit it", spec.LockFileName)
	}
	old, _, diags := spec.ParseLock(src, spec.LockFileName)
	if diags.HasErrors() {
		return nil, nil, fmt.Sprintf("%s does not parse: %s", spec.LockFileName, diags.Errs()[0])
	}
	policies := map[string]string{}
	for n, p := range job.Policies {
		if s := cfg.Servers[n]; s != nil && s.Constraint != nil && s.Release != nil {
			policies[n] = p
		}
	}
	lk, found := versions.Update(ctx, r.resolver(cfg), cfg, old, policies)
	return found, lk, ""
}

// load decodes the files of the branch an update commits on.
func (r *Runner) load(files map[string][]byte) (*spec.Config, error) {
	l := spec.NewLoader(r.LoadOptions)
	cfg, diags := l.LoadFiles(r.Describe, files)
	if diags.HasErrors() {
		return nil, fmt.Errorf("the branch's desired state does not load (%d errors; tend validate on a checkout lists them): nothing is committed on top of it", len(diags.Errs()))
	}
	return cfg, nil
}

// signingKey reads the armored private key of a signing_key; its errors
// never quote the key.
func signingKey(v *spec.Value) (*openpgp.Entity, error) {
	if v == nil {
		return nil, nil
	}
	if !v.IsKnown() {
		return nil, fmt.Errorf("the signing key's secret is not set: nothing is committed unsigned")
	}
	ents, err := openpgp.ReadArmoredKeyRing(strings.NewReader(v.Reveal()))
	if err != nil || len(ents) == 0 || ents[0].PrivateKey == nil || ents[0].PrivateKey.Encrypted {
		return nil, fmt.Errorf("the signing key is not an armored OpenPGP private key without a passphrase: nothing is committed unsigned")
	}
	return ents[0], nil
}

// Message is the commit message of an update: a subject, and a line per
// server with its step.
func Message(moves []versions.Available) string {
	var b strings.Builder
	if len(moves) == 1 {
		m := moves[0]
		fmt.Fprintf(&b, "tend: update %s %s → %s (%s)\n", m.Server, m.Locked, m.To, m.Bump)
	} else {
		fmt.Fprintf(&b, "tend: update %d servers\n", len(moves))
	}
	b.WriteString("\n")
	for _, m := range moves {
		fmt.Fprintf(&b, "- %s: %s → %s (%s, policy %s)\n", m.Server, m.Locked, m.To, m.Bump, m.Policy)
	}
	b.WriteString("\nResolved by tend run's automatic updates: each version is the newest\nits constraint, the requires pins on it and its update policy allow.\n")
	return b.String()
}
