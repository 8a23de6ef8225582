package policy

import "github.com/miekg/dns"

// Services is what a domain answers beyond A and AAAA (`https`, `srv`): records whose
// addresses come from the same decision as the domain's A/AAAA answer. The plugin builds
// them; the query path only reads them.
type Services struct {
	HTTPS *HTTPS // nil: HTTPS queries get NODATA
	SRV   []SRV  // SRV RRsets at _SERVICE._PROTO under the domain, in the order written
}

// HTTPS is the fixed part of a domain's HTTPS record (ServiceMode, target ".").
type HTTPS struct {
	Priority uint16
	// Params are the SvcParams every client gets (alpn, port), in key order. They are
	// shared by every answer and never written after compile; the hints are added per answer.
	Params []dns.SVCBKeyValue
	Hints  bool // ipv4hint/ipv6hint: the addresses the client's A/AAAA queries get
	// Wire is the record's RDATA up to the hints, packed once at compile time by miekg/dns:
	// priority, target "." and Params. The hints' keys (4, 6) follow every fixed key, so an
	// answer's RDATA is Wire with its hints appended (plugin/https_wire.go) and no answer
	// packs the fixed part again.
	Wire []byte
}

// NewHTTPS is the query path's form of an `https` setting: priority, the params every
// client gets in key order (alpn, port), and whether answers carry hints.
func NewHTTPS(priority uint16, params []dns.SVCBKeyValue, hints bool) *HTTPS {
	h := &HTTPS{Priority: priority, Params: params, Hints: hints}
	h.Wire = h.packFixed()
	return h
}

// packFixed is the RDATA of h's record without hints, as miekg/dns packs it; nil if it does
// not pack (config.Validate admits only alpn IDs of 1 to 255 bytes and a port, which do),
// and the plugin then builds the record from Params.
func (h *HTTPS) packFixed() []byte {
	rr := &dns.HTTPS{SVCB: dns.SVCB{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeHTTPS, Class: dns.ClassINET}, Priority: h.Priority, Target: ".", Value: h.Params}}
	buf := make([]byte, dns.Len(rr))
	off, err := dns.PackRR(rr, buf, 0, nil, false)
	if err != nil {
		return nil
	}
	const header = 1 + 10 // owner "." (one byte), type, class, TTL, RDLENGTH
	return buf[header:off:off]
}

// SRV is one `srv _SERVICE._PROTO PORT [PRIORITY]`.
type SRV struct {
	Service  string // "_sip._udp", lower case
	Port     uint16
	Priority uint16
}

// SRVFor returns the srv settings of service ("_sip._udp") in the order written (one RRset
// may list several ports), or nil.
func (s *Services) SRVFor(service string) []SRV {
	if s == nil {
		return nil
	}
	for i, v := range s.SRV {
		if v.Service != service {
			continue
		}
		j := i + 1
		for j < len(s.SRV) && s.SRV[j].Service == service {
			j++
		}
		return s.SRV[i:j]
	}
	return nil
}

// HasProto reports whether some srv of the domain uses protocol label proto ("_udp"): the
// name _PROTO.DOMAIN then exists as an empty non-terminal.
func (s *Services) HasProto(proto string) bool {
	if s == nil {
		return false
	}
	for _, v := range s.SRV {
		if len(v.Service) > len(proto) && v.Service[len(v.Service)-len(proto):] == proto && v.Service[len(v.Service)-len(proto)-1] == '.' {
			return true
		}
	}
	return false
}

// HasSRV reports whether some domain of the snapshot has `srv`: only then does the query
// path look for SRV names and their targets.
func (s *Snapshot) HasSRV() bool { return s.srv }
