// Package access decides who may do what through the admin API: named bearer tokens, each
// with a role (read, operate, admin) and optional scopes (domain:GLOB, pool:GLOB) that limit
// its writes to matching domains and pools.
//
// A presented token is looked up by its SHA-256 digest and then compared in constant time
// with the stored value, so neither the time nor the path of a lookup depends on which of
// several tokens a guess came close to.
package access

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"path"
	"strings"
)

// Role is what a token may do.
type Role int

// The roles, each including the ones before it.
const (
	// Read may use every GET.
	Read Role = iota + 1
	// Operate may also set modes, pool modes, pins and fail back: the incident tools.
	Operate
	// Admin may also write the configuration.
	Admin
)

// ParseRole reads read, operate or admin.
func ParseRole(s string) (Role, bool) {
	switch s {
	case "read":
		return Read, true
	case "operate":
		return Operate, true
	case "admin":
		return Admin, true
	}
	return 0, false
}

func (r Role) String() string {
	switch r {
	case Read:
		return "read"
	case Operate:
		return "operate"
	case Admin:
		return "admin"
	}
	return "none"
}

// Scope limits a token's writes to the domains or pools its glob matches.
type Scope struct {
	Kind string // "domain" or "pool"
	Glob string // path.Match syntax; domains are matched without the trailing dot, in lower case
}

func (s Scope) String() string { return s.Kind + ":" + s.Glob }

// ParseScope reads domain:GLOB or pool:GLOB.
func ParseScope(s string) (Scope, error) {
	kind, glob, ok := strings.Cut(s, ":")
	if !ok || (kind != "domain" && kind != "pool") || glob == "" {
		return Scope{}, fmt.Errorf("scope %q: expected domain:GLOB or pool:GLOB such as domain:*.shop.example.net", s)
	}
	if kind == "domain" {
		glob = strings.ToLower(strings.TrimSuffix(glob, "."))
	}
	if _, err := path.Match(glob, ""); err != nil {
		return Scope{}, fmt.Errorf("scope %q: bad glob: %v", s, err)
	}
	return Scope{Kind: kind, Glob: glob}, nil
}

// Target is what a write changes: a domain, a pool, a health check template, or nothing
// named (Kind ""), e.g. a fleet-wide action.
type Target struct {
	Kind string // "domain", "pool", "healthcheck" or ""
	Name string
}

func (t Target) String() string {
	if t.Kind == "" {
		return "resources outside any domain or pool"
	}
	return t.Kind + " " + t.Name
}

// covers reports whether s covers t.
func (s Scope) covers(t Target) bool {
	if t.Kind != s.Kind {
		return false
	}
	name := t.Name
	if t.Kind == "domain" {
		name = strings.ToLower(strings.TrimSuffix(name, "."))
	}
	ok, _ := path.Match(s.Glob, name)
	return ok
}

// Token is a named token with its rights. Its value is kept only as a digest and a copy
// for the constant-time comparison; nothing prints it.
type Token struct {
	Name   string
	Role   Role
	Scopes []Scope // none: every domain and pool
	value  []byte
	digest [sha256.Size]byte
}

// NewToken makes a token of value.
func NewToken(name, value string, role Role, scopes ...Scope) *Token {
	return &Token{Name: name, Role: role, Scopes: scopes, value: []byte(value), digest: sha256.Sum256([]byte(value))}
}

// String is the token's name: a token formatted anywhere shows its name, not its value.
func (t *Token) String() string { return t.Name }

// GoString keeps %#v from printing the value too.
func (t *Token) GoString() string { return "access.Token(" + t.Name + ")" }

// Scoped reports whether the token's writes are limited to some domains and pools.
func (t *Token) Scoped() bool { return len(t.Scopes) > 0 }

// Set is the tokens of an api block.
type Set struct {
	byDigest map[[sha256.Size]byte]*Token
	names    []string
}

// NewSet checks that names and values are unique and indexes the tokens.
func NewSet(tokens ...*Token) (*Set, error) {
	s := &Set{byDigest: map[[sha256.Size]byte]*Token{}}
	seen := map[string]bool{}
	for _, t := range tokens {
		if seen[t.Name] {
			return nil, fmt.Errorf("token %s: defined twice", t.Name)
		}
		if len(t.value) == 0 {
			return nil, fmt.Errorf("token %s: empty value", t.Name)
		}
		if o, dup := s.byDigest[t.digest]; dup {
			return nil, fmt.Errorf("token %s: same value as token %s; give every token its own", t.Name, o.Name)
		}
		seen[t.Name] = true
		s.byDigest[t.digest] = t
		s.names = append(s.names, t.Name)
	}
	return s, nil
}

// Len is the number of tokens.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.byDigest)
}

// Lookup returns the token whose value is presented, or nil. The digest picks the one
// candidate (a map lookup on a SHA-256 digest reveals nothing usable about the values);
// the value is then compared in constant time.
func (s *Set) Lookup(presented string) *Token {
	if s == nil || presented == "" {
		return nil
	}
	t := s.byDigest[sha256.Sum256([]byte(presented))]
	if t == nil {
		return nil
	}
	if subtle.ConstantTimeCompare([]byte(presented), t.value) != 1 {
		return nil
	}
	return t
}

// Denied is a refusal: the token, and the right it lacks.
type Denied struct {
	Token string
	Msg   string
}

func (d *Denied) Error() string { return "token " + d.Token + ": " + d.Msg }

// Allow decides whether t may do what (worded for the refusal, e.g. "write config"), which
// needs role need, on target. Reads ignore scopes: scopes limit writes.
func Allow(t *Token, need Role, what string, write bool, target Target) error {
	if t.Role < need {
		return &Denied{Token: t.Name, Msg: fmt.Sprintf("role %s cannot %s", t.Role, what)}
	}
	if !write || !t.Scoped() {
		return nil
	}
	for _, s := range t.Scopes {
		if s.covers(target) {
			return nil
		}
	}
	scopes := make([]string, len(t.Scopes))
	for i, s := range t.Scopes {
		scopes[i] = s.String()
	}
	return &Denied{Token: t.Name, Msg: fmt.Sprintf("scope %s does not cover %s", strings.Join(scopes, " "), target)}
}
