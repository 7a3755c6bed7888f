package spec

import (
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// Config is the typed desired state decoded from one state repository.
//
// Every block keeps the range it was declared at (DeclRange), so that a later
// stage (the planner, the engine) can still point a person at the line a
// problem comes from. Ranges are not part of the JSON form.
type Config struct {
	// Dir is the repository directory the configuration was loaded from.
	Dir string `json:"-"`
	// Env is the environment chosen with --env (empty for none).
	Env string `json:"env,omitempty"`

	Tend      Tend                 `json:"tend"`
	Variables map[string]*Variable `json:"variables,omitempty"`
	Locals    map[string]cty.Value `json:"-"`
	Providers map[string]*Provider `json:"providers,omitempty"` // keyed by "TYPE.NAME"
	Servers   map[string]*Server   `json:"servers,omitempty"`
	Windows   map[string]*Window   `json:"windows,omitempty"`
	Notifies  map[string]*Notify   `json:"notify,omitempty"`
	// Approvals are the top-level approval "NAME" {} blocks.
	Approvals map[string]*Approval `json:"approvals,omitempty"`

	// Files lists the files that were read, relative to Dir, in load order.
	Files []string `json:"files"`
}

// ServerNames returns the names of all servers in a stable order.
func (c *Config) ServerNames() []string { return sortedKeys(c.Servers) }

// Tend is the `tend {}` block: settings of the reconciler itself.
type Tend struct {
	RequiredVersion string        `json:"required_version,omitempty"`
	PollInterval    time.Duration `json:"poll_interval"`
	Parallelism     int           `json:"parallelism"`
	Schedule        string        `json:"schedule,omitempty"` // cron: an extra reconcile schedule
	SelfHeal        bool          `json:"self_heal"`
	Prune           bool          `json:"prune"`
	// MaxPrunePercent refuses a change that would delete more than this
	// share of the servers (a broken or empty commit must not wipe the fleet).
	MaxPrunePercent int `json:"max_prune_percent"`
	// OvercommitPercent is how much of a host's CPU and memory its servers
	// may ask for, at their max replicas, before a plan is refused: 150
	// lets them ask for one and a half times what it has. 0 (not set)
	// never refuses; a host that is short is then only warned about.
	OvercommitPercent int `json:"overcommit_percent,omitempty"`
	// Update is the update block: the automatic updates every server with
	// a version constraint takes unless its own update block says
	// otherwise.
	Update *Update `json:"update,omitempty"`
	// Approval and Promotion are the fleet-wide rules (a server's own
	// promotion block replaces Promotion; approval rules add up).
	Approval  *Approval  `json:"approval,omitempty"`
	Promotion *Promotion `json:"promotion,omitempty"`
	// Advisories is where the security advisories (OSV) that tend audit
	// and plans read come from; nil: none.
	Advisories *Advisories `json:"advisories,omitempty"`
	// BlockVulnerable refuses a plan that would deploy a version an
	// advisory affects (a server's block_vulnerable overrides it).
	BlockVulnerable      bool      `json:"block_vulnerable"`
	BlockVulnerableRange hcl.Range `json:"-"`
	advisoriesBlock      bool      // an advisories block was written, valid or not

	DeclRange hcl.Range `json:"-"`
}

// Advisories is the tend block's advisories block.
type Advisories struct {
	// Source is a folder of OSV .json files (relative to tend's working
	// directory) or an http(s) URL of a JSON array of OSV records.
	Source string `json:"-"`
	// Shown is Source without the user information of a URL, for output.
	Shown string    `json:"source"`
	Range hcl.Range `json:"-"`
}

// Variable is a `variable "NAME" {}` block and the value it received.
type Variable struct {
	Name        string    `json:"name"`
	Type        cty.Type  `json:"-"`
	TypeName    string    `json:"type"`
	Description string    `json:"description,omitempty"`
	Sensitive   bool      `json:"sensitive"`
	Default     cty.Value `json:"-"`
	// Value is the final value (default, environment file, TEND_VAR_ or --var).
	Value cty.Value `json:"-"`
	// Source says where Value came from: default, env-file, environment, flag.
	Source string `json:"source"`

	DeclRange hcl.Range `json:"-"`
}

// Provider is a `provider "TYPE" "NAME" {}` block. Exactly one of the typed
// settings pointers is set, the one matching Type.
type Provider struct {
	Type string `json:"type"`
	Name string `json:"name"`

	Process    *ProcessSettings    `json:"process,omitempty"`
	Docker     *DockerSettings     `json:"docker,omitempty"`
	Systemd    *SystemdSettings    `json:"systemd,omitempty"`
	Kubernetes *KubernetesSettings `json:"kubernetes,omitempty"`

	DeclRange hcl.Range `json:"-"`
}

// Key is the provider's reference name, "TYPE.NAME".
func (p *Provider) Key() string { return p.Type + "." + p.Name }

// ProcessSettings configures the process provider (local supervised processes).
type ProcessSettings struct {
	// WorkDir is where replicas' working directories, logs and pid files go;
	// empty means the reconciler's state directory.
	WorkDir     string        `json:"work_dir,omitempty"`
	StopTimeout time.Duration `json:"stop_timeout"`
	Host        string        `json:"host"` // the address checks reach replicas at
}

// DockerSettings configures the docker provider.
type DockerSettings struct {
	Host       string       `json:"host"`
	APIVersion string       `json:"api_version,omitempty"`
	Network    string       `json:"network,omitempty"`
	TLS        *TLSSettings `json:"tls,omitempty"`
	PullPolicy string       `json:"pull_policy"` // missing | always | never
	// PublishAddress is the host address container ports are published
	// on; checks reach replicas there (or at the daemon's host when it is
	// 0.0.0.0 or ::).
	PublishAddress string `json:"publish_address"`
	// RestartPolicy is the containers' restart policy: unless-stopped,
	// always, on-failure or no.
	RestartPolicy string        `json:"restart_policy"`
	StopTimeout   time.Duration `json:"stop_timeout"`
	// Registries are credentials for pulling images, by registry host.
	Registries []*RegistryAuth `json:"registries,omitempty"`
	// DockerConfig is a Docker CLI config.json whose "auths" give
	// credentials for registries without a registry block; empty means
	// $DOCKER_CONFIG/config.json, else ~/.docker/config.json, if present.
	DockerConfig string `json:"docker_config,omitempty"`
}

// RegistryAuth is a `registry "HOST" {}` block of a docker provider.
type RegistryAuth struct {
	Host     string `json:"host"`
	Username string `json:"username"`
	Password Value  `json:"password"`

	DeclRange hcl.Range `json:"-"`
}

// TLSSettings is a client certificate set.
type TLSSettings struct {
	CAFile   string `json:"ca_file,omitempty"`
	CertFile string `json:"cert_file,omitempty"`
	KeyFile  string `json:"key_file,omitempty"`
}

// SystemdSettings configures the systemd provider.
type SystemdSettings struct {
	UnitDir       string `json:"unit_dir"`
	UserMode      bool   `json:"user_mode"`
	ArtifactDir   string `json:"artifact_dir"`
	KeepArtifacts int    `json:"keep_artifacts"`
	User          string `json:"user,omitempty"`
}

// KubernetesSettings configures the kubernetes provider.
type KubernetesSettings struct {
	Kubeconfig string `json:"kubeconfig,omitempty"`
	Context    string `json:"context,omitempty"`
	Namespace  string `json:"namespace"`
	InCluster  bool   `json:"in_cluster"`
	// ChecksVia is how tend's http and mcp checks (and contract fetches)
	// reach pods: ChecksViaAPIProxy, through the API server's pod proxy, or
	// ChecksViaPodIP, at the pod's IP. Empty means the API server's proxy,
	// unless InCluster.
	ChecksVia string `json:"checks_via,omitempty"`
}

// Values of KubernetesSettings.ChecksVia.
const (
	ChecksViaAPIProxy = "api-proxy"
	ChecksViaPodIP    = "pod-ip"
)

// Server is a `server "NAME" {}` block: one long-running service and how to
// run, check, roll out, scale and back it up.
type Server struct {
	Name string `json:"name"`

	// Provider is the "TYPE.NAME" key of the provider that runs the server.
	Provider      string    `json:"provider"`
	ProviderType  string    `json:"-"`
	ProviderRange hcl.Range `json:"-"`

	// Version is the exact version to run. When the server gave a
	// constraint and no resolver was available, Version is empty and
	// VersionConstraint holds the constraint.
	Version           string              `json:"version,omitempty"`
	VersionConstraint string              `json:"version_constraint,omitempty"`
	Constraint        *semver.Constraints `json:"-"`
	VersionRange      hcl.Range           `json:"-"`
	// Release is where the versions a constraint is resolved against come
	// from: a release block, or inferred from image or command. Nil for a
	// server with an exact version and no release block.
	Release *Release `json:"release,omitempty"`
	// Update is the server's update block as written; Config.UpdateOf
	// gives the settings in effect (with the tend block's).
	Update *Update `json:"update,omitempty"`
	// Package is the package URL the server runs (release { package }, or
	// pkg:oci/… read from its image), for advisories; empty: unknown.
	Package      string    `json:"package,omitempty"`
	PackageRange hcl.Range `json:"-"`
	// Locked is the lock file entry the version was taken from; nil for
	// an exact version.
	Locked *LockedServer `json:"-"`
	// BuildDigest is the locked sha256 of the build the command starts
	// (a path release source), which the process and systemd providers
	// check before they start it.
	BuildDigest string `json:"build_digest,omitempty"`
	// BlockVulnerable overrides tend.block_vulnerable.
	BlockVulnerable      *bool     `json:"block_vulnerable,omitempty"`
	BlockVulnerableRange hcl.Range `json:"-"`

	// Artifact: an image (docker, kubernetes), or a command and an optional
	// downloadable artifact (process, systemd).
	Image    string    `json:"image,omitempty"`
	Command  []Value   `json:"command,omitempty"`
	Args     []Value   `json:"args,omitempty"`
	Artifact *Artifact `json:"artifact,omitempty"`
	WorkDir  string    `json:"work_dir,omitempty"`
	User     string    `json:"user,omitempty"`

	Replicas    int               `json:"replicas"`
	Ports       []Port            `json:"ports,omitempty"`
	Env         map[string]Value  `json:"env,omitempty"`
	ConfigFiles []*ConfigFile     `json:"config_files,omitempty"`
	Resources   *Resources        `json:"resources,omitempty"`
	Volumes     []*Volume         `json:"volumes,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Selector    map[string]string `json:"selector,omitempty"`

	DependsOn []Ref       `json:"depends_on,omitempty"`
	Requires  []*Requires `json:"requires,omitempty"`

	Checks   []*Check `json:"checks,omitempty"`
	Rollout  Rollout  `json:"rollout"`
	Hooks    *Hooks   `json:"hooks,omitempty"`
	Reload   *Reload  `json:"reload,omitempty"`
	Scaling  *Scaling `json:"scaling,omitempty"`
	Backup   *Backup  `json:"backup,omitempty"`
	Contract string   `json:"contract"`              // enforce | warn | off
	Drift    string   `json:"drift_check,omitempty"` // cron: an extra drift check schedule
	SelfHeal *bool    `json:"self_heal,omitempty"`   // overrides tend.self_heal
	// Approval and Promotion are the server's own rules (see
	// Config.ApprovalRules and Config.PromotionRule). They govern changes
	// and are not part of the server's fields: changing them changes no
	// replica.
	Approval  *Approval  `json:"approval,omitempty"`
	Promotion *Promotion `json:"promotion,omitempty"`

	// ContractCapabilities are the MCP client capabilities the contract
	// read declares (ContractCapabilities, sorted), when the server sets
	// contract_capabilities; nil when it does not, which declares roots,
	// as the go-sdk client does. A pointer, so that an empty list (declare
	// none) is not taken for an unset one.
	ContractCapabilities *[]string `json:"contract_capabilities,omitempty"`

	// Unresolved lists fields whose values are known only once the version
	// constraint is resolved or a secret is available.
	Unresolved []string `json:"unresolved,omitempty"`

	DeclRange   hcl.Range `json:"-"`
	portsFailed bool      // ports did not decode; checks naming a port say nothing more
	commandOK   bool      // command decoded (so an empty one is worth a word)
}

// Ref is a reference to another block, such as server.db, with its range.
type Ref struct {
	Name  string    `json:"name"`
	Range hcl.Range `json:"-"`
}

// MarshalText lets a Ref appear as a plain name in JSON.
func (r Ref) MarshalText() ([]byte, error) { return []byte(r.Name), nil }

// Artifact is a downloadable release of a server, checked by its digest.
type Artifact struct {
	URL     string `json:"url"`
	SHA256  string `json:"sha256"`
	Extract bool   `json:"extract"` // unpack a .tar.gz / .zip
}

// Port is one named port. With several replicas on one host, replica i
// listens on Number+i.
type Port struct {
	Name     string    `json:"name"`
	Number   int       `json:"number"`
	Protocol string    `json:"protocol"` // tcp (the only protocol so far)
	Range    hcl.Range `json:"-"`
}

// ConfigFile is a file written for every replica before it starts.
type ConfigFile struct {
	Path    string `json:"path"`
	Content Value  `json:"content"`
	Mode    uint32 `json:"mode"`

	DeclRange hcl.Range `json:"-"`
}

// Reload is a `reload {}` block: how a running replica re-reads its config
// files. With it, a change of config files only is applied by writing
// them and reloading each replica in turn (verifying after each), not by
// replacing the replicas. Exactly one of Signal, Command and HTTPMethod is
// set.
type Reload struct {
	// Signal is sent to the replica's main process: HUP, USR1 or USR2.
	Signal string `json:"signal,omitempty"`
	// Command runs in or beside the replica, as the provider runs tasks.
	Command []Value `json:"command,omitempty"`
	// HTTPMethod and HTTPPath are the request sent to the replica's Port.
	HTTPMethod string `json:"http_method,omitempty"`
	HTTPPath   string `json:"http_path,omitempty"`
	Port       string `json:"port,omitempty"`
	// Timeout bounds the command or the request.
	Timeout time.Duration `json:"timeout"`

	DeclRange hcl.Range `json:"-"`
	portRange hcl.Range
}

// Resources are the limits of one replica.
type Resources struct {
	// MilliCPU is the CPU limit in thousandths of a core.
	MilliCPU int64 `json:"milli_cpu,omitempty"`
	// MemoryBytes is the memory limit.
	MemoryBytes int64 `json:"memory_bytes,omitempty"`
}

// Volume is a data path that outlives replicas (a docker volume, a host
// directory, a persistent volume claim).
type Volume struct {
	Name      string `json:"name"`
	Path      string `json:"path"`
	SizeBytes int64  `json:"size_bytes,omitempty"`
	Source    string `json:"source,omitempty"` // a host path; empty means provider-managed

	DeclRange hcl.Range `json:"-"`
}

// Requires is a dependency pin: this server needs OTHER at a version
// satisfying Constraint.
type Requires struct {
	Server     string              `json:"server"`
	Version    string              `json:"version"`
	Constraint *semver.Constraints `json:"-"`

	DeclRange    hcl.Range `json:"-"`
	VersionRange hcl.Range `json:"-"`
}

// Check kinds.
const (
	CheckHTTP = "http"
	CheckTCP  = "tcp"
	CheckExec = "exec"
	CheckMCP  = "mcp"
)

// Check is a `check "NAME" {}` block: exactly one of the kind pointers is set.
type Check struct {
	Name             string        `json:"name"`
	Kind             string        `json:"kind"`
	Interval         time.Duration `json:"interval"`
	Timeout          time.Duration `json:"timeout"`
	InitialDelay     time.Duration `json:"initial_delay"`
	SuccessThreshold int           `json:"success_threshold"`
	FailureThreshold int           `json:"failure_threshold"`

	HTTP *HTTPCheck `json:"http,omitempty"`
	TCP  *TCPCheck  `json:"tcp,omitempty"`
	Exec *ExecCheck `json:"exec,omitempty"`
	MCP  *MCPCheck  `json:"mcp,omitempty"`

	DeclRange hcl.Range `json:"-"`
}

// HTTPCheck asks an HTTP endpoint of every replica.
type HTTPCheck struct {
	Port         string           `json:"port"` // a port name of the server
	Path         string           `json:"path"`
	Method       string           `json:"method"`
	Scheme       string           `json:"scheme"`
	Headers      map[string]Value `json:"headers,omitempty"`
	Status       []int            `json:"status"`
	BodyContains string           `json:"body_contains,omitempty"`
	BodyRegex    string           `json:"body_regex,omitempty"`
}

// TCPCheck opens a connection to a port of every replica.
type TCPCheck struct {
	Port string `json:"port"`
}

// ExecCheck runs a command in (or beside) every replica; exit 0 passes.
type ExecCheck struct {
	Command []Value `json:"command"`
}

// MCPCheck connects to every replica as an MCP client.
type MCPCheck struct {
	Port            string        `json:"port"`
	Path            string        `json:"path"`
	Transport       string        `json:"transport"` // streamable-http | sse | stdio
	ProtocolVersion string        `json:"protocol_version,omitempty"`
	CheckVersion    bool          `json:"check_version"`
	Tools           []string      `json:"tools,omitempty"`
	Resources       []string      `json:"resources,omitempty"`
	Prompts         []string      `json:"prompts,omitempty"`
	MaxLatency      time.Duration `json:"max_latency,omitempty"`
	Call            *MCPCall      `json:"call,omitempty"`
	// Command is what a stdio check starts, beside the replica and with its
	// environment, to speak MCP to over standard input and output: the
	// check's command, else the server's.
	Command []Value `json:"command,omitempty"`
}

// MCPCall is a smoke call of one tool.
type MCPCall struct {
	Tool      string `json:"tool"`
	Arguments Value  `json:"arguments"` // JSON text
	Expect    string `json:"expect,omitempty"`
}

// Rollout strategies.
const (
	StrategyRecreate = "recreate"
	StrategyRolling  = "rolling"
	StrategyCanary   = "canary"
)

// Backup-before policies.
const (
	BackupNever  = "never"
	BackupAlways = "always"
	BackupMajor  = "major"
)

// Rollout says how a change reaches the replicas and when it counts as done.
type Rollout struct {
	Strategy         string         `json:"strategy"`
	MaxUnavailable   IntOrPercent   `json:"max_unavailable"`
	MaxSurge         IntOrPercent   `json:"max_surge"`
	CanarySteps      []IntOrPercent `json:"canary_steps,omitempty"`
	VerifyFor        time.Duration  `json:"verify_for"`
	ProgressDeadline time.Duration  `json:"progress_deadline"`
	// FailAfter is how many times in a row a check may give the same
	// definite answer on a replica (a missing MCP tool, a wrong version, a
	// 404) before the change fails without waiting for ProgressDeadline;
	// 0 always waits for the deadline.
	FailAfter    int    `json:"fail_after"`
	AutoRollback bool   `json:"auto_rollback"`
	BackupBefore string `json:"backup_before"`

	DeclRange hcl.Range `json:"-"`
}

// IntOrPercent is a replica count, or a share of the replicas.
type IntOrPercent struct {
	Value   int  `json:"value"`
	Percent bool `json:"percent,omitempty"`
}

// Of resolves the value against a replica count, rounding percentages up.
func (v IntOrPercent) Of(replicas int) int {
	if !v.Percent {
		return v.Value
	}
	return (replicas*v.Value + 99) / 100
}

// Hooks are one-off tasks run around a change, through the provider.
type Hooks struct {
	PreDeploy  []Value       `json:"pre_deploy,omitempty"`
	Migrate    []Value       `json:"migrate,omitempty"`
	PostDeploy []Value       `json:"post_deploy,omitempty"`
	Timeout    time.Duration `json:"timeout"`
}

// Scaling is the autoscaling rule of a server.
type Scaling struct {
	Min             int           `json:"min"`
	Max             int           `json:"max"`
	CPUPercent      int           `json:"cpu_percent,omitempty"`
	MemoryPercent   int           `json:"memory_percent,omitempty"`
	Metrics         []*Metric     `json:"metrics,omitempty"`
	ScaleUpWindow   time.Duration `json:"scale_up_window"`
	ScaleDownWindow time.Duration `json:"scale_down_window"`

	DeclRange hcl.Range `json:"-"`
}

// Metric is a custom scaling metric, read from a Prometheus text endpoint of
// the replicas.
type Metric struct {
	Name   string  `json:"name"`
	Port   string  `json:"port"`
	Path   string  `json:"path"`
	Target float64 `json:"target"`

	declRange, portRange, pathRange hcl.Range
	portSet, pathSet                bool
}

// Backup is the backup rule of a server.
type Backup struct {
	Schedule  string        `json:"schedule"`
	KeepCount int           `json:"keep_count"`
	KeepAge   time.Duration `json:"keep_age,omitempty"`
	Paths     []string      `json:"paths,omitempty"`
	Command   []Value       `json:"command,omitempty"` // a dump command whose stdout is the backup
	// RestoreCommand reads what Command wrote on its standard input.
	RestoreCommand []Value `json:"restore_command,omitempty"`
	// Destination is where archives go: "" (STATE_DIR/backups), an
	// absolute directory, a file:// URL or s3://BUCKET/PREFIX.
	Destination string    `json:"destination"`
	S3          *BackupS3 `json:"s3,omitempty"`
	// EncryptionKey, when set, encrypts archives (age): an age identity
	// (AGE-SECRET-KEY-1...) or a passphrase. Always sensitive.
	EncryptionKey Value `json:"encryption_key"`
	// Drill is when to prove the newest backup restorable (cron).
	Drill string `json:"drill,omitempty"`
	// ReadOnly makes tend only read the destination: no backups are
	// written there, no retention deletes there (recovery).
	ReadOnly bool `json:"read_only,omitempty"`
	// Timeout bounds one backup or restore.
	Timeout time.Duration `json:"timeout"`

	DeclRange        hcl.Range `json:"-"`
	pathsRange       hcl.Range
	destinationRange hcl.Range
}

// BackupS3 says how to reach an S3-compatible object store.
type BackupS3 struct {
	Endpoint  string `json:"endpoint,omitempty"` // "" is AWS S3
	Region    string `json:"region"`
	AccessKey Value  `json:"access_key"`
	SecretKey Value  `json:"secret_key"`
	PathStyle bool   `json:"path_style,omitempty"`

	DeclRange hcl.Range `json:"-"`
}

// Window is a change window: when changes may (allow) or may not (deny) be
// applied to some servers.
type Window struct {
	Name     string        `json:"name"`
	Schedule string        `json:"schedule"`
	Duration time.Duration `json:"duration"`
	Action   string        `json:"action"` // allow | deny
	Servers  []Ref         `json:"servers,omitempty"`
	Timezone string        `json:"timezone,omitempty"`

	DeclRange hcl.Range `json:"-"`
}

// Notify is an outgoing notification target.
type Notify struct {
	Name    string           `json:"name"`
	URL     Value            `json:"url"`
	Events  []string         `json:"events"`
	Format  string           `json:"format"` // json | slack
	Headers map[string]Value `json:"headers,omitempty"`
	Servers []Ref            `json:"servers,omitempty"`

	DeclRange hcl.Range `json:"-"`
}

// Notification events.
var NotifyEvents = []string{"apply", "failure", "rollback", "drift", "held", "backup", "waiting", "scale", "update", "approval"}
