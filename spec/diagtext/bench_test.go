package diagtext_test

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/tendhq/tend/spec/diagtext"
)

// BenchmarkGarbage measures what a person waits for when a repository file
// is garbage: loading it and printing its diagnostics, for 200 KB of random
// bytes and for 4,000 lines of "@" (each line an error). The target is under
// 1 s per op for load and write together; hcl's own text writer took 94 s for
// the "@" lines and did not finish the random bytes. It fails when an op of
// load+write takes a second or more.
func BenchmarkGarbage(b *testing.B) {
	r := rand.New(rand.NewPCG(15, 1))
	random := make([]byte, 200<<10)
	for i := range random {
		random[i] = byte(r.IntN(256))
	}
	for _, tc := range []struct {
		name string
		src  []byte
	}{
		{"random-200KB", random},
		{"at-lines-4000", []byte(strings.Repeat("@\n", 4000))},
	} {
		b.Run(tc.name+"/load+write", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				t0 := time.Now()
				files, diags := load(tc.src)
				w := diagtext.Writer{Files: files, Width: 78}
				if w.String(diags) == "" {
					b.Fatal("nothing written")
				}
				if d := time.Since(t0); d >= time.Second {
					b.Fatalf("load and write took %v, over the 1 s target", d)
				}
			}
		})
		files, diags := load(tc.src)
		b.Run(tc.name+"/write", func(b *testing.B) {
			b.ReportAllocs()
			w := diagtext.Writer{Files: files, Width: 78}
			for b.Loop() {
				_ = w.String(diags)
			}
		})
	}
}
