package systemd

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/spec"
)

// Files of an instance directory.
const (
	recordFile  = "record.json" // identity, paths and digests, for Observe and drift
	envFile     = "env"         // the EnvironmentFile: secrets only, mode 0600
	workDirName = "work"        // the default working directory
)

// record is record.json: what StartReplica wrote for one replica, and the
// digests drift is measured against. It holds no secret value.
type record struct {
	providers.Identity
	Provider string `json:"provider"`
	Unit     string `json:"unit"`
	UnitFile string `json:"unit_file"`
	// UnitSHA256 and EnvSHA256 are the digests of the unit file and the
	// environment file as written.
	UnitSHA256 string `json:"unit_sha256"`
	EnvFile    string `json:"env_file"`
	EnvSHA256  string `json:"env_sha256"`
	// PlainEnv is the replica's environment without its secrets (which
	// are in EnvFile), for tasks run beside it.
	PlainEnv     map[string]string `json:"plain_env,omitempty"`
	SensitiveEnv []string          `json:"sensitive_env,omitempty"`
	WorkDir      string            `json:"work_dir"`
	User         string            `json:"user,omitempty"`
	Ports        map[string]int    `json:"ports,omitempty"`
	ConfigFiles  []fileDigest      `json:"config_files,omitempty"`
	Volumes      []volumeRecord    `json:"volumes,omitempty"`
	Resources    *spec.Resources   `json:"resources,omitempty"`
	Artifact     string            `json:"artifact,omitempty"` // the artifact's version directory
	CreatedAt    time.Time         `json:"created_at"`
}

type fileDigest struct {
	Path   string    `json:"path"` // absolute
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
	Path    string `json:"path"`     // the path the spec gives
	HostDir string `json:"host_dir"` // where the data is on this host
}
