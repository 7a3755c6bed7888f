package memory

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"path"
	"sort"
	"time"

	"github.com/tendhq/tend/providers"
)

var (
	_ providers.DataCopier = (*Provider)(nil)
	_ providers.Halter     = (*Provider)(nil)
)

// FileWrite is a file that a one-off task writes into a replica's volume
// (see Provider.ExecWrites).
type FileWrite struct {
	Replica int
	Path    string // the volume's path, such as "/data"
	Name    string // the file's name inside it
	Data    []byte
}

// Volumes are kept by server and replica, not by instance: like real
// volumes, they outlive StopReplica and a StartReplica of the same replica
// finds them again. Each volume path holds the tar stream last copied in
// (an empty tar until then).

// CopyOut implements providers.DataCopier: it writes the volume at path
// as a tar stream.
func (p *Provider) CopyOut(ctx context.Context, inst providers.Instance, vpath string, w io.Writer) error {
	p.mu.Lock()
	if _, ok := p.instances[id(inst.Server, inst.Replica)]; !ok {
		p.mu.Unlock()
		return fmt.Errorf("copy out %s: %s replica %d: no such instance", vpath, inst.Server, inst.Replica)
	}
	data := p.volume(inst.Server, inst.Replica, vpath)
	p.CopyOuts = append(p.CopyOuts, id(inst.Server, inst.Replica)+":"+vpath)
	p.mu.Unlock()
	if _, err := w.Write(data); err != nil {
		return fmt.Errorf("copy out %s: %w", vpath, err)
	}
	return ctx.Err()
}

// CopyIn implements providers.DataCopier: it reads the whole tar stream and
// makes it the volume's content. A stream that is not a tar changes
// nothing.
func (p *Provider) CopyIn(ctx context.Context, inst providers.Instance, vpath string, r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("copy in %s: %w", vpath, err)
	}
	if _, err := readTar(data); err != nil {
		return fmt.Errorf("copy in %s: %w", vpath, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.instances[id(inst.Server, inst.Replica)]; !ok {
		return fmt.Errorf("copy in %s: %s replica %d: no such instance", vpath, inst.Server, inst.Replica)
	}
	p.setVolume(inst.Server, inst.Replica, vpath, data)
	p.CopyIns = append(p.CopyIns, id(inst.Server, inst.Replica)+":"+vpath)
	return nil
}

// Halt implements providers.Halter: the replica is marked exited (its
// volumes stay) and the halt is recorded in Halts.
func (p *Provider) Halt(_ context.Context, inst providers.Instance, _ time.Duration) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	in, ok := p.instances[id(inst.Server, inst.Replica)]
	if !ok {
		return fmt.Errorf("halt %s replica %d: no such instance", inst.Server, inst.Replica)
	}
	in.State, in.ExitCode, in.Message = providers.StateExited, 0, "halted by tend"
	p.Halts = append(p.Halts, id(inst.Server, inst.Replica))
	return nil
}

// Resume implements providers.Halter: the replica runs again, unless its
// version is in FailVersion or ResumeExit says it exits.
func (p *Provider) Resume(_ context.Context, inst providers.Instance) (providers.Instance, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	key := id(inst.Server, inst.Replica)
	in, ok := p.instances[key]
	if !ok {
		return providers.Instance{}, fmt.Errorf("resume %s replica %d: no such instance", inst.Server, inst.Replica)
	}
	p.Resumes = append(p.Resumes, key)
	if in.State != providers.StateExited && in.State != providers.StateCrashing {
		return *in, nil
	}
	in.State, in.ExitCode, in.Message, in.StartedAt = providers.StateRunning, 0, "", time.Now()
	if p.FailVersion[in.Server+"@"+in.Version] {
		in.State, in.ExitCode, in.Message = providers.StateExited, 1, "exited with code 1"
	}
	if p.ResumeExit[key] > 0 {
		p.ResumeExit[key]--
		in.State, in.ExitCode, in.Message = providers.StateExited, 1, "exited with code 1 after resume"
	}
	return *in, nil
}

// SetFile writes a file into the volume at vpath of a server's replica,
// whether or not the replica runs now, as the replica itself would.
func (p *Provider) SetFile(server string, replica int, vpath, name string, data []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.writeFile(server, replica, FileWrite{Replica: replica, Path: vpath, Name: name, Data: data})
}

// File reads a file from the volume at vpath of a server's replica.
func (p *Provider) File(server string, replica int, vpath, name string) ([]byte, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	files, err := readTar(p.volume(server, replica, vpath))
	if err != nil {
		return nil, false
	}
	b, ok := files[path.Clean(name)]
	return b, ok
}

// volume returns the tar stream of a volume; the caller holds p.mu.
func (p *Provider) volume(server string, replica int, vpath string) []byte {
	if b, ok := p.volumes[id(server, replica)][path.Clean(vpath)]; ok {
		return b
	}
	return emptyTar
}

// setVolume replaces a volume's content; the caller holds p.mu.
func (p *Provider) setVolume(server string, replica int, vpath string, data []byte) {
	key := id(server, replica)
	if p.volumes[key] == nil {
		p.volumes[key] = map[string][]byte{}
	}
	p.volumes[key][path.Clean(vpath)] = data
}

// writeFile adds or replaces one file of a volume; the caller holds p.mu.
func (p *Provider) writeFile(server string, replica int, f FileWrite) {
	files, err := readTar(p.volume(server, replica, f.Path))
	if err != nil {
		files = map[string][]byte{}
	}
	files[path.Clean(f.Name)] = append([]byte(nil), f.Data...)
	p.setVolume(server, replica, f.Path, writeTar(files))
}

var emptyTar = writeTar(nil)

// readTar returns the regular files of a tar stream by name.
func readTar(data []byte) (map[string][]byte, error) {
	files := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return files, nil
		}
		if err != nil {
			return nil, fmt.Errorf("not a tar stream: %w", err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("not a tar stream: %w", err)
		}
		if hdr.Typeflag == tar.TypeReg {
			files[path.Clean(hdr.Name)] = b
		}
	}
}

// writeTar writes files as a tar stream, sorted by name.
func writeTar(files map[string][]byte) []byte {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		_ = tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)})
		_, _ = tw.Write(files[n])
	}
	_ = tw.Close()
	return buf.Bytes()
}
