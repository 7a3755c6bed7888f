package reconcile

import (
	"testing"

	"github.com/tendhq/tend/internal/pgtest"
)

// TestMain stops the PostgreSQL server that BenchmarkIdlePass/postgres
// starts.
func TestMain(m *testing.M) { pgtest.Main(m) }
