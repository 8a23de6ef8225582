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
