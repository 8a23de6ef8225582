package gtm

import (
	"errors"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/gtm-dns/coredns-gtm/policy"
)

// The HTTPS answer's RDATA, packed by gtm. miekg/dns packs an SVCB record's params with six
// allocations per reply (it clones and sorts them with sort.Slice, and packs every value
// into a new slice), more than the whole A answer costs. The params every client gets
// (priority, target ".", alpn, port) are packed once per snapshot by miekg/dns itself
// (policy.HTTPS.Wire); an answer appends its hints (keys 4 and 6, which follow every fixed
// key, so the order miekg/dns sorts into is kept) into a buffer that comes in the answer's
// one allocation. The record is a dns.PrivateRR of type HTTPS whose rdata copies those
// bytes: miekg/dns's extension point for RDATA a program packs itself. Its wire form,
// presentation (String), length and copy are those of the dns.HTTPS record miekg/dns would
// build (TestHTTPSWireMatchesMiekg compares them for random records), so the server's
// scrub, DNSSEC signing (RRSIG.Sign copies and packs it) and every plugin that copies or
// packs the reply see the same record; only a plugin that type-asserts *dns.HTTPS in the
// reply would not recognise it (none of CoreDNS's does: it only packs, copies, truncates).

// httpsRdata is an HTTPS answer's RDATA on the wire.
type httpsRdata struct {
	b []byte
}

// String is the RDATA's presentation, as dns.HTTPS prints it (for logs and the signature
// cache's key): unpacked by miekg/dns, which is what a client reads.
func (r *httpsRdata) String() string {
	rr, err := r.record(dns.RR_Header{Rrtype: dns.TypeHTTPS, Class: dns.ClassINET})
	if err != nil {
		return ";" + err.Error()
	}
	return strings.TrimPrefix(rr.String(), rr.Hdr.String())
}

// record is the dns.HTTPS record with header h that this RDATA packs the same as.
func (r *httpsRdata) record(h dns.RR_Header) (*dns.HTTPS, error) {
	h.Rdlength = uint16(len(r.b))
	rr, _, err := dns.UnpackRRWithHeader(h, r.b, 0)
	if err != nil {
		return nil, err
	}
	return rr.(*dns.HTTPS), nil
}

var errNotParsed = errors.New("gtm's HTTPS answer RDATA is only packed: its type is not registered with miekg/dns")

// Parse is never called: the type is not registered (httpsTemplate), so no zone file or
// message parses into it.
func (r *httpsRdata) Parse([]string) error { return errNotParsed }

// Unpack is never called, as Parse.
func (r *httpsRdata) Unpack([]byte) (int, error) { return 0, errNotParsed }

// Pack copies the RDATA into buf.
func (r *httpsRdata) Pack(buf []byte) (int, error) {
	if len(buf) < len(r.b) {
		return 0, dns.ErrBuf
	}
	return copy(buf, r.b), nil
}

// Copy copies the RDATA into dest (dns.Copy, RRSIG.Sign): bytes of its own.
func (r *httpsRdata) Copy(dest dns.PrivateRdata) error {
	d, ok := dest.(*httpsRdata)
	if !ok {
		return dns.ErrRdata
	}
	d.b = slices.Clone(r.b)
	return nil
}

// Len is the RDATA's length in octets.
func (r *httpsRdata) Len() int { return len(r.b) }

// httpsTemplate is a PrivateRR whose (unexported) generator makes httpsRdata, so that
// dns.Copy of an answer record works. miekg/dns sets the generator only through
// PrivateHandle: the template is made under a free private-use type code that is
// unregistered again at once, during package initialisation, so no type stays registered
// (answers carry type HTTPS in their header; HTTPS messages still parse as dns.HTTPS).
var httpsTemplate = privateTemplate("GTM-HTTPS-RDATA", func() dns.PrivateRdata { return new(httpsRdata) })

func privateTemplate(name string, gen func() dns.PrivateRdata) dns.PrivateRR {
	for code := uint16(65534); code >= 65280; code-- { // RFC 6895: private use
		_, t := dns.TypeToRR[code]
		_, s := dns.TypeToString[code]
		_, n := dns.StringToType[name]
		if t || s || n {
			continue
		}
		dns.PrivateHandle(name, code, gen)
		rr := dns.TypeToRR[code]().(*dns.PrivateRR)
		dns.PrivateHandleRemove(code)
		return *rr
	}
	panic("gtm: no free private-use RR type code")
}

// oneHTTPS is an HTTPS answer in one allocation: the record, its RDATA with room for the
// hints of a few addresses, and the Answer slice holding it (when it is the answer's only
// record), as reply.go's oneA.
type oneHTTPS struct {
	rr   dns.PrivateRR
	data httpsRdata
	wire [96]byte // fixed part ~20 bytes, ipv4hint 4+4n, ipv6hint 4+16n
	ans  [1]dns.RR
}

// appendHTTPS appends the HTTPS record of one answer to answer, its hints the addresses of
// the two decisions. The record is the answer's own: nothing in it is shared.
func appendHTTPS(answer []dns.RR, h *policy.HTTPS, name string, ttl uint32, v4, v6 []*policy.Address) []dns.RR {
	o := new(oneHTTPS)
	b, ok := httpsRDATA(o.wire[:0], h, v4, v6)
	if !ok { // not what this packer handles: miekg/dns's record (which fails as it would)
		return append(answer, httpsRecord(h, name, ttl, raws(v4), raws(v6)))
	}
	o.data.b = b
	o.rr = httpsTemplate
	o.rr.Hdr = hdr(name, dns.TypeHTTPS, ttl)
	o.rr.Data = &o.data
	if len(answer) == 0 {
		o.ans[0] = &o.rr
		return o.ans[:]
	}
	return append(answer, &o.rr)
}

// httpsRDATA appends to b the RDATA of h's record with hints v4 and v6 (when h has hints),
// byte for byte what miekg/dns packs for the record httpsRecord builds. ok is false when h
// has no packed fixed part, or a hint is one miekg/dns refuses to pack (an IPv4-mapped
// address as ipv6hint) or a hint list overflows its length field.
func httpsRDATA(b []byte, h *policy.HTTPS, v4, v6 []*policy.Address) (_ []byte, ok bool) {
	if h.Wire == nil {
		return nil, false
	}
	b = append(b, h.Wire...)
	if !h.Hints {
		return b, true
	}
	if len(v4) > 0 {
		n := 4 * len(v4)
		if n > 0xffff {
			return nil, false
		}
		b = append(b, 0, byte(dns.SVCB_IPV4HINT), byte(n>>8), byte(n))
		for _, a := range v4 {
			x := a.Raw.To4()
			if x == nil {
				return nil, false
			}
			b = append(b, x...)
		}
	}
	if len(v6) > 0 {
		n := 16 * len(v6)
		if n > 0xffff {
			return nil, false
		}
		b = append(b, 0, byte(dns.SVCB_IPV6HINT), byte(n>>8), byte(n))
		for _, a := range v6 {
			if len(a.Raw) != 16 || a.Raw.To4() != nil {
				return nil, false
			}
			b = append(b, a.Raw...)
		}
	}
	return b, true
}
