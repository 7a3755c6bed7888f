package reconcile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLoopStalledMessageIsBoundedAndEscaped: a garbage commit stalls the
// loop at once (an 8 KB one held a pass for 102 s while hcl's text writer
// printed its 4,000 errors), the stalled message shows the first 20 errors
// and how many more, and a repository's escape sequences reach it as text.
func TestLoopStalledMessageIsBoundedAndEscaped(t *testing.T) {
	h := newLoopHarness(t)
	h.waitPasses(1)
	src := strings.Repeat("@\x1b]0;pwned\x07\n", 4000)
	if err := os.WriteFile(filepath.Join(h.dir, "main.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	st := h.pass()
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("the pass took %v", d)
	}
	if st.LastResult != PassStalled {
		t.Fatalf("result %q, want stalled", st.LastResult)
	}
	if n := strings.Count(st.Stalled, "Error: "); n != 20 {
		t.Errorf("%d errors in the stalled message, want the first 20", n)
	}
	if !strings.Contains(st.Stalled, "more errors not shown") {
		t.Errorf("the stalled message does not say how many errors it leaves out:\n%s", st.Stalled)
	}
	for i := 0; i < len(st.Stalled); i++ {
		if c := st.Stalled[i]; c < 0x20 && c != '\n' && c != '\t' {
			t.Fatalf("control byte %#x in the stalled message:\n%q", c, st.Stalled)
		}
	}
	if !strings.Contains(st.Stalled, `\x1b]0;pwned\x07`) {
		t.Errorf("the escape sequence is not shown escaped:\n%s", st.Stalled)
	}
}
