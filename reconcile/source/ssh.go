package source

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"
)

// sshAuth is a go-git ssh AuthMethod that checks host keys against one
// known_hosts file, with host key algorithms negotiated from it (so a host
// known by its ed25519 key is not offered an RSA key first), and bounds the
// TCP connect and handshake by the timeout.
type sshAuth struct {
	inner   gitssh.AuthMethod
	hostCB  ssh.HostKeyCallback
	algos   []string
	timeout time.Duration
}

func (a *sshAuth) Name() string   { return a.inner.Name() }
func (a *sshAuth) String() string { return a.inner.Name() } // never the key or password

func (a *sshAuth) ClientConfig() (*ssh.ClientConfig, error) {
	cfg, err := a.inner.ClientConfig()
	if err != nil {
		return nil, err
	}
	cfg.HostKeyCallback = a.hostCB
	cfg.HostKeyAlgorithms = a.algos
	cfg.Timeout = a.timeout
	return cfg, nil
}

func newSSHAuth(ep *transport.Endpoint, a Auth, timeout time.Duration) (*sshAuth, error) {
	if a.KnownHostsFile == "" {
		return nil, errors.New("ssh remotes need Auth.KnownHostsFile: host keys are always checked")
	}
	if _, err := os.Stat(a.KnownHostsFile); err != nil {
		return nil, fmt.Errorf("known_hosts file: %v", err)
	}
	db, err := gitssh.NewKnownHostsDb(a.KnownHostsFile)
	if err != nil {
		return nil, fmt.Errorf("known_hosts file %s: %v", a.KnownHostsFile, err)
	}
	port := ep.Port
	if port == 0 {
		port = 22
	}
	hostPort := net.JoinHostPort(ep.Host, strconv.Itoa(port))
	algos := db.HostKeyAlgorithms(hostPort)
	if len(algos) == 0 {
		return nil, fmt.Errorf("known_hosts file %s has no key for %s", a.KnownHostsFile, hostPort)
	}
	user := ep.User
	if a.Username != "" {
		user = a.Username
	}
	if user == "" {
		user = "git"
	}
	// Set on the inner method too: without a callback, go-git falls back to
	// ~/.ssh/known_hosts.
	hk := gitssh.HostKeyCallbackHelper{HostKeyCallback: db.HostKeyCallback(), HostKeyAlgorithms: algos}
	var inner gitssh.AuthMethod
	switch {
	case a.SSHKeyFile != "":
		pk, err := gitssh.NewPublicKeysFromFile(user, a.SSHKeyFile, a.SSHKeyPassphrase)
		if err != nil {
			return nil, fmt.Errorf("ssh key %s: %v", a.SSHKeyFile, err)
		}
		pk.HostKeyCallbackHelper = hk
		inner = pk
	case a.Password != "":
		inner = &gitssh.Password{User: user, Password: a.Password, HostKeyCallbackHelper: hk}
	default:
		return nil, errors.New("ssh remotes need Auth.SSHKeyFile (or Auth.Password)")
	}
	return &sshAuth{inner: inner, hostCB: hk.HostKeyCallback, algos: algos, timeout: timeout}, nil
}

// sshDisplay renders an ssh URL without its userinfo.
func sshDisplay(raw string, ep *transport.Endpoint) string {
	host := ep.Host
	if ep.Port != 0 && ep.Port != 22 {
		host = net.JoinHostPort(ep.Host, strconv.Itoa(ep.Port))
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if strings.HasPrefix(raw, "ssh://") {
		p := ep.Path
		if !strings.HasPrefix(p, "/") {
			p = "/" + p
		}
		return "ssh://" + host + p
	}
	return host + ":" + ep.Path
}
