package supervisor

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Arg is the first argument of a supervisor's command line:
// PROGRAM __tend-supervise INSTANCE_DIR.
const Arg = "__tend-supervise"

// Program is the name of the supervisor's own binary, which tend uses when
// it lies beside tend's executable.
const Program = "tend-supervise"

// Protocol is the version of spec.json this supervisor understands. It
// refuses a spec of a newer protocol (a tend-supervise older than the tend
// beside it); a spec of an older one is understood. Raise it when the
// supervisor must read something new of spec.json to run a replica
// right.
const Protocol = 1

// Files of an instance directory that the supervisor reads or writes.
const (
	SpecFile   = "spec.json"   // what to run, written by tend
	StatusFile = "status.json" // written by the supervisor on every change
	StopFile   = "stop.json"   // the grace a stop asks for, written by tend
	StdoutLog  = "stdout.log"  // the child's output, appended and rotated
	StderrLog  = "stderr.log"
	// MaxLogSize is the size past which a log is moved to NAME.1.
	MaxLogSize = 10 << 20
)

// Spec is what the supervisor reads of spec.json: the command and where
// its secrets are. tend writes more (the replica's identity); the
// supervisor ignores it.
type Spec struct {
	Protocol int `json:"protocol,omitempty"`
	// Argv is the command line, with sensitive items shown as
	// "(sensitive)"; when SensitiveArgs is set, the real one is in ArgvFile.
	Argv          []string `json:"argv"`
	SensitiveArgs []int    `json:"sensitive_args,omitempty"`
	ArgvFile      string   `json:"argv_file,omitempty"`
	EnvFile       string   `json:"env_file"`
	// SensitiveEnv names the variables whose values are secret, so that
	// the supervisor keeps them out of its messages.
	SensitiveEnv []string `json:"sensitive_env,omitempty"`
	WorkDir      string   `json:"work_dir"`
	StopTimeout  Duration `json:"stop_timeout"`
	// ProgramSHA256 ("sha256:…"), when set, is the digest the program must
	// have: the locked build. Every start, restarts too, checks it.
	ProgramSHA256 string `json:"program_sha256,omitempty"`
}

// Status is status.json, written by the supervisor (temporary file and
// rename) on every change.
type Status struct {
	SupervisorPID  int       `json:"supervisor_pid"`
	ChildPID       int       `json:"child_pid,omitempty"`
	ChildStartedAt time.Time `json:"child_started_at,omitzero"`
	State          string    `json:"state"`
	Restarts       int       `json:"restarts"`
	LastExitCode   *int      `json:"last_exit_code,omitempty"`
	LastExitAt     time.Time `json:"last_exit_at,omitzero"`
	Message        string    `json:"message,omitempty"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// StopRequest is stop.json: how long a stopping child gets.
type StopRequest struct {
	Grace Duration `json:"grace"`
}

// Duration is a time.Duration written as "10s".
type Duration time.Duration

func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	*d = Duration(v)
	return err
}

// EncodeEnv is the env file's content: a JSON object, keys sorted, so that
// any value (newlines included) survives and the digest is stable.
func EncodeEnv(env map[string]string) []byte {
	b, _ := json.MarshalIndent(env, "", "  ")
	return append(b, '\n')
}

// DecodeEnv reads an env file.
func DecodeEnv(b []byte) (map[string]string, error) {
	env := map[string]string{}
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, fmt.Errorf("the environment file is not valid JSON")
	}
	return env, nil
}

// EnvList turns env into KEY=VALUE items, sorted.
func EnvList(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// redacted stands for a secret in messages (spec.Redacted, which this
// package does not import).
const redacted = "(sensitive)"

// redactor hides secret values in messages, as providers.Redactor does.
type redactor []string

// add adds secrets, longest first so that one secret inside another is
// hidden whole.
func (r *redactor) add(vs ...string) {
	for _, v := range vs {
		if v != "" {
			*r = append(*r, v)
		}
	}
	sort.Slice(*r, func(i, j int) bool { return len((*r)[i]) > len((*r)[j]) })
}

func (r redactor) String(s string) string {
	for _, v := range r {
		s = strings.ReplaceAll(s, v, redacted)
	}
	return s
}
