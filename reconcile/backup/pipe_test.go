package backup

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	mrand "math/rand/v2"
	"testing"
	"time"
)

func TestPipe(t *testing.T) {
	t.Parallel()
	data := make([]byte, 1<<20)
	rand.Read(data)
	for _, size := range []int{1, 7, 4096, 3 << 20} {
		pr, pw := newPipe(size)
		go func() {
			rest := data
			for len(rest) > 0 {
				n := min(len(rest), 1+mrand.IntN(10000))
				if k, err := pw.Write(rest[:n]); k != n || err != nil {
					pw.CloseWithError(err)
					return
				}
				rest = rest[n:]
			}
			pw.Close()
		}()
		var got bytes.Buffer
		buf := make([]byte, 20000)
		for {
			n, err := pr.Read(buf[:1+mrand.IntN(len(buf)-1)])
			got.Write(buf[:n])
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("size %d: %v", size, err)
			}
		}
		if !bytes.Equal(got.Bytes(), data) {
			t.Errorf("size %d: %d bytes came out of the pipe, not the %d that went in", size, got.Len(), len(data))
		}
		if n, err := pr.Read(buf); n != 0 || err != io.EOF {
			t.Errorf("size %d: a read after the end: %d, %v", size, n, err)
		}
	}
}

func TestPipeClose(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")

	// The writer's error reaches the reader at once, even with bytes left.
	pr, pw := newPipe(100)
	if _, err := pw.Write([]byte("some bytes")); err != nil {
		t.Fatal(err)
	}
	pw.CloseWithError(boom)
	if n, err := pr.Read(make([]byte, 10)); n != 0 || !errors.Is(err, boom) {
		t.Errorf("read after the writer failed: %d, %v", n, err)
	}
	if _, err := pw.Write([]byte("x")); !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("write after close: %v", err)
	}

	// A writer waiting for room is released by the reader's close, with
	// its error.
	pr, pw = newPipe(4)
	done := make(chan error, 1)
	go func() {
		_, err := pw.Write([]byte("more than four bytes"))
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("a write of more than the buffer returned without a reader: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	pr.CloseWithError(boom)
	if err := <-done; !errors.Is(err, boom) {
		t.Errorf("write after the reader closed: %v", err)
	}
	if _, err := pr.Read(make([]byte, 1)); !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("read after the reader closed: %v", err)
	}

	// A reader waiting for bytes is released by the writer's close.
	pr, pw = newPipe(4)
	go func() {
		time.Sleep(20 * time.Millisecond)
		pw.Close()
	}()
	if n, err := pr.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("read of a closed, empty pipe: %d, %v", n, err)
	}
}
