package source

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// sshServer is a real SSH server on loopback that runs git-upload-pack for
// the repositories under root, for clients with the one authorized key.
type sshServer struct {
	addr    string
	hostKey ssh.PublicKey
	keyFile string // the client's private key (OpenSSH PEM)
}

func newSSHServer(t *testing.T, root string) *sshServer {
	t.Helper()
	_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hostSigner, err := ssh.NewSignerFromKey(hostPriv)
	if err != nil {
		t.Fatal(err)
	}
	clientPub, clientPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	authorized, err := ssh.NewPublicKey(clientPub)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(clientPriv, "tend test")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}

	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if bytes.Equal(key.Marshal(), authorized.Marshal()) {
				return nil, nil
			}
			return nil, errors.New("unknown key")
		},
	}
	cfg.AddHostKey(hostSigner)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				serveSSH(c, cfg, root)
			}()
		}
	}()
	return &sshServer{addr: ln.Addr().String(), hostKey: hostSigner.PublicKey(), keyFile: keyFile}
}

func serveSSH(c net.Conn, cfg *ssh.ServerConfig, root string) {
	defer c.Close()
	_, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "session only")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			return
		}
		go serveSession(ch, creqs, root)
	}
}

func serveSession(ch ssh.Channel, reqs <-chan *ssh.Request, root string) {
	defer ch.Close()
	for req := range reqs {
		if req.Type != "exec" {
			_ = req.Reply(req.Type == "env", nil)
			continue
		}
		var p struct{ Command string }
		if err := ssh.Unmarshal(req.Payload, &p); err != nil {
			_ = req.Reply(false, nil)
			return
		}
		prog, arg, _ := strings.Cut(p.Command, " ")
		dir := filepath.Join(root, filepath.Clean("/"+strings.Trim(arg, "'")))
		if prog != "git-upload-pack" {
			_ = req.Reply(false, nil)
			return
		}
		_ = req.Reply(true, nil)
		cmd := exec.Command(gitBin, "upload-pack", dir)
		cmd.Env = []string{"GIT_CONFIG_NOSYSTEM=1", "HOME=" + root}
		stdin, _ := cmd.StdinPipe()
		cmd.Stdout, cmd.Stderr = ch, ch.Stderr()
		status := uint32(0)
		if err := cmd.Start(); err != nil {
			status = 127
		} else {
			go func() { _, _ = io.Copy(stdin, ch); stdin.Close() }()
			if err := cmd.Wait(); err != nil {
				status = 1
			}
		}
		_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{status}))
		return
	}
}

func writeKnownHosts(t *testing.T, addr string, key ssh.PublicKey) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "known_hosts")
	line := knownhosts.Line([]string{knownhosts.Normalize(addr)}, key) + "\n"
	if err := os.WriteFile(p, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSSHOptions(t *testing.T) {
	t.Parallel()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := ssh.NewSignerFromKey(priv)
	block, _ := ssh.MarshalPrivateKey(priv, "")
	keyFile := filepath.Join(t.TempDir(), "id")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	kh := writeKnownHosts(t, "git.example.com:22", signer.PublicKey())
	main := Ref{KindBranch, "main"}

	for _, url := range []string{"ssh://git@git.example.com/org/repo.git", "git@git.example.com:org/repo.git"} {
		_, err := NewGit(Options{URL: url, Ref: main, Auth: Auth{SSHKeyFile: keyFile}})
		if err == nil || !strings.Contains(err.Error(), "KnownHostsFile") {
			t.Errorf("%s without KnownHostsFile: %v", url, err)
		}
		g, err := NewGit(Options{URL: url, Ref: main, Auth: Auth{SSHKeyFile: keyFile, KnownHostsFile: kh}})
		if err != nil {
			t.Errorf("%s with known_hosts: %v", url, err)
			continue
		}
		if strings.Contains(g.Remote(), "git@") {
			t.Errorf("Remote() = %q keeps the user", g.Remote())
		}
		a, ok := g.auth.(*sshAuth)
		if !ok || a.hostCB == nil || len(a.algos) == 0 || a.algos[0] != ssh.KeyAlgoED25519 {
			t.Errorf("%s: auth %#v, want an ssh auth that checks host keys against the ed25519 entry", url, g.auth)
		}
		cfg, err := a.ClientConfig()
		if err != nil || cfg.User != "git" || cfg.Timeout != DefaultTimeout {
			t.Errorf("ClientConfig: %+v %v", cfg, err)
		}
		// The callback accepts the known key and refuses another.
		addr := &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 22}
		if err := cfg.HostKeyCallback("git.example.com:22", addr, signer.PublicKey()); err != nil {
			t.Errorf("known host key refused: %v", err)
		}
		_, other, _ := ed25519.GenerateKey(rand.Reader)
		otherSigner, _ := ssh.NewSignerFromKey(other)
		if err := cfg.HostKeyCallback("git.example.com:22", addr, otherSigner.PublicKey()); err == nil {
			t.Error("a different host key was accepted")
		}
	}
	// Another host is not in the file.
	_, err := NewGit(Options{URL: "ssh://git@other.example.com/r.git", Ref: main, Auth: Auth{SSHKeyFile: keyFile, KnownHostsFile: kh}})
	if err == nil || !strings.Contains(err.Error(), "no key for other.example.com:22") {
		t.Errorf("host not in known_hosts: %v", err)
	}
	// A passphrase-protected key needs its passphrase, which is never shown.
	block, _ = ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte("k3y-Passphrase"))
	locked := filepath.Join(t.TempDir(), "locked")
	if err := os.WriteFile(locked, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewGit(Options{URL: "ssh://git@git.example.com/r.git", Ref: main, Auth: Auth{SSHKeyFile: locked, KnownHostsFile: kh}}); err == nil {
		t.Error("locked key without passphrase accepted")
	}
	_, err = NewGit(Options{URL: "ssh://git@git.example.com/r.git", Ref: main, Auth: Auth{SSHKeyFile: locked, SSHKeyPassphrase: "wrong-Phrase", KnownHostsFile: kh}})
	if err == nil || strings.Contains(err.Error(), "wrong-Phrase") {
		t.Errorf("wrong passphrase: %v", err)
	}
	if _, err := NewGit(Options{URL: "ssh://git@git.example.com/r.git", Ref: main, Auth: Auth{SSHKeyFile: locked, SSHKeyPassphrase: "k3y-Passphrase", KnownHostsFile: kh}}); err != nil {
		t.Errorf("right passphrase: %v", err)
	}
}

func TestSSHFetch(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	head := s.commit("one", map[string]string{"a.hcl": "a"})
	s.push("main")
	srv := newSSHServer(t, s.root)
	url := "ssh://git@" + srv.addr + "/repo.git"
	opts := Options{URL: url, Ref: Ref{KindBranch, "main"}, CacheDir: filepath.Join(t.TempDir(), "cache"),
		Auth: Auth{SSHKeyFile: srv.keyFile, KnownHostsFile: writeKnownHosts(t, srv.addr, srv.hostKey)}}
	g, err := NewGit(opts)
	if err != nil {
		t.Fatal(err)
	}
	snap, _ := mustFetch(t, g)
	if snap.Commit != head {
		t.Errorf("ssh fetch: %s, want %s", snap.Commit, head)
	}
	if _, changed := mustFetch(t, g); changed {
		t.Error("ssh: changed=true with nothing pushed")
	}
	head = s.commit("two", map[string]string{"b.hcl": "b"})
	s.push("main")
	if snap, changed := mustFetch(t, g); !changed || snap.Commit != head {
		t.Errorf("ssh after a push: %v %s", changed, snap.Commit)
	}

	// The server presents a key that known_hosts does not have for it.
	_, wrongPriv, _ := ed25519.GenerateKey(rand.Reader)
	wrong, _ := ssh.NewSignerFromKey(wrongPriv)
	bad := opts
	bad.CacheDir = ""
	bad.Auth.KnownHostsFile = writeKnownHosts(t, srv.addr, wrong.PublicKey())
	g, err = NewGit(bad)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = g.Fetch(context.Background())
	var ue *UnreachableError
	if !errors.As(err, &ue) || ue.Reason != ReasonHostKey {
		t.Errorf("host key mismatch: %v, want *UnreachableError (host-key)", err)
	}
	t.Log(err)
	if strings.Contains(err.Error(), "git@") {
		t.Errorf("error shows userinfo: %v", err)
	}
}
