package process

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/tendhq/tend/providers"
)

var _ providers.LogStreamer = (*Provider)(nil)

// followPoll is how often a followed log is looked at for new output.
const followPoll = 100 * time.Millisecond

// StreamLogs writes the last req.Tail lines of the replica's output (as
// Logs does) and, with req.Follow, every complete line the replica writes
// next to its stdout or stderr, until ctx ends. The output is kept without
// a time for each line, so req.Since is refused with ErrNoLogTimes. A
// followed replica that is replaced or restarted keeps being followed: its
// logs stay where they are.
func (p *Provider) StreamLogs(ctx context.Context, req providers.LogRequest) error {
	inst := req.Instance
	if !req.Since.IsZero() {
		return fmt.Errorf("logs of %s replica %d since %s: %w", inst.Server, inst.Replica, req.Since.Format(time.RFC3339), providers.ErrNoLogTimes)
	}
	dir, err := p.instDirOf(inst)
	if err != nil {
		return err
	}
	paths := []string{filepath.Join(dir, stdoutLog), filepath.Join(dir, stderrLog)}
	// Where following starts: the sizes before the tail is read, so no
	// line written meanwhile is lost (one may come twice).
	var offsets []int64
	for _, path := range paths {
		var off int64
		if fi, err := os.Stat(path); err == nil {
			off = fi.Size()
		}
		offsets = append(offsets, off)
	}
	tail, err := p.Logs(ctx, inst, req.Tail)
	if err != nil {
		return err
	}
	if _, err := req.Out.Write(tail); err != nil {
		return err
	}
	if !req.Follow {
		return nil
	}
	if len(tail) > 0 && !bytes.HasSuffix(tail, []byte("\n")) {
		if _, err := req.Out.Write([]byte("\n")); err != nil {
			return err
		}
	}
	out := &lockedWriter{w: req.Out}
	errs := make(chan error, len(paths))
	for i, path := range paths {
		go func() { errs <- followFile(ctx, path, offsets[i], out) }()
	}
	var first error
	for range paths {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	if first != nil && !errors.Is(first, context.Canceled) && !errors.Is(first, context.DeadlineExceeded) {
		return first
	}
	return nil
}

// lockedWriter writes whole lines from several followers.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// followFile writes the complete lines appended to path from offset on,
// until ctx ends. When the file is rotated (renamed to PATH.1, a new one
// made) or made anew (the replica was replaced), the rest of the old one
// is read, then the new one from its start.
func followFile(ctx context.Context, path string, offset int64, out io.Writer) error {
	var f *os.File
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	var partial []byte
	buf := make([]byte, 32<<10)
	drain := func() error {
		for {
			n, err := f.Read(buf)
			if n > 0 {
				partial = append(partial, buf[:n]...)
				if i := bytes.LastIndexByte(partial, '\n'); i >= 0 {
					if _, werr := out.Write(partial[:i+1]); werr != nil {
						return werr
					}
					partial = append(partial[:0], partial[i+1:]...)
				}
			}
			if err == io.EOF || n == 0 {
				return nil
			}
			if err != nil {
				return err
			}
		}
	}
	tick := time.NewTicker(followPoll)
	defer tick.Stop()
	for {
		if f == nil {
			if nf, err := os.Open(path); err == nil {
				f = nf
				if fi, err := f.Stat(); err == nil && offset > fi.Size() {
					offset = 0 // a new, shorter file than the one measured
				}
				if _, err := f.Seek(offset, io.SeekStart); err != nil {
					return err
				}
				offset = 0 // a file opened later is read from its start
			}
		}
		if f != nil {
			if err := drain(); err != nil {
				return err
			}
			cur, err1 := f.Stat()
			now, err2 := os.Stat(path)
			switch {
			case err2 != nil && !errors.Is(err2, os.ErrNotExist):
				return err2
			case err1 == nil && (err2 != nil || !os.SameFile(cur, now)):
				// Rotated or removed: what is left of the old file
				// was just read.
				if err := drain(); err != nil {
					return err
				}
				f.Close()
				f = nil
			case err1 == nil && err2 == nil:
				if pos, err := f.Seek(0, io.SeekCurrent); err == nil && now.Size() < pos {
					// Truncated in place: read it again from the start.
					if _, err := f.Seek(0, io.SeekStart); err != nil {
						return err
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			if len(partial) > 0 {
				if _, err := out.Write(append(partial, '\n')); err != nil {
					return err
				}
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}
