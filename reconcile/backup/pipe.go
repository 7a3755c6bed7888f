package backup

import (
	"io"
	"sync"
)

// pipeSize is the buffer between the stages of a backup or a restore
// (copying out, compressing, writing; reading, decompressing, copying in).
const pipeSize = 1 << 20

// newPipe is io.Pipe with a buffer of size bytes: a Write returns once its
// bytes are buffered, so that the writer goes on while the reader is busy
// (a tar stream's small writes no longer take turns with the reads, and
// the stages of a backup use both cores), as a pipe between two
// processes does.
func newPipe(size int) (*pipeReader, *pipeWriter) {
	p := &pipe{buf: make([]byte, size)}
	p.readable.L = &p.mu
	p.writable.L = &p.mu
	return &pipeReader{p}, &pipeWriter{p}
}

type pipe struct {
	mu       sync.Mutex
	readable sync.Cond // bytes or the writer's close arrived
	writable sync.Cond // room or the reader's close arrived
	buf      []byte
	start, n int   // the buffered bytes: n from start on, wrapping around
	werr     error // the writer's close: io.EOF, or its error
	rerr     error // the reader's close
}

func (p *pipe) read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.n == 0 && p.werr == nil && p.rerr == nil {
		p.readable.Wait()
	}
	switch {
	case p.rerr != nil:
		return 0, io.ErrClosedPipe
	case p.werr != nil && p.werr != io.EOF:
		return 0, p.werr // the writer failed: what it left is not read
	case p.n == 0:
		return 0, p.werr
	}
	k := copy(b, p.buf[p.start:min(p.start+p.n, len(p.buf))])
	if k < len(b) && k < p.n {
		k += copy(b[k:], p.buf[:p.n-k])
	}
	p.start = (p.start + k) % len(p.buf)
	p.n -= k
	p.writable.Signal()
	return k, nil
}

func (p *pipe) write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	written := 0
	for len(b) > 0 {
		for p.n == len(p.buf) && p.rerr == nil && p.werr == nil {
			p.writable.Wait()
		}
		switch {
		case p.rerr != nil:
			return written, p.rerr
		case p.werr != nil:
			return written, io.ErrClosedPipe
		}
		end := (p.start + p.n) % len(p.buf)
		k := copy(p.buf[end:min(end+len(p.buf)-p.n, len(p.buf))], b)
		p.n += k
		b = b[k:]
		written += k
		p.readable.Signal()
	}
	return written, nil
}

func (p *pipe) closeRead(err error) {
	if err == nil {
		err = io.ErrClosedPipe
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rerr == nil {
		p.rerr = err
	}
	p.readable.Broadcast()
	p.writable.Broadcast()
}

func (p *pipe) closeWrite(err error) {
	if err == nil {
		err = io.EOF
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.werr == nil {
		p.werr = err
	}
	p.readable.Broadcast()
	p.writable.Broadcast()
}

// pipeReader is the read half of a pipe.
type pipeReader struct{ p *pipe }

// Read reads what was written, then io.EOF once the writer closed; when
// the writer closed with an error, Read returns it at once.
func (r *pipeReader) Read(b []byte) (int, error) { return r.p.read(b) }

// Close closes the reader: writes fail with io.ErrClosedPipe.
func (r *pipeReader) Close() error { return r.CloseWithError(nil) }

// CloseWithError closes the reader: writes fail with err.
func (r *pipeReader) CloseWithError(err error) error {
	r.p.closeRead(err)
	return nil
}

// pipeWriter is the write half of a pipe.
type pipeWriter struct{ p *pipe }

// Write buffers b, waiting for room as long as the reader reads.
func (w *pipeWriter) Write(b []byte) (int, error) { return w.p.write(b) }

// Close closes the writer: reads get io.EOF after what is buffered.
func (w *pipeWriter) Close() error { return w.CloseWithError(nil) }

// CloseWithError closes the writer: reads get err (io.EOF when nil).
func (w *pipeWriter) CloseWithError(err error) error {
	w.p.closeWrite(err)
	return nil
}
