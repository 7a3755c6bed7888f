package systemd

import (
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/tendhq/tend/providers/internal/dirtar"
	"github.com/tendhq/tend/providers/internal/hostfs"
	"github.com/tendhq/tend/spec"
)

// markerFile, in a version directory, records what was installed there; a
// version directory without it (or with another digest) is not used.
const markerFile = ".tend-artifact.json"

// marker is markerFile's content.
type marker struct {
	URL         string    `json:"url"`
	SHA256      string    `json:"sha256"`
	Extract     bool      `json:"extract"`
	File        string    `json:"file,omitempty"` // the downloaded file, when not extracted
	InstalledAt time.Time `json:"installed_at"`
	// UsedAt is when a replica was last started from it; pruning keeps
	// the versions used last.
	UsedAt time.Time `json:"used_at"`
}

// httpClient downloads artifacts; its timeout bounds a stalled download
// (the caller's context bounds the whole).
var httpClient = &http.Client{Timeout: 10 * time.Minute}

// artifactVersionDir is ARTIFACT_DIR/SERVER/VERSION.
func (p *Provider) artifactVersionDir(server, version string) (string, error) {
	for what, s := range map[string]string{"server name": server, "version": version} {
		if s == "" || s == "." || s == ".." || strings.ContainsAny(s, "/\x00") || strings.HasPrefix(s, ".") {
			return "", fmt.Errorf("%s %q cannot name an artifact directory", what, s)
		}
	}
	return filepath.Join(p.artifactDir, server, version), nil
}

// ensureArtifact makes the server's artifact present in its version
// directory, downloading it only when the directory does not already hold
// it, and returns the directory ("" for a server without an artifact).
func (p *Provider) ensureArtifact(ctx context.Context, s *spec.Server) (string, error) {
	a := s.Artifact
	if a == nil {
		return "", nil
	}
	if a.URL == "" {
		return "", errors.New("the artifact has no url")
	}
	want := strings.ToLower(a.SHA256)
	if len(want) != 64 {
		return "", fmt.Errorf("the artifact's sha256 %q is not 64 hexadecimal characters", a.SHA256)
	}
	dir, err := p.artifactVersionDir(s.Name, s.Version)
	if err != nil {
		return "", err
	}
	unlock := p.lock("artifact:" + s.Name)
	defer unlock()

	var m marker
	if err := hostfs.ReadJSON(filepath.Join(dir, markerFile), &m); err == nil && m.SHA256 == want && m.Extract == a.Extract {
		m.UsedAt = time.Now().UTC()
		_ = hostfs.WriteJSON(filepath.Join(dir, markerFile), m, 0o644)
		return dir, nil
	}
	if err := p.download(ctx, a, want, dir); err != nil {
		return "", fmt.Errorf("artifact %s: %w", redactURL(a.URL), err)
	}
	return dir, nil
}

// download fetches the artifact into a directory beside dir, checks its
// digest, unpacks it when asked, and renames it into place.
func (p *Provider) download(ctx context.Context, a *spec.Artifact, want, dir string) error {
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, ".tmp-"+filepath.Base(dir)+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	name := artifactFileName(a.URL)
	dl := filepath.Join(tmp, name)
	if a.Extract {
		dl = filepath.Join(parent, "."+filepath.Base(tmp)+".download")
		defer os.Remove(dl)
	}
	got, err := fetch(ctx, a.URL, dl)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("the download's sha256 is %s, but the spec says %s: not installed", got, want)
	}
	m := marker{URL: redactURL(a.URL), SHA256: want, Extract: a.Extract, InstalledAt: time.Now().UTC()}
	m.UsedAt = m.InstalledAt
	if a.Extract {
		if err := extract(ctx, dl, tmp); err != nil {
			return err
		}
	} else {
		if err := os.Chmod(dl, 0o755); err != nil {
			return err
		}
		m.File = name
	}
	if err := hostfs.WriteJSON(filepath.Join(tmp, markerFile), m, 0o644); err != nil {
		return err
	}
	// A directory already there (another digest, or a broken install) is
	// moved aside, then removed; a running replica keeps its open files.
	if _, err := os.Lstat(dir); err == nil {
		old := filepath.Join(parent, ".old-"+filepath.Base(dir)+"-"+fmt.Sprint(time.Now().UnixNano()))
		if err := os.Rename(dir, old); err != nil {
			return err
		}
		defer os.RemoveAll(old)
	}
	return os.Rename(tmp, dir)
}

// artifactFileName is the name a downloaded file keeps: the last element
// of the URL's path.
func artifactFileName(raw string) string {
	name := "artifact"
	if u, err := url.Parse(raw); err == nil {
		if b := path.Base(u.Path); b != "" && b != "." && b != "/" {
			name = b
		}
	}
	return name
}

// redactURL drops a URL's user information (a token in it is a secret).
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	u.User = url.User("redacted")
	return u.String()
}

// fetch writes the content at raw (http, https or file URL) to dst and
// returns its sha256.
func fetch(ctx context.Context, raw, dst string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("not a URL: %v", err)
	}
	var body io.ReadCloser
	switch u.Scheme {
	case "http", "https":
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
		if err != nil {
			return "", err
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			return "", fmt.Errorf("download: %v", err)
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return "", fmt.Errorf("download: the server answered %s", resp.Status)
		}
		body = resp.Body
	case "file":
		f, err := os.Open(u.Path)
		if err != nil {
			return "", fmt.Errorf("read: %s", hostfs.ShortErr(err))
		}
		body = f
	default:
		return "", fmt.Errorf("cannot download a %q URL: use http, https or file", u.Scheme)
	}
	defer body.Close()
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(f, h), body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("download: %v", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// extract unpacks a .tar.gz or .zip (told apart by their content) into
// dir.
func extract(ctx context.Context, file, dir string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	head := make([]byte, 4)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(bufio.NewReader(f))
		if err != nil {
			return fmt.Errorf("extract: %v", err)
		}
		if err := dirtar.Extract(ctx, dir, zr); err != nil {
			return fmt.Errorf("extract: %v", err)
		}
		return nil
	case bytes.HasPrefix(head, []byte("PK\x03\x04")), bytes.HasPrefix(head, []byte("PK\x05\x06")):
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		if err := unzip(ctx, dir, f, fi.Size()); err != nil {
			return fmt.Errorf("extract: %v", err)
		}
		return nil
	}
	return errors.New("extract = true, but the download is neither a .tar.gz nor a .zip archive")
}

// unzip unpacks a zip archive under dir; no entry can reach outside it.
func unzip(ctx context.Context, dir string, r io.ReaderAt, size int64) error {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	for _, zf := range zr.File {
		if err := ctx.Err(); err != nil {
			return err
		}
		name := path.Clean(strings.TrimPrefix(zf.Name, "/"))
		if name == "." {
			continue
		}
		if name == ".." || strings.HasPrefix(name, "../") {
			return fmt.Errorf("entry %q points outside the artifact", zf.Name)
		}
		if parent := path.Dir(name); parent != "." {
			if err := root.MkdirAll(parent, 0o755); err != nil {
				return err
			}
		}
		mode := zf.Mode()
		switch {
		case mode.IsDir():
			if err := root.MkdirAll(name, 0o755); err != nil {
				return err
			}
		case mode&os.ModeSymlink != 0:
			rc, err := zf.Open()
			if err != nil {
				return err
			}
			target, err := io.ReadAll(io.LimitReader(rc, 4096))
			rc.Close()
			if err != nil {
				return err
			}
			if err := root.Symlink(string(target), name); err != nil {
				return err
			}
		case mode.IsRegular():
			perm := mode.Perm()
			if perm == 0 {
				perm = 0o644
			}
			rc, err := zf.Open()
			if err != nil {
				return err
			}
			out, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
			if err != nil {
				rc.Close()
				return err
			}
			_, err = io.Copy(out, rc)
			rc.Close()
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
			if err := root.Chmod(name, perm); err != nil {
				return err
			}
		}
	}
	return nil
}

// pruneArtifacts removes the versions of server beyond the keep newest
// (by last use), never one that a unit in the unit directory names, nor
// keepAlso.
func (p *Provider) pruneArtifacts(server, keepAlso string) error {
	parent := filepath.Join(p.artifactDir, server)
	unlock := p.lock("artifact:" + server)
	defer unlock()
	entries, err := os.ReadDir(parent)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	inUse := p.artifactsInUse()
	type version struct {
		dir  string
		used time.Time
	}
	var versions []version
	for _, e := range entries {
		dir := filepath.Join(parent, e.Name())
		if strings.HasPrefix(e.Name(), ".") {
			// Leftovers of an interrupted download.
			if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > time.Hour {
				os.RemoveAll(dir)
			}
			continue
		}
		if !e.IsDir() {
			continue
		}
		var m marker
		if err := hostfs.ReadJSON(filepath.Join(dir, markerFile), &m); err != nil {
			continue // not tend's
		}
		versions = append(versions, version{dir, m.UsedAt})
	}
	sort.Slice(versions, func(i, j int) bool { return versions[i].used.After(versions[j].used) })
	var firstErr error
	for i, v := range versions {
		if i < p.keep || inUse[v.dir] || v.dir == keepAlso {
			continue
		}
		if err := os.RemoveAll(v.dir); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// artifactsInUse lists the version directories that units in the unit
// directory (of any tend) name.
func (p *Provider) artifactsInUse() map[string]bool {
	out := map[string]bool{}
	matches, _ := matchDir(p.unitDir, "tend.*.service")
	for _, m := range matches {
		b, err := os.ReadFile(m)
		if err != nil {
			continue
		}
		if id, ok := identityOf(parseUnitFile(b)); ok && id.Artifact != "" {
			out[id.Artifact] = true
		}
	}
	return out
}
