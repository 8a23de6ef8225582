package control

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/gtm-dns/coredns-gtm/geo"
	"github.com/gtm-dns/coredns-gtm/geo/geotest"
	"github.com/gtm-dns/coredns-gtm/policy"
)

// scopeConfig is a block whose domains route by every kind of term the partition covers
// (plugin/scope_test.go's scopeBlock), with the demo databases city and asn.
func scopeConfig(tb testing.TB, city, asn string) Config {
	tb.Helper()
	cfg := testConfig(tb, "gtm.example.net.", `{
	"pools": {
		"eu": {"addresses": [{"address": "192.0.2.1"}], "location": {"lat": 50.11, "lon": 8.68}},
		"as": {"addresses": [{"address": "192.0.2.2"}], "location": {"lat": 1.35, "lon": 103.82}},
		"us": {"addresses": [{"address": "192.0.2.3"}], "location": {"lat": 39.04, "lon": -77.49}},
		"google": {"addresses": [{"address": "192.0.2.4"}]},
		"office": {"addresses": [{"address": "192.0.2.5"}]}
	},
	"domains": {
		"continents.gtm.example.net": {"routes": [
			{"selector": "continent:EU", "pools": ["eu"]}, {"selector": "continent:AF", "pools": ["eu"]},
			{"selector": "continent:AS", "pools": ["as"]}, {"selector": "continent:OC", "pools": ["as"]},
			{"selector": "continent:NA", "pools": ["us"]}, {"selector": "continent:SA", "pools": ["us"]},
			{"selector": "default", "pools": ["eu"]}]},
		"www.gtm.example.net": {"routes": [
			{"selector": "continent:AS", "pools": ["as"]}, {"selector": "continent:EU", "pools": ["eu"]},
			{"selector": "country:US", "pools": ["us"]}, {"selector": "region:US-CA", "pools": ["google"]},
			{"selector": "asn:15169", "pools": ["google"]},
			{"selector": "net:81.2.69.128/25,net:2001:db8:1:8000::/49", "pools": ["office"]},
			{"selector": "net:10.0.0.0/8", "pools": ["as"]}, {"selector": "net:10.1.0.0/16", "pools": ["office"]},
			{"selector": "default", "pools": ["eu"]}]},
		"fenced.gtm.example.net": {"routes": [
			{"selector": "country:DE,country:GB,country:FR", "pools": ["eu"]}, {"selector": "asn:4134", "pools": ["as"]}]},
		"near.gtm.example.net": {"routes": [
			{"selector": "continent:NA", "pools": ["us"]}, {"selector": "default", "pools": ["eu", "as", "us"], "select": "nearest"}]},
		"nets.gtm.example.net": {"routes": [
			{"selector": "net:2001:db8::/32", "pools": ["as"]}, {"selector": "default", "pools": ["eu"]}]},
		"flat.gtm.example.net": {"routes": [{"selector": "default", "pools": ["eu"]}]}
	}
}`)
	var err error
	if cfg.Geo, err = geo.Open(city); err != nil {
		tb.Fatal(err)
	}
	if cfg.ASN, err = geo.Open(asn); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cfg.Geo.Close(); cfg.ASN.Close() })
	cfg.Env.GeoIP, cfg.Env.ASN = true, true
	return cfg
}

// decision is the route a client gets (its place in the domain), and the located client.
func decision(g *Block, d *policy.Domain, addr netip.Addr, bits int) (what string, cl policy.Client) {
	sub := &geo.ClientSubnet{Addr: netip.PrefixFrom(addr, bits).Masked().Addr(), SourceBits: bits}
	ClientOf(&cl, sub, netip.Addr{})
	if cl.Known {
		Locate(g.cfg.Geo, g.cfg.ASN, d, &cl)
	}
	r := d.Match(&cl)
	if r == nil {
		return "no route", cl
	}
	what = fmt.Sprintf("route %d (%s)", slices.Index(d.Routes, r), r.Selector.Text)
	if r.Select == policy.SelectNearest {
		what += " -> " + r.Pick(&cl, policy.IPv4, nil).Pool.Name
	}
	return what, cl
}

// Until a snapshot's partitions are built, answers carry the database network's scope; a
// build overtaken by a newer swap publishes nothing; an unchanged route set is not built
// again for the next snapshot.
func TestScopeBuilds(t *testing.T) {
	dir := t.TempDir()
	city, asn := filepath.Join(dir, "city.mmdb"), filepath.Join(dir, "asn.mmdb")
	if err := geotest.WriteDemo(city, asn); err != nil {
		t.Fatal(err)
	}
	g := startBlock(t, scopeConfig(t, city, asn))
	cs1 := g.Snapshot().compiled
	if cs1.scopes.Load() == nil {
		t.Fatal("the partitions of a small database were not built before the swap")
	}
	cs2 := compile(g.cfg, cs1.res, g.st, nil, cs1)
	d1, d2 := cs1.Domain("www.gtm.example.net."), cs2.Domain("www.gtm.example.net.")
	_, cl := decision(g, d2, netip.MustParseAddr("24.48.0.0"), 24) // Canada: the default route
	if got, want := cs2.Scope(d2, &cl), d2.Scope(&cl); got != want || got != 16 {
		t.Fatalf("before the build: scope %d, want the database network's %d (16)", got, want)
	}

	old := g.scopeGen.Add(1)
	g.scopeGen.Add(1) // a newer swap
	g.runScopes(cs2, old)
	if cs2.scopes.Load() != nil {
		t.Fatal("an overtaken build published its partitions")
	}

	g.runScopes(cs2, g.scopeGen.Load())
	t2 := cs2.scopes.Load()
	if t2 == nil {
		t.Fatal("not built")
	}
	if (*t2)[d2] != (*cs1.scopes.Load())[d1] {
		t.Error("the same route set was partitioned again")
	}
	// Everything from 11.0.0.0 (after net:10.0.0.0/8) to 81.2.69.127 (before the EU route's
	// 81.2.69.0/25) takes the default route: the widest prefix of 24.48.0.0 inside is /4.
	if got := cs2.Scope(d2, &cl); got != 4 {
		t.Errorf("after the build: scope %d, want 4 (16.0.0.0/4)", got)
	}
	// An IPv4-mapped ECS subnet: 96 + the IPv4 scope, from the same partition.
	var mc policy.Client
	mapped := ClientOf(&mc, &geo.ClientSubnet{Addr: netip.MustParseAddr("::ffff:24.48.0.0"), SourceBits: 120}, netip.Addr{})
	Locate(g.cfg.Geo, g.cfg.ASN, d2, &mc)
	if got := cs2.Scope(d2, &mc) + mapped; got != 100 {
		t.Errorf("mapped: scope %d, want 100", got)
	}
	// No IPv6 range holds the IPv4-mapped clients, which route as IPv4: the IPv4 side of
	// nets.gtm is one range (its only net is IPv6), its IPv6 side is not /0 anywhere.
	dn := cs2.Domain("nets.gtm.example.net.")
	for addr, want := range map[string]int{"8000::": 1, "::1": 81, "2001:db8::1": 32, "192.0.2.1": 1} {
		_, c := decision(g, dn, netip.MustParseAddr(addr), netip.MustParseAddr(addr).BitLen())
		if got := cs2.Scope(dn, &c); got != want {
			t.Errorf("nets.gtm from %s: scope %d, want %d", addr, got, want)
		}
	}
}

// A background build publishes while queries read (run with -race).
func TestScopeBackgroundBuild(t *testing.T) {
	dir := t.TempDir()
	city, asn := filepath.Join(dir, "city.mmdb"), filepath.Join(dir, "asn.mmdb")
	if err := geotest.WriteDemo(city, asn); err != nil {
		t.Fatal(err)
	}
	g := startBlock(t, scopeConfig(t, city, asn))
	cs := compile(g.cfg, g.Snapshot().res, g.st, nil, nil)
	d := cs.Domain("www.gtm.example.net.")
	_, cl := decision(g, d, netip.MustParseAddr("24.48.0.0"), 24)
	go g.runScopes(cs, g.scopeGen.Add(1))
	seen := map[int]bool{}
	for deadline := time.Now().Add(10 * time.Second); cs.scopes.Load() == nil && time.Now().Before(deadline); {
		seen[cs.Scope(d, &cl)] = true
	}
	seen[cs.Scope(d, &cl)] = true
	for s := range seen {
		if s != 16 && s != 4 {
			t.Errorf("scope %d during the build: want 16 (before) or 4 (after)", s)
		}
	}
	if !seen[4] {
		t.Error("the build never published")
	}
}
