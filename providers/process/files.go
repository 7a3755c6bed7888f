package process

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"time"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/spec"
)

// Files of an instance directory.
const (
	specFile       = "spec.json"      // what the supervisor runs (no secret values)
	identityFile   = "identity.json"  // who the replica is, and digests for drift
	statusFile     = "status.json"    // written by the supervisor
	envFile        = "env"            // the environment, mode 0600
	argvFile       = "argv"           // the real argv when it holds secrets, mode 0600
	supPidFile     = "supervisor.pid" // written by StartReplica once started
	supLogFile     = "supervisor.log"
	stopFile       = "stop.json" // the grace a stop asks for
	haltedFile     = "halted"    // written by Halt, removed by Resume
	stdoutLog      = "stdout.log"
	stderrLog      = "stderr.log"
	workDirName    = "work"
	superviseArg   = "__tend-supervise"
	maxLogSize     = 10 << 20
	volumesDirName = "volumes"
)

// launchSpec is spec.json: everything the supervisor needs, except the
// secret values (the environment and, when it holds secrets, the argv).
type launchSpec struct {
	Identity providers.Identity `json:"identity"`
	Provider string             `json:"provider"`
	// Executable is the tend binary that started the supervisor; its
	// command line is recognised by it.
	Executable string `json:"executable"`
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
	StopTimeout  duration `json:"stop_timeout"`
}

// duration is a time.Duration written as "10s".
type duration time.Duration

func (d duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

func (d *duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	*d = duration(v)
	return err
}

// record is identity.json: the identity, what Observe reports without the
// spec (ports, volumes), and the digests drift is measured against.
type record struct {
	providers.Identity
	Provider    string          `json:"provider"`
	Ports       map[string]int  `json:"ports,omitempty"`
	ConfigFiles []fileDigest    `json:"config_files,omitempty"`
	EnvSHA256   string          `json:"env_sha256"`
	Volumes     []volumeRecord  `json:"volumes,omitempty"`
	Resources   *spec.Resources `json:"resources,omitempty"`
	CreatedAt   time.Time       `json:"created_at"`
}

type fileDigest struct {
	Path   string    `json:"path"` // relative to the work dir
	SHA256 string    `json:"sha256"`
	Mode   octalMode `json:"mode"`
}

// octalMode is a permission written as "0644".
type octalMode os.FileMode

func (m octalMode) MarshalText() ([]byte, error) {
	return []byte(fmt.Sprintf("%04o", uint32(m)&0o777)), nil
}

func (m *octalMode) UnmarshalText(b []byte) error {
	v, err := strconv.ParseUint(string(b), 8, 32)
	*m = octalMode(v)
	return err
}

type volumeRecord struct {
	Name    string `json:"name"`
	Path    string `json:"path"`     // the path the spec gives (the mount point elsewhere)
	HostDir string `json:"host_dir"` // where the data is on this host
}

// status is status.json, written by the supervisor on every change.
type status struct {
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

type stopRequest struct {
	Grace duration `json:"grace"`
}

// encodeEnv is the env file's content: a JSON object, keys sorted, so that
// any value (newlines included) survives and the digest is stable.
func encodeEnv(env map[string]string) []byte {
	b, _ := json.MarshalIndent(env, "", "  ")
	return append(b, '\n')
}

func decodeEnv(b []byte) (map[string]string, error) {
	env := map[string]string{}
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, fmt.Errorf("the environment file is not valid JSON")
	}
	return env, nil
}

// envList turns env into KEY=VALUE items, sorted.
func envList(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// redactor hides secret values in messages.
type redactor = providers.Redactor
