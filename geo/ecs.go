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
	Addr       netip.Addr // masked to SourceBits
	SourceBits int        // 0: the client's location is unknown
	Family     uint16     // 1 IPv4, 2 IPv6 (0 only with source prefix 0, as dig sends it)
}

// ErrECS is wrapped by every validation error: the query gets FORMERR (RFC 7871 7.1.1).
var ErrECS = errors.New("invalid client subnet option")

// ParseECS validates what miekg/dns's decoder lets through: the family, the source prefix
// against the family's length, a zero SCOPE in a query, and no address bits set beyond the
// source prefix.
func ParseECS(o *dns.EDNS0_SUBNET) (ClientSubnet, error) {
	var s ClientSubnet
	s.Family, s.SourceBits = o.Family, int(o.SourceNetmask)
	var full int
	switch o.Family {
	case 0:
		if o.SourceNetmask != 0 {
			return s, fmt.Errorf("%w: family 0 with source prefix %d", ErrECS, o.SourceNetmask)
		}
		s.Addr = netip.IPv4Unspecified()
		return s, scopeOK(o)
	case 1:
		full = 32
		ip4 := o.Address.To4()
		if ip4 == nil && len(o.Address) != 0 {
			return s, fmt.Errorf("%w: family 1 with a non-IPv4 address", ErrECS)
		}
		if ip4 == nil {
			ip4 = net.IPv4zero.To4()
		}
		s.Addr = netip.AddrFrom4([4]byte(ip4))
	case 2:
		full = 128
		ip6 := o.Address.To16()
		if ip6 == nil {
			ip6 = net.IPv6zero
		}
		s.Addr = netip.AddrFrom16([16]byte(ip6))
	default:
		return s, fmt.Errorf("%w: unknown family %d", ErrECS, o.Family)
	}
	if s.SourceBits > full {
		return s, fmt.Errorf("%w: source prefix %d beyond %d bits", ErrECS, s.SourceBits, full)
	}
	if err := scopeOK(o); err != nil {
		return s, err
	}
	p, _ := s.Addr.Prefix(s.SourceBits)
	if p.Addr() != s.Addr {
		return s, fmt.Errorf("%w: address %s has bits set beyond source prefix %d", ErrECS, s.Addr, s.SourceBits)
	}
	return s, nil
}

func scopeOK(o *dns.EDNS0_SUBNET) error {
	if o.SourceScope != 0 {
		return fmt.Errorf("%w: non-zero scope prefix %d in a query", ErrECS, o.SourceScope)
	}
	return nil
}

// Echo builds the option for the response: the query's family, source prefix and address,
// with SCOPE PREFIX-LENGTH set to scope.
func (s ClientSubnet) Echo(scope int) *dns.EDNS0_SUBNET {
	e := &dns.EDNS0_SUBNET{
		Code:          dns.EDNS0SUBNET,
		Family:        s.Family,
		SourceNetmask: uint8(s.SourceBits),
		SourceScope:   uint8(scope),
		Address:       s.Addr.AsSlice(),
	}
	if s.Family == 0 {
		e.SourceScope = 0 // dig's "family 0, prefix 0": nothing is known, nothing depended on it
	}
	return e
}
