package healthcheck

import (
	"fmt"
	"strconv"
)

// Require is how many of an address's health checks must pass for it to be healthy
// (`healthcheck NAME... require all|any|N`); RequireAll, the zero value, means every one.
type Require int

// The named rules: all is the default, any is the same as 1.
const (
	RequireAll Require = 0
	RequireAny Require = 1
)

// ParseRequire reads `require all|any|N` for a pool of checks checks: N from 1 to checks.
func ParseRequire(s string, checks int) (Require, error) {
	switch s {
	case "", "all":
		return RequireAll, nil
	case "any":
		return RequireAny, nil
	}
	n, err := strconv.Atoi(s)
	switch {
	case err != nil || n < 1:
		return 0, fmt.Errorf("require %q: expected all, any or a number from 1 to the number of healthchecks", s)
	case n > checks:
		return 0, fmt.Errorf("require %d exceeds its %d healthchecks", n, checks)
	}
	return Require(n), nil
}

// Met reports whether passing of checks checks satisfy the rule.
func (r Require) Met(passing, checks int) bool {
	if r == RequireAll {
		return passing >= checks
	}
	return passing >= min(int(r), checks)
}
