package spec

import (
	"testing"

	"github.com/Masterminds/semver/v3"
)

func TestParseConstraint(t *testing.T) {
	t.Parallel()
	tests := []struct {
		constraint string
		version    string
		want       bool
	}{
		{"~> 1.4", "1.4.0", true},
		{"~> 1.4", "1.9.3", true},
		{"~> 1.4", "2.0.0", false},
		{"~> 1.4", "1.3.9", false},
		{"~> 1.4.2", "1.4.9", true},
		{"~> 1.4.2", "1.5.0", false},
		{">= 3.0, < 4.0", "3.7.1", true},
		{">= 3.0, < 4.0", "4.0.0", false},
		{"~> 1.4 || ~> 3.1", "3.9.0", true},
		{"~> 1.4 || ~> 3.1", "2.0.0", false},
		{"^2", "2.9.0", true},
	}
	for _, tt := range tests {
		t.Run(tt.constraint+" "+tt.version, func(t *testing.T) {
			c, err := ParseConstraint(tt.constraint)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Check(semver.MustParse(tt.version)); got != tt.want {
				t.Errorf("%q.Check(%s) = %v, want %v", tt.constraint, tt.version, got, tt.want)
			}
		})
	}
}
