package gtm

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"

	"github.com/miekg/dns"

	"github.com/gtm-dns/coredns-gtm/config"
)

// The zones' SOA records. Two things about them follow from the configuration in force and
// nothing else, so that every node of a fleet serving the same state answers the same SOA:
//
//   - the serial: with `cluster`, the state revision in force (it rises with every write, and
//     every node that applied revision N answers serial N); without, a hash of the block's
//     zone settings and of every resource (the same configuration is the same serial, across
//     restarts too).
//   - the negative TTL (RFC 2308 section 5): a negative answer carries the SOA with the TTL
//     min(SOA TTL, MINIMUM). The SOA's own TTL is the block's `ttl`, raised to `soa`'s
//     MINIMUM when that is larger, so MINIMUM is the negative TTL whichever way it differs.

// soaSet is the SOA records of a snapshot's zones at one serial: as answered at the apex,
// and as the authority record of negative answers. Swapped whole (an atomic pointer) when
// the serial changes without a new compile (a write of modes or pins in a fleet).
type soaSet struct {
	pos map[string]*dns.SOA
	neg map[string]*dns.SOA
}

// newSOASet stamps the compile's SOA templates with serial.
func newSOASet(tmpl map[string]*dns.SOA, serial uint32) *soaSet {
	s := &soaSet{pos: make(map[string]*dns.SOA, len(tmpl)), neg: make(map[string]*dns.SOA, len(tmpl))}
	for z, t := range tmpl {
		pos := *t
		pos.Serial = serial
		neg := pos
		neg.Hdr.Ttl = min(pos.Hdr.Ttl, pos.Minttl)
		s.pos[z], s.neg[z] = &pos, &neg
	}
	return s
}

// soaTTL is the TTL of a zone's own SOA record: the block's ttl, or MINIMUM when larger (so
// that the negative TTL, min(SOA TTL, MINIMUM), is MINIMUM).
func soaTTL(ttl, minimum uint32) uint32 { return max(ttl, minimum) }

// soa is zone's SOA as answered at the apex.
func (cs *compiled) soa(zone string) dns.RR {
	if s := cs.soaSet.Load(); s != nil {
		if rr, ok := s.pos[zone]; ok {
			return rr
		}
	}
	return cs.soas[zone]
}

// negSOA is zone's SOA for the authority section of a negative answer (RFC 2308 TTL).
func (cs *compiled) negSOA(zone string) dns.RR {
	if s := cs.soaSet.Load(); s != nil {
		if rr, ok := s.neg[zone]; ok {
			return rr
		}
	}
	return cs.soas[zone]
}

// setRevision records the state revision now in force; with `cluster` it is the serial,
// so the SOA records are stamped again when it changes.
func (cs *compiled) setRevision(rev int64) {
	cs.revision.Store(rev)
	if !cs.serialIsRevision {
		return
	}
	if s := cs.soaSet.Load(); s != nil {
		for _, rr := range s.pos {
			if rr.Serial == uint32(rev) {
				return
			}
			break
		}
	}
	cs.soaSet.Store(newSOASet(cs.soas, uint32(rev)))
}

// configSerial is the serial of a block without `cluster`: a hash of its zone settings and
// of every resource, independent of the order resources come in (a fleet's nodes merge the
// same resources, the hash must not depend on how).
func configSerial(b *block, res *config.Config) uint32 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%q %d", b.zones, b.ttl)
	for _, n := range b.ns {
		fmt.Fprintf(h, " ns %s %v", n.name, n.addrs)
	}
	if b.soa != nil {
		fmt.Fprintf(h, " soa %s %s %d %v", b.soa.mname, b.soa.rname, b.soa.minimum, b.soa.hasMinimum)
	}
	sum := h.Sum64()
	if res != nil {
		for _, r := range res.HealthChecks {
			sum += resourceHash(r, r.Name)
		}
		for _, r := range res.Pools {
			sum += resourceHash(r, r.Name)
		}
		for _, r := range res.Domains {
			sum += resourceHash(r, r.Name)
		}
	}
	return uint32(sum>>32) ^ uint32(sum)
}

// resourceHash is a hash of one resource: its kind, name and JSON form.
func resourceHash(r config.Resource, name string) uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s/%s=", r.Kind(), name)
	if body, err := config.Encode(r); err == nil {
		h.Write(body)
	}
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], h.Sum64())
	// Mix once more: sums of raw FNV values of similar inputs cancel too easily.
	h2 := fnv.New64a()
	h2.Write(b[:])
	return h2.Sum64()
}

// cappedSOA is soa (a negative answer's) with its TTL lowered to ttl: a copy, since the
// snapshot's records are shared by every reply.
func cappedSOA(soa dns.RR, ttl uint32) dns.RR {
	if soa == nil || soa.Header().Ttl <= ttl {
		return soa
	}
	c := dns.Copy(soa)
	c.Header().Ttl = ttl
	return c
}

// negativeTTL is what RFC 2308 makes of a SOA for a negative answer: a copy with the TTL
// min(TTL, MINIMUM) when that is lower, else soa itself.
func negativeTTL(soa dns.RR) dns.RR {
	if s, ok := soa.(*dns.SOA); ok {
		return cappedSOA(soa, s.Minttl)
	}
	return soa
}
