package control

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/gtm-dns/coredns-gtm/config"
	"github.com/gtm-dns/coredns-gtm/state"
)

// testConfig is a block of zone whose resources are given in the form of GET
// /api/v1/config: {"healthchecks":{NAME:{...}},"pools":{...},"domains":{...}}, decoded and
// validated as the API does, with the block's TTL 30.
func testConfig(tb testing.TB, zone, doc string) Config {
	tb.Helper()
	res := &config.Config{}
	dec := json.NewDecoder(strings.NewReader(doc))
	next := func() json.Token {
		t, err := dec.Token()
		if err != nil {
			tb.Fatalf("resources: %v", err)
		}
		return t
	}
	next() // {
	for dec.More() {
		k := config.Kind(next().(string))
		next()           // {
		for dec.More() { // in order: the resources keep the order written
			name := next().(string)
			var body json.RawMessage
			if err := dec.Decode(&body); err != nil {
				tb.Fatalf("%s %s: %v", k, name, err)
			}
			if k == config.KindDomain {
				name, _ = config.DomainName(name)
			}
			r, err := config.Decode(k, name, body, config.DefaultTTL)
			if err != nil {
				tb.Fatalf("%s %s: %v", k, name, err)
			}
			config.MetaOf(r).Source = config.SourceCorefile
			res.Put(r)
		}
		next() // }
	}
	cfg := Config{File: "Testfile", Zones: []string{zone}, TTL: config.DefaultTTL, Resources: res, Env: config.Env{Zones: []string{zone}}, ECS: true}
	env := cfg.Env
	env.GeoIP, env.ASN = true, true // the tests that route by geo open their databases
	if errs := config.Validate(res, env); len(errs) > 0 {
		tb.Fatalf("resources: %v", errs)
	}
	return cfg
}

// newMemStore is an empty in-memory state, as a block without a state file has.
func newMemStore(tb testing.TB) *state.Store {
	tb.Helper()
	st, err := state.Open(context.Background(), state.NewMemory())
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

// startBlock starts a block of cfg on its own memory store (unless cfg has one) and stops it
// at cleanup.
func startBlock(tb testing.TB, cfg Config) *Block {
	tb.Helper()
	if cfg.Store == nil {
		cfg.Store = newMemStore(tb)
	}
	b, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	if err := b.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(b.Stop)
	return b
}
