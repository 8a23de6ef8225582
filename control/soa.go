package control

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
// and as the authority record of negative answers. A fleet's Snapshot has its own (the
// serial is its revision); a single node's share the compiled configuration's.
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

// SOA is zone's SOA as answered at the apex (shared: copy before changing it).
func (s *Snapshot) SOA(zone string) dns.RR {
	if s.soa != nil {
		if rr, ok := s.soa.pos[zone]; ok {
			return rr
		}
	}
	return s.soas[zone]
}

// NegSOA is zone's SOA for the authority section of a negative answer (RFC 2308 TTL).
func (s *Snapshot) NegSOA(zone string) dns.RR {
	if s.soa != nil {
		if rr, ok := s.soa.neg[zone]; ok {
			return rr
		}
	}
	return s.soas[zone]
}

// configSerial is the serial of a block without `cluster`: a hash of its zone settings and
// of every resource, independent of the order resources come in (a fleet's nodes merge the
// same resources, the hash must not depend on how).
func configSerial(b Config, res *config.Config) uint32 { return configSerialFrom(b, res, nil, nil) }

// configSerialFrom is configSerial taking each resource's hash from prev (the snapshot being
// replaced) when there, and recording every hash in next (when not nil). Resources are never
// changed after decoding, so an API write hashes the resources it wrote rather than all
// (JSON-encoding 10,000 domains and 2,000 pools takes about 100 ms; with prev, 2 ms).
func configSerialFrom(b Config, res *config.Config, prev, next map[config.Resource]uint64) uint32 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%q %d", b.Zones, b.TTL)
	for _, n := range b.NS {
		fmt.Fprintf(h, " ns %s %v", n.Name, n.Addrs)
	}
	if b.SOA != nil {
		fmt.Fprintf(h, " soa %s %s %d %v", b.SOA.MName, b.SOA.RName, b.SOA.Minimum, b.SOA.HasMinimum)
	}
	sum := h.Sum64()
	add := func(r config.Resource, name string) {
		v, ok := prev[r]
		if !ok {
			v = resourceHash(r, name)
		}
		if next != nil {
			next[r] = v
		}
		sum += v
	}
	if res != nil {
		for _, r := range res.HealthChecks {
			add(r, r.Name)
		}
		for _, r := range res.Pools {
			add(r, r.Name)
		}
		for _, r := range res.Domains {
			add(r, r.Name)
		}
	}
	return uint32(sum>>32) ^ uint32(sum)
}

// resourceHashes is what the serial of cs (the snapshot being replaced) was hashed from.
func (cs *compiled) resourceHashes() map[config.Resource]uint64 {
	if cs == nil {
		return nil
	}
	return cs.resHashes
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
