package systemd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	sdbus "github.com/coreos/go-systemd/v22/dbus"

	"github.com/tendhq/tend/providers"
	"github.com/tendhq/tend/providers/internal/keylock"
	"github.com/tendhq/tend/spec"
)

// Type is the provider type.
const Type = "systemd"

const (
	defaultUnitDir     = "/etc/systemd/system"
	defaultUserUnitDir = "~/.config/systemd/user"
	defaultArtifactDir = "/opt/tend"
	defaultKeep        = 3
	defaultHost        = "127.0.0.1"
	// stopTimeout is TimeoutStopSec of every unit, and the grace of a stop
	// that asks for none.
	stopTimeout = 10 * time.Second
	// startWait is how long StartReplica waits for a started unit to be
	// active (or to have failed) before it returns a replica still starting.
	startWait = 2 * time.Second
	// jobWait bounds the wait for a start or stop job beyond the stop
	// timeout (a restart first stops the unit).
	jobWait   = 30 * time.Second
	pollEvery = 100 * time.Millisecond
)

// Register adds the systemd provider type to r.
func Register(r *providers.Registry) {
	r.Register(Type, func(p *spec.Provider, env providers.Env) (providers.Provider, error) {
		pr, err := New(p, env)
		if err != nil {
			return nil, err
		}
		return pr, nil
	})
}

// Provider runs each replica of a server as a systemd service unit.
type Provider struct {
	key         string // systemd.NAME
	userMode    bool
	unitDir     string
	root        string // STATE_DIR/providers/systemd.NAME
	artifactDir string
	keep        int
	user        string // the provider's default user
	managedBy   string
	host        string

	connMu sync.Mutex
	conn   *sdbus.Conn

	locks keylock.Map // by unit name, and "artifact:SERVER"
}

var _ interface {
	providers.Provider
	providers.Execer
	providers.Statser
	providers.Logger
	providers.DataCopier
} = (*Provider)(nil)

// New builds a systemd provider from its provider block. It does not
// connect to systemd: a host without it is reported by the first call that
// needs it.
func New(p *spec.Provider, env providers.Env) (*Provider, error) {
	if p == nil {
		return nil, errors.New("no provider block")
	}
	if p.Type != "" && p.Type != Type {
		return nil, fmt.Errorf("provider %s is not a systemd provider", p.Key())
	}
	if p.Name == "" || strings.ContainsAny(p.Name, "/\x00") || p.Name == "." || p.Name == ".." {
		return nil, fmt.Errorf("provider name %q cannot name a directory", p.Name)
	}
	var set spec.SystemdSettings
	if p.Systemd != nil {
		set = *p.Systemd
	}
	if set.UnitDir == "" {
		set.UnitDir = defaultUnitDir
		if set.UserMode {
			set.UnitDir = defaultUserUnitDir
		}
	}
	if set.ArtifactDir == "" {
		set.ArtifactDir = defaultArtifactDir
	}
	if set.KeepArtifacts <= 0 {
		set.KeepArtifacts = defaultKeep
	}
	unitDir, err := expandHome(set.UnitDir)
	if err != nil {
		return nil, fmt.Errorf("unit_dir %q: %w", set.UnitDir, err)
	}
	artifactDir, err := expandHome(set.ArtifactDir)
	if err != nil {
		return nil, fmt.Errorf("artifact_dir %q: %w", set.ArtifactDir, err)
	}
	if env.StateDir == "" {
		return nil, errors.New("the systemd provider keeps its records in tend's state directory, and has none")
	}
	root, err := filepath.Abs(filepath.Join(env.StateDir, "providers", Type+"."+p.Name))
	if err != nil {
		return nil, err
	}
	if set.UserMode && set.User != "" {
		if err := checkOwnUser(set.User); err != nil {
			return nil, err
		}
	}
	managedBy := env.ManagedBy
	if managedBy == "" {
		managedBy = providers.DefaultManagedBy
	}
	return &Provider{
		key: Type + "." + p.Name, userMode: set.UserMode,
		unitDir: unitDir, root: root, artifactDir: artifactDir,
		keep: set.KeepArtifacts, user: set.User,
		managedBy: managedBy, host: defaultHost,
	}, nil
}

// expandHome makes a path absolute, expanding a leading ~ to the home
// directory of the user tend runs as.
func expandHome(p string) (string, error) {
	if p == "~" || strings.HasPrefix(p, "~/") {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		p = filepath.Join(home, strings.TrimPrefix(p, "~"))
	}
	return filepath.Abs(p)
}

// Type returns "systemd".
func (p *Provider) Type() string { return Type }

// UnitDir is the directory the provider writes its unit files to.
func (p *Provider) UnitDir() string { return p.unitDir }

// Root is the directory the provider keeps its records, environment files,
// working directories and volumes in.
func (p *Provider) Root() string { return p.root }

// ArtifactDir is where downloaded artifacts are kept, one directory per
// server and version.
func (p *Provider) ArtifactDir() string { return p.artifactDir }

// Close closes the D-Bus connection, if one was made.
func (p *Provider) Close() error {
	p.connMu.Lock()
	defer p.connMu.Unlock()
	if p.conn != nil {
		p.conn.Close()
		p.conn = nil
	}
	return nil
}

func (p *Provider) managedByOf(m string) string {
	if m != "" {
		return m
	}
	return p.managedBy
}

func (p *Provider) lock(name string) func() { return p.locks.Lock(name) }

// ---- D-Bus ----

// systemBusAddress is where the system bus is, for messages.
func systemBusAddress() string {
	if a := os.Getenv("DBUS_SYSTEM_BUS_ADDRESS"); a != "" {
		return a
	}
	return "unix:path=/run/dbus/system_bus_socket"
}

// bus returns the connection to systemd, making it on first use (and again
// when it was lost).
func (p *Provider) bus(ctx context.Context) (*sdbus.Conn, error) {
	p.connMu.Lock()
	defer p.connMu.Unlock()
	if p.conn != nil && p.conn.Connected() {
		return p.conn, nil
	}
	if p.conn != nil {
		p.conn.Close()
		p.conn = nil
	}
	type result struct {
		conn *sdbus.Conn
		err  error
	}
	done := make(chan result, 1)
	go func() {
		// The connection outlives this call: it must not be bound to ctx.
		c, err := p.dial(context.Background())
		done <- result{c, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, r.err
		}
		p.conn = r.conn
		return r.conn, nil
	case <-ctx.Done():
		go func() {
			if r := <-done; r.conn != nil {
				r.conn.Close()
			}
		}()
		return nil, fmt.Errorf("connect to systemd over D-Bus: %w", ctx.Err())
	}
}

func (p *Provider) dial(ctx context.Context) (*sdbus.Conn, error) {
	if p.userMode {
		c, err := sdbus.NewUserConnectionContext(ctx)
		if err != nil {
			addr := os.Getenv("DBUS_SESSION_BUS_ADDRESS")
			if addr == "" {
				addr = "the session bus (DBUS_SESSION_BUS_ADDRESS is not set)"
			}
			return nil, fmt.Errorf("systemd is not reachable over D-Bus at %s: is this host running systemd, with a user manager for this user (loginctl enable-linger)?: %w", addr, err)
		}
		return c, nil
	}
	c, err := sdbus.NewSystemConnectionContext(ctx)
	if err == nil {
		return c, nil
	}
	// Without a bus daemon (a container, an early boot), root may talk to
	// systemd directly.
	if os.Geteuid() == 0 {
		if c, err2 := sdbus.NewSystemdConnectionContext(ctx); err2 == nil {
			return c, nil
		}
	}
	return nil, fmt.Errorf("systemd is not reachable over D-Bus at %s (nor at unix:path=/run/systemd/private): is this host running systemd?: %w", systemBusAddress(), err)
}

// busErr words an error of a D-Bus call; a lost connection is dropped so
// that the next call dials again.
func (p *Provider) busErr(what string, err error) error {
	if err == nil {
		return nil
	}
	p.connMu.Lock()
	if p.conn != nil && !p.conn.Connected() {
		p.conn.Close()
		p.conn = nil
	}
	p.connMu.Unlock()
	return fmt.Errorf("%s: %w", what, err)
}

// ---- names and paths ----

// encodeName keeps the letters, digits and '-' of s, and writes every
// other byte as _XX (hex), so that the result is made of systemd's unit
// name characters, holds no '.', and tells different inputs apart.
func encodeName(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "_%02x", c)
		}
	}
	return b.String()
}

// unitNameMax is systemd's longest unit name.
const unitNameMax = 255

// unitName is the unit of replica i of server, owned by managedBy:
// tend.MANAGEDBY.SERVER.REPLICA.service, each part encoded.
func unitName(managedBy, server string, replica int) (string, error) {
	if managedBy == "" {
		return "", errors.New("no managed-by identity")
	}
	if server == "" {
		return "", errors.New("no server name")
	}
	if replica < 0 {
		return "", fmt.Errorf("replica %d: a replica index is 0 or more", replica)
	}
	n := "tend." + encodeName(managedBy) + "." + encodeName(server) + "." + strconv.Itoa(replica) + ".service"
	if len(n) > unitNameMax {
		return "", fmt.Errorf("the unit name %s is longer than systemd's %d characters: use a shorter managed-by identity or server name", n, unitNameMax)
	}
	return n, nil
}

// unitPattern matches the units of managedBy (and, since the managed-by
// part is encoded, no other's).
func unitPattern(managedBy string) string {
	return "tend." + encodeName(managedBy) + ".*.service"
}

// taskUnitName is the transient unit of a one-off task.
func taskUnitName(managedBy, server string) string {
	n := "tend-task." + encodeName(managedBy) + "." + encodeName(server) + "." + strconv.FormatInt(time.Now().UnixNano(), 36) + ".service"
	if len(n) > unitNameMax {
		n = "tend-task." + strconv.FormatInt(time.Now().UnixNano(), 36) + ".service"
	}
	return n
}

// instanceDir is ROOT/MANAGEDBY/SERVER/REPLICA (names encoded).
func (p *Provider) instanceDir(managedBy, server string, replica int) string {
	return filepath.Join(p.root, encodeName(managedBy), encodeName(server), strconv.Itoa(replica))
}

func (p *Provider) volumeDir(managedBy, server, volume string, replica int) string {
	return filepath.Join(p.root, encodeName(managedBy), encodeName(server), "volumes", encodeName(volume)+"-"+strconv.Itoa(replica))
}

func (p *Provider) unitPath(name string) string { return filepath.Join(p.unitDir, name) }

// wantsTarget is the target that pulls the units in at boot.
func (p *Provider) wantsTarget() string {
	if p.userMode {
		return "default.target"
	}
	return "multi-user.target"
}

func (p *Provider) wantsLink(name string) string {
	return filepath.Join(p.unitDir, p.wantsTarget()+".wants", name)
}

// ---- users ----

// account is a user a unit runs as.
type account struct {
	name     string
	uid, gid int
}

// lookupUser resolves the user replicas run as; "" is the manager's own.
func (p *Provider) lookupUser(name string) (*account, error) {
	if name == "" {
		return nil, nil
	}
	if p.userMode {
		if err := checkOwnUser(name); err != nil {
			return nil, err
		}
		return nil, nil // a user manager runs everything as its own user
	}
	u, err := user.Lookup(name)
	if err != nil {
		if _, nerr := strconv.Atoi(name); nerr == nil {
			u, err = user.LookupId(name)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("user %q does not exist on this host", name)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &account{name: name, uid: uid, gid: gid}, nil
}

// checkOwnUser refuses a user other than tend's own in user mode, where the
// user manager cannot switch users.
func checkOwnUser(name string) error {
	cur, err := user.Current()
	if err != nil {
		return fmt.Errorf("user %q: cannot tell which user tend runs as: %v", name, err)
	}
	if name == cur.Username || name == cur.Uid {
		return nil
	}
	return fmt.Errorf("user %q: in user_mode, units run as the user tend runs as (%s); a user manager cannot switch users", name, cur.Username)
}

// chownTree gives a directory tree to the account (nil: leave it).
func chownTree(dir string, a *account) error {
	if a == nil {
		return nil
	}
	return filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, a.uid, a.gid)
	})
}
