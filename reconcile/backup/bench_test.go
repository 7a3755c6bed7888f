package backup

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

const (
	benchFiles = 10_000
	benchBytes = 200 << 20
)

// benchTree writes the data path of the benchmarks to dir: benchBytes in
// benchFiles files under 100 directories, sizes spread from tens of bytes
// to a few hundred KiB, every other file text-like (words, numbers and
// punctuation, which gzip shrinks about 3 times) and the others random
// bytes (which it cannot shrink). It takes a second or two.
func benchTree(b *testing.B, dir string) {
	b.Helper()
	chacha := rand.NewChaCha8([32]byte{'t', 'e', 'n', 'd'})
	rng := rand.New(chacha)
	corpus := textCorpus(rng, 8<<20)

	// Log-uniform sizes from 64 B to 160 KiB (a mean near 20 KiB), scaled
	// to add up to benchBytes.
	sizes := make([]int, benchFiles)
	total := 0.0
	raw := make([]float64, benchFiles)
	for i := range raw {
		raw[i] = math.Exp(math.Log(64) + rng.Float64()*(math.Log(160<<10)-math.Log(64)))
		total += raw[i]
	}
	sum := 0
	for i := range sizes {
		sizes[i] = int(raw[i] * benchBytes / total)
		sum += sizes[i]
	}
	sizes[0] += benchBytes - sum

	random := make([]byte, 0, 1<<20)
	for i, size := range sizes {
		d := filepath.Join(dir, fmt.Sprintf("base/%02d/%02d", i%10, i%100))
		if i < 100 {
			if err := os.MkdirAll(d, 0o755); err != nil {
				b.Fatal(err)
			}
		}
		var data []byte
		if i%2 == 0 {
			at := rng.IntN(len(corpus) - size)
			data = corpus[at : at+size]
		} else {
			if cap(random) < size {
				random = make([]byte, 0, size)
			}
			data = random[:size]
			_, _ = chacha.Read(data)
		}
		if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("%05d", i)), data, 0o640); err != nil {
			b.Fatal(err)
		}
	}
}

// textCorpus is n bytes of text-like data: words of a vocabulary of
// 4096, some far commoner than others, with numbers and punctuation.
func textCorpus(rng *rand.Rand, n int) []byte {
	const letters = "etaoinshrdlcumwfgypbvkjxqz_"
	vocab := make([][]byte, 4096)
	for i := range vocab {
		w := make([]byte, 2+rng.IntN(9))
		for j := range w {
			w[j] = letters[int(float64(len(letters))*math.Pow(rng.Float64(), 2))]
		}
		vocab[i] = w
	}
	seps := []string{" ", " ", " ", " ", ", ", "; ", ".\n", " = ", "\t"}
	out := make([]byte, 0, n+64)
	for len(out) < n {
		if rng.IntN(8) == 0 {
			out = fmt.Appendf(out, "%d", rng.IntN(100000))
		} else {
			out = append(out, vocab[int(float64(len(vocab))*math.Pow(rng.Float64(), 3))]...)
		}
		out = append(out, seps[rng.IntN(len(seps))]...)
	}
	return out[:n]
}

// BenchmarkArchive compares a backup (Create of a Dir destination, the
// data path copied out as a tar stream) with `tar czf` of the same
// directory, and a restore (Fetch, then Extract into an empty directory)
// with `tar xzf`. Each iteration runs both, in turns, tar's untimed: the
// ns/op are tend's, tar-ns/op tar's, and x-tar is tend's wall time over
// tar's (the target is at most 1.3), cpu-x-tar the same for CPU time
// (user and system), which other work on the machine disturbs less.
func BenchmarkArchive(b *testing.B) {
	if _, err := exec.LookPath("tar"); err != nil {
		b.Fatal("this benchmark needs tar")
	}
	ctx := context.Background()
	work := b.TempDir()
	src := filepath.Join(work, "src")
	start := time.Now()
	benchTree(b, src)
	b.Logf("the data path (%d MiB in %d files) took %v to write", benchBytes>>20, benchFiles, time.Since(start).Round(time.Millisecond))
	in := Input{Paths: []string{"/data"}, CopyOut: copyOutDirs(map[string]string{"/data": src})}
	dest, err := NewDir(filepath.Join(work, "backups"))
	if err != nil {
		b.Fatal(err)
	}
	tgz := filepath.Join(work, "data.tgz")
	tarCzf := func(b *testing.B) *os.ProcessState {
		return runTar(b, "-C", src, "-czf", tgz, ".")
	}
	create := func(b *testing.B) *Manifest {
		m, err := Create(ctx, dest, testManifest("db", "bench"), in)
		if err != nil {
			b.Fatal(err)
		}
		return m
	}

	var m *Manifest // what the restores read
	turn := 0
	b.Run("Create", func(b *testing.B) {
		paired(b, &turn, side{run: func(b *testing.B) { m = create(b) }}, tarSide{run: tarCzf})
	})
	if _, err := os.Stat(tgz); err != nil {
		tarCzf(b)
	}
	if m == nil {
		m = create(b)
	}
	b.Logf("archive: %d bytes (tar czf: %d)", m.Size, fileSize(b, tgz))

	ours, theirs := filepath.Join(work, "restore"), filepath.Join(work, "restore-tar")
	empty := func(dir string) func(*testing.B) {
		return func(b *testing.B) {
			if err := os.RemoveAll(dir); err != nil {
				b.Fatal(err)
			}
			if err := os.Mkdir(dir, 0o755); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("Restore", func(b *testing.B) {
		restore := func(b *testing.B) {
			l, err := Fetch(ctx, dest, m, "")
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			if err := l.Extract(ctx, func(_ context.Context, _ string, r io.Reader) error { return untar(ours, r) }, nil); err != nil {
				b.Fatal(err)
			}
		}
		tarXzf := func(b *testing.B) *os.ProcessState { return runTar(b, "-C", theirs, "-xzf", tgz) }
		paired(b, &turn, side{restore, empty(ours)}, tarSide{tarXzf, empty(theirs)})
	})
}

// side is what a paired benchmark times, and what it does first, untimed.
type side struct{ run, reset func(*testing.B) }

// tarSide is the tar command a paired benchmark compares with.
type tarSide struct {
	run   func(*testing.B) *os.ProcessState
	reset func(*testing.B)
}

// paired runs ours (timed) and tar (not timed) b.N times each, each
// after its reset (not timed), in turns (tar first when *turn is odd; it
// counts on across the runs of the benchmark), and reports tar's figures
// beside ours.
func paired(b *testing.B, turn *int, ours side, tar tarSide) {
	var tarWall, tarCPU, ourCPU time.Duration
	runTar := func() {
		b.StopTimer()
		if tar.reset != nil {
			tar.reset(b)
		}
		start := time.Now()
		st := tar.run(b)
		tarWall += time.Since(start)
		tarCPU += st.UserTime() + st.SystemTime()
		b.StartTimer()
	}
	runOurs := func() {
		if ours.reset != nil {
			b.StopTimer()
			ours.reset(b)
			b.StartTimer()
		}
		before := cpuTime(b)
		ours.run(b)
		ourCPU += cpuTime(b) - before
	}
	for range b.N {
		if *turn%2 == 1 {
			runTar()
			runOurs()
		} else {
			runOurs()
			runTar()
		}
		*turn++
	}
	b.SetBytes(benchBytes)
	b.ReportMetric(float64(tarWall.Nanoseconds())/float64(b.N), "tar-ns/op")
	b.ReportMetric(float64(b.Elapsed())/float64(tarWall), "x-tar")
	b.ReportMetric(float64(ourCPU)/float64(tarCPU), "cpu-x-tar")
}

// runTar runs tar with args; its state has the CPU time of tar and of
// the gzip it ran.
func runTar(b *testing.B, args ...string) *os.ProcessState {
	cmd := exec.Command("tar", args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("tar %v: %v: %s", args, err, out)
	}
	return cmd.ProcessState
}

// cpuTime is the user and system time this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func fileSize(b *testing.B, name string) int64 {
	fi, err := os.Stat(name)
	if err != nil {
		b.Fatal(err)
	}
	return fi.Size()
}
