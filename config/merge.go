package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/gtm-dns/coredns-gtm/state"
)

// Merge is the configuration in force for state d: the Corefile's resources (base) and the
// API-managed ones under config/ in d, validated together. A Corefile resource hides an API
// one of the same kind and name (the Corefile is the static base; the API cannot write such
// names). defaultTTL is the block's, for domains that do not set one.
func Merge(base *Config, env Env, defaultTTL uint32, d *state.Data) (*Config, Errors) {
	res := base.Clone()
	var errs Errors
	keys := make([]string, 0)
	for k := range d.Entries {
		if strings.HasPrefix(k, state.ConfigPrefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys) // a stable order: the state has none of its own
	for _, k := range keys {
		ks, name, _ := strings.Cut(strings.TrimPrefix(k, state.ConfigPrefix), "/")
		kind, ok := ParseKind(ks)
		if !ok {
			errs = append(errs, &Error{Message: fmt.Sprintf("state key %s: unknown kind %q", k, ks)})
			continue
		}
		if base.Get(kind, name) != nil {
			continue // the Corefile defines it too, and wins
		}
		r, err := Decode(kind, name, d.Entries[k].Value, defaultTTL)
		if err != nil {
			errs = append(errs, &Error{Resource: kind.Singular() + " " + name, Message: err.Error()})
			continue
		}
		res.Put(r)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	if errs := Validate(res, env); len(errs) > 0 {
		return nil, errs
	}
	return res, nil
}

// Shadowed lists the API resources in d that a Corefile resource of the same kind and name
// hides, as labels.
func Shadowed(base *Config, d *state.Data) []string {
	var out []string
	for k := range d.Entries {
		if ks, name, ok := strings.Cut(strings.TrimPrefix(k, state.ConfigPrefix), "/"); ok && strings.HasPrefix(k, state.ConfigPrefix) {
			if kind, ok := ParseKind(ks); ok && base.Get(kind, name) != nil {
				out = append(out, kind.Singular()+" "+name)
			}
		}
	}
	slices.Sort(out)
	return out
}
