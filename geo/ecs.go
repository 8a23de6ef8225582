package geo

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/miekg/dns"
)

// ClientSubnet is a validated EDNS Client Subnet option (RFC 7871) from a query.
type ClientSubnet struct {
	Addr       netip.Addr // the address, all bits beyond SourceBits zero
	SourceBits int        // SOURCE PREFIX-LENGTH; 0: the client's location is unknown
	Family     uint16     // 1 IPv4, 2 IPv6; 0 only with source prefix 0, as dig sends it
}

// ErrECS is wrapped by every validation error: the query gets FORMERR (RFC 7871 7.1.1).
var ErrECS = errors.New("invalid client subnet option")

// ParseECS validates an option as miekg/dns decoded it from a query.
//
// miekg's decoder already fails the whole message (its server then answers FORMERR itself)
// for an unknown family, family 0 with a non-zero source prefix, and a SOURCE or SCOPE prefix
// beyond the family's length. It lets through everything checked here: a non-zero SCOPE in a
// query, address bits set beyond the source prefix, and (for options built in code rather
// than decoded) the same family and length errors. It cannot see the number of address octets
// on the wire (the decoder zero-pads too few and drops too many): CheckWireLength does.
func ParseECS(o *dns.EDNS0_SUBNET) (ClientSubnet, error) {
	s := ClientSubnet{Family: o.Family, SourceBits: int(o.SourceNetmask)}
	var full int
	switch o.Family {
	case 0:
		// dig +subnet=0 sends family 0, prefix 0: "do not use my address", nothing more.
		if o.SourceNetmask != 0 {
			return s, fmt.Errorf("%w: family 0 with source prefix %d", ErrECS, o.SourceNetmask)
		}
		s.Addr = netip.IPv4Unspecified()
		return s, scopeZero(o)
	case 1:
		full = 32
		ip4 := o.Address.To4()
		switch {
		case len(o.Address) == 0:
			ip4 = net.IPv4zero.To4()
		case ip4 == nil:
			return s, fmt.Errorf("%w: family 1 (IPv4) with the IPv6 address %s", ErrECS, o.Address)
		}
		s.Addr = netip.AddrFrom4([4]byte(ip4))
	case 2:
		full = 128
		ip6 := o.Address.To16()
		if len(o.Address) == 0 {
			ip6 = net.IPv6zero
		}
		if ip6 == nil {
			return s, fmt.Errorf("%w: family 2 (IPv6) with a %d-byte address", ErrECS, len(o.Address))
		}
		s.Addr = netip.AddrFrom16([16]byte(ip6))
	default:
		return s, fmt.Errorf("%w: unknown address family %d", ErrECS, o.Family)
	}
	if s.SourceBits > full {
		return s, fmt.Errorf("%w: source prefix %d beyond the family's %d bits", ErrECS, s.SourceBits, full)
	}
	if err := scopeZero(o); err != nil {
		return s, err
	}
	if p, _ := s.Addr.Prefix(s.SourceBits); p.Addr() != s.Addr {
		return s, fmt.Errorf("%w: address %s has bits set beyond source prefix %d", ErrECS, s.Addr, s.SourceBits)
	}
	return s, nil
}

// scopeZero enforces RFC 7871 6: SCOPE PREFIX-LENGTH MUST be 0 in queries.
func scopeZero(o *dns.EDNS0_SUBNET) error {
	if o.SourceScope != 0 {
		return fmt.Errorf("%w: scope prefix %d in a query (must be 0)", ErrECS, o.SourceScope)
	}
	return nil
}

// Echo builds the option for the response (RFC 7871 7.2.1): the query's family, source prefix
// and address, with SCOPE PREFIX-LENGTH set to scope, clamped to the family's length so the
// response always packs and the resolver's decoder accepts it.
func (s ClientSubnet) Echo(scope int) *dns.EDNS0_SUBNET {
	e := &dns.EDNS0_SUBNET{
		Code:          dns.EDNS0SUBNET,
		Family:        s.Family,
		SourceNetmask: uint8(s.SourceBits),
		Address:       s.Addr.AsSlice(),
	}
	full := 0 // family 0: nothing was known, so nothing can have depended on it
	switch s.Family {
	case 1:
		full = 32
	case 2:
		full = 128
	}
	e.SourceScope = uint8(max(0, min(scope, full)))
	return e
}

// optHeaderLen is the packed size of an OPT record's header: the root name, type, class,
// TTL and RDLENGTH.
const optHeaderLen = 11

// CheckWireLength reports an ECS option whose ADDRESS had more or fewer octets on the wire
// than its source prefix needs (RFC 7871 section 6: FORMERR). miekg's decoder zero-pads a
// short address and drops the octets of a long one, so the option alone cannot tell; the
// OPT record's RDLENGTH, kept from the wire, can: it is compared with what the other
// options pack to plus the length this option must have.
//
// An OPT built in code has RDLENGTH 0, and an option a plugin added before gtm (rewrite
// edns0 subnet) does not fit into the wire RDLENGTH; both are left alone. An option a plugin
// rewrote in place to a prefix of another length cannot be told from a wrong one.
func CheckWireLength(opt *dns.OPT, e *dns.EDNS0_SUBNET) error {
	if opt.Hdr.Rdlength == 0 || (e.Family == 1 && len(e.Address) == net.IPv4len) {
		// Not from the wire (the decoder stores IPv4 addresses in 16 bytes, rewrite in 4).
		return nil
	}
	others := 0
	if len(opt.Option) > 1 {
		rest := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		for _, o := range opt.Option {
			if o != dns.EDNS0(e) {
				rest.Option = append(rest.Option, o)
			}
		}
		buf := make([]byte, int(opt.Hdr.Rdlength)+optHeaderLen+64)
		n, err := dns.PackRR(rest, buf, 0, nil, false)
		if err != nil {
			return nil // another option does not pack: nothing can be concluded
		}
		others = n - optHeaderLen
	}
	// The option's code and length (4 octets), then family, source and scope (4 octets).
	onWire := int(opt.Hdr.Rdlength) - others - 8
	if onWire < 0 {
		return nil // added after decoding
	}
	if want := (int(e.SourceNetmask) + 7) / 8; onWire != want {
		return fmt.Errorf("%w: %d address octets for source prefix %d (want %d)", ErrECS, onWire, e.SourceNetmask, want)
	}
	return nil
}
