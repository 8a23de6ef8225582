package control

import (
	"testing"

	"github.com/gtm-dns/coredns-gtm/config"
)

// The serial without cluster: the same resources in any order are the same serial, another
// resource or another zone setting another one.
func TestConfigSerial(t *testing.T) {
	pool := func(name, addr string) *config.Pool {
		p := config.NewPool(name)
		p.Addresses = []config.Address{config.NewAddress(addr)}
		return p
	}
	b := Config{Zones: []string{"gtm.test."}, TTL: 30}
	a := configSerial(b, &config.Config{Pools: []*config.Pool{pool("a", "192.0.2.1"), pool("b", "192.0.2.2")}})
	if again := configSerial(b, &config.Config{Pools: []*config.Pool{pool("b", "192.0.2.2"), pool("a", "192.0.2.1")}}); again != a {
		t.Errorf("same resources in another order: %d, then %d", a, again)
	}
	if other := configSerial(b, &config.Config{Pools: []*config.Pool{pool("a", "192.0.2.1"), pool("b", "192.0.2.3")}}); other == a {
		t.Errorf("another address, the same serial %d", a)
	}
	b2 := Config{Zones: []string{"gtm.test."}, TTL: 60}
	if other := configSerial(b2, &config.Config{Pools: []*config.Pool{pool("a", "192.0.2.1"), pool("b", "192.0.2.2")}}); other == a {
		t.Errorf("another ttl, the same serial %d", a)
	}
}

// The same serial from the hashes of the snapshot replaced as from scratch.
func TestConfigSerialReusesHashes(t *testing.T) {
	b := Config{Zones: []string{"gtm.test."}, TTL: 30}
	p1, p2 := config.NewPool("a"), config.NewPool("b")
	p1.Addresses = []config.Address{config.NewAddress("192.0.2.1")}
	p2.Addresses = []config.Address{config.NewAddress("192.0.2.2")}
	prev := map[config.Resource]uint64{}
	first := configSerialFrom(b, &config.Config{Pools: []*config.Pool{p1, p2}}, nil, prev)
	p3 := config.NewPool("b")
	p3.Addresses = []config.Address{config.NewAddress("192.0.2.3")}
	res := &config.Config{Pools: []*config.Pool{p1, p3}}
	next := map[config.Resource]uint64{}
	if got, want := configSerialFrom(b, res, prev, next), configSerial(b, res); got != want || got == first {
		t.Errorf("serial from prev %d, from scratch %d, before the write %d", got, want, first)
	}
	if len(next) != 2 {
		t.Errorf("next holds %d hashes, want 2", len(next))
	}
}
