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
// on the wire: it zero-pads too few and drops too many, so those are not detected.
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
