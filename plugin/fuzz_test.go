package gtm

import (
	"context"
	"net"
	"testing"

	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
)

// FuzzServeDNS feeds arbitrary wire messages (ECS option bytes included) through the handler
// of a geo configuration. Whatever arrives, it must not panic, and what it writes must pack.
func FuzzServeDNS(f *testing.F) {
	city, asn := geoDBs(f)
	g := newTestGTM(f, geoBlock(city, asn))
	for _, q := range []*dns.Msg{
		ecsQuery("www.gtm.example.net.", 1, 24, "81.2.69.0", 0),
		ecsQuery("www.gtm.example.net.", 2, 48, "2001:db8:100::", 0),
		ecsQuery("flat.gtm.example.net.", 1, 0, "0.0.0.0", 0),
		new(dns.Msg).SetQuestion("gtm.example.net.", dns.TypeSOA),
		new(dns.Msg).SetQuestion("nope.gtm.example.net.", dns.TypeAAAA),
		new(dns.Msg).SetQuestion("example.org.", dns.TypeA),
	} {
		b, err := q.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, wire []byte) {
		r := new(dns.Msg)
		if r.Unpack(wire) != nil {
			return // the server answers FORMERR before any plugin runs
		}
		w := &packWriter{}
		g.ServeDNS(ctx, w, r)
	})
}

// packWriter packs what it is given, as the real server does, so an unpackable answer fails.
type packWriter struct {
	test.ResponseWriter
}

var benchAddr = &net.UDPAddr{IP: net.IPv4(10, 240, 0, 1), Port: 40212}

func (w *packWriter) RemoteAddr() net.Addr { return benchAddr }

func (w *packWriter) WriteMsg(m *dns.Msg) error {
	if _, err := m.Pack(); err != nil {
		panic("handler wrote an unpackable message: " + err.Error())
	}
	return nil
}
