package process

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/process/supervisor"
	"github.com/tendhq/tend/spec"
)

// Files of an instance directory.
const (
	specFile       = supervisor.SpecFile   // what the supervisor runs (no secret values)
	identityFile   = "identity.json"       // who the replica is, and digests for drift
	statusFile     = supervisor.StatusFile // written by the supervisor
	envFile        = "env"                 // the environment, mode 0600
	argvFile       = "argv"                // the real argv when it holds secrets, mode 0600
	supPidFile     = "supervisor.pid"      // written by StartReplica once started
	supLogFile     = "supervisor.log"
	stopFile       = supervisor.StopFile // the grace a stop asks for
	haltedFile     = "halted"            // written by Halt, removed by Resume
	stdoutLog      = supervisor.StdoutLog
	stderrLog      = supervisor.StderrLog
	workDirName    = "work"
	superviseArg   = supervisor.Arg
	volumesDirName = "volumes"
)

// launchSpec is spec.json: everything the supervisor needs, except the
// secret values (the environment and, when it holds secrets, the argv).
type launchSpec struct {
	Identity providers.Identity `json:"identity"`
	Provider string             `json:"provider"`
	// Executable is the program that runs the supervisor (tend-supervise,
	// or tend itself); its command line is recognised by it.
	Executable string `json:"executable"`
	supervisor.Spec
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

// The supervisor's records are package supervisor's.
type (
	status      = supervisor.Status
	stopRequest = supervisor.StopRequest
	duration    = supervisor.Duration
)

// redactor hides secret values in messages.
type redactor = providers.Redactor
