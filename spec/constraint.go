package spec

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/Masterminds/semver/v3"
)

// pessimistic2 matches a "~> MAJOR.MINOR" term (two parts, no patch).
var pessimistic2 = regexp.MustCompile(`^~>\s*v?(\d+)\.(\d+)$`)

// ParseConstraint parses a version constraint. It is Masterminds/semver's
// syntax with one change that Terraform users rely on: "~> 1.4" means
// ">= 1.4, < 2.0" (only the last given part may grow), where semver alone
// would read it as "< 1.5". "~> 1.4.2" means ">= 1.4.2, < 1.5.0" either way.
func ParseConstraint(s string) (*semver.Constraints, error) {
	return semver.NewConstraint(rewritePessimistic(s))
}

func rewritePessimistic(s string) string {
	if !strings.Contains(s, "~>") {
		return s
	}
	groups := strings.Split(s, "||")
	for gi, g := range groups {
		terms := strings.Split(g, ",")
		for ti, t := range terms {
			m := pessimistic2.FindStringSubmatch(strings.TrimSpace(t))
			if m == nil {
				continue
			}
			major, _ := strconv.Atoi(m[1])
			terms[ti] = " >= " + m[1] + "." + m[2] + ".0, < " + strconv.Itoa(major+1) + ".0.0"
		}
		groups[gi] = strings.Join(terms, ",")
	}
	return strings.Join(groups, "||")
}
