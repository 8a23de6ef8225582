package gtm

import (
	"crypto"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/coredns/coredns/plugin/dnssec" // registers coredns_dnssec_cache_*, which sigCache* reuse
	"github.com/coredns/coredns/plugin/pkg/cache"
	"github.com/coredns/coredns/plugin/pkg/response"
	"github.com/coredns/coredns/plugin/pkg/singleflight"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// The signing itself: what CoreDNS's dnssec plugin does (RRSIGs valid from 3 hours ago for
// 8 days, a signature cache re-signing at 6 days, NSEC black lies), with one difference that
// matters to validators: an RRSIG's original TTL is the TTL of the RRset it covers (RFC 4034
// section 3.1.4). The dnssec plugin writes 3600 whatever the TTL, so an RRset with a longer
// TTL is capped at 3600 by validators (and flagged ORIGINAL_TTL_EXCEEDED by dnsviz).

// zoneKey is one key pair of a zone: its DNSKEY record and private key.
type zoneKey struct {
	K   *dns.DNSKEY
	s   crypto.Signer
	tag uint16
}

// parseKeyFiles reads a dnssec-keygen key pair (.key and .private).
func parseKeyFiles(pubFile, privFile string) (*zoneKey, error) {
	f, err := os.Open(filepath.Clean(pubFile))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rr, err := dns.ReadRR(f, pubFile)
	if err != nil {
		return nil, err
	}
	k, ok := rr.(*dns.DNSKEY)
	if !ok {
		return nil, errors.New("no public key found")
	}
	pf, err := os.Open(filepath.Clean(privFile))
	if err != nil {
		return nil, err
	}
	defer pf.Close()
	p, err := k.ReadPrivateKey(pf, privFile)
	if err != nil {
		return nil, err
	}
	s, ok := p.(crypto.Signer)
	if !ok {
		return nil, errors.New("no private key found")
	}
	return &zoneKey{K: k, s: s, tag: k.KeyTag()}, nil
}

func (k *zoneKey) isKSK() bool { return k.K.Flags&dns.SEP != 0 }

// Validity of signatures and when a cached one is made again, as in the dnssec plugin.
const (
	sigValidity = 8 * 24 * time.Hour
	sigRenew    = 2 * 24 * time.Hour // re-sign a cached signature with less validity left
	sigBackdate = 3 * time.Hour
)

// The dnssec plugin's signature cache metrics: the same series (the plugin registers them).
var (
	sigCacheHits = sharedCounterVec(prometheus.CounterOpts{
		Namespace: "coredns", Subsystem: "dnssec", Name: "cache_hits_total", Help: "The count of cache hits.",
	}, "server")
	sigCacheMisses = sharedCounterVec(prometheus.CounterOpts{
		Namespace: "coredns", Subsystem: "dnssec", Name: "cache_misses_total", Help: "The count of cache misses.",
	}, "server")
)

// sharedCounterVec registers a counter vector, or returns the one registered already under
// the same name (by the dnssec plugin, so both count in one series).
func sharedCounterVec(opts prometheus.CounterOpts, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(opts, labels)
	if err := prometheus.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return existing
			}
		}
	}
	return c
}

// keySet is the signing state of one zone: its keys, whether a KSK/ZSK split applies, the
// signature cache (shared by the block's zones) and the in-flight signings.
type keySet struct {
	zone     string
	keys     []*zoneKey
	split    bool
	cache    *cache.Cache[[]dns.RR]
	inflight *singleflight.Group
}

// signMsg signs req, an answer in the zone, as the dnssec plugin's Sign does: denials
// (NXDOMAIN, NODATA) get the SOA's RRSIG and an NSEC black lie (and NOERROR), delegations
// their DS or NSEC, every other RRset of the zone in any section its RRSIG.
func (ks *keySet) signMsg(req *dns.Msg, now time.Time, server string) {
	if len(req.Question) == 0 {
		return
	}
	incep := uint32(now.Add(-sigBackdate).Unix())
	expir := uint32(now.Add(sigValidity).Unix())
	mt, _ := response.Typify(req, now)
	switch mt {
	case response.Delegation:
		if len(req.Ns) == 0 {
			return
		}
		ttl := req.Ns[0].Header().Ttl
		var ds []dns.RR
		for _, rr := range req.Ns {
			if rr.Header().Rrtype == dns.TypeDS {
				ds = append(ds, rr)
			}
		}
		if len(ds) == 0 {
			if sigs, err := ks.nsec(req, mt, ttl, incep, expir, server); err == nil {
				req.Ns = append(req.Ns, sigs...)
			}
		} else if sigs, err := ks.sign(ds, incep, expir, server); err == nil {
			req.Ns = append(req.Ns, sigs...)
		}
		return
	case response.NameError, response.NoData:
		if len(req.Ns) != 1 || req.Ns[0].Header().Rrtype != dns.TypeSOA {
			return
		}
		ttl := req.Ns[0].Header().Ttl
		if sigs, err := ks.sign(req.Ns, incep, expir, server); err == nil {
			req.Ns = append(req.Ns, sigs...)
		}
		if sigs, err := ks.nsec(req, mt, ttl, incep, expir, server); err == nil {
			req.Ns = append(req.Ns, sigs...)
		}
		if len(req.Ns) > 1 { // signed: the black lie makes it NODATA
			req.Rcode = dns.RcodeSuccess
			if req.Question[0].Qtype == dns.TypeNSEC {
				req.Answer = req.Ns[len(req.Ns)-2:]
				req.Ns = nil
			}
		}
		return
	}
	req.Answer = ks.signSection(req.Answer, incep, expir, server)
	req.Ns = ks.signSection(req.Ns, incep, expir, server)
	req.Extra = ks.signSection(req.Extra, incep, expir, server)
}

// signSection appends the RRSIGs of rrs' RRsets inside the zone (in the order they come).
func (ks *keySet) signSection(rrs []dns.RR, incep, expir uint32, server string) []dns.RR {
	type set struct {
		name string
		t    uint16
	}
	var order []set
	var sets map[set][]dns.RR
	for _, rr := range rrs {
		h := rr.Header()
		if h.Rrtype == dns.TypeRRSIG || h.Rrtype == dns.TypeOPT || !dns.IsSubDomain(ks.zone, dns.CanonicalName(h.Name)) {
			continue
		}
		if sets == nil {
			sets = map[set][]dns.RR{}
		}
		k := set{dns.CanonicalName(h.Name), h.Rrtype}
		if _, ok := sets[k]; !ok {
			order = append(order, k)
		}
		sets[k] = append(sets[k], rr)
	}
	for _, k := range order {
		if sigs, err := ks.sign(sets[k], incep, expir, server); err == nil {
			rrs = append(rrs, sigs...)
		}
	}
	return rrs
}

// sign returns the RRSIGs of rrs, one RRset, from the cache or made now. The RRSIG's TTL
// and original TTL are the RRset's TTL.
func (ks *keySet) sign(rrs []dns.RR, incep, expir uint32, server string) ([]dns.RR, error) {
	key := rrsetHash(rrs)
	if sigs, ok := ks.cache.Get(key); ok {
		fresh := true
		renew := time.Now().UTC().Add(sigRenew)
		for _, rr := range sigs {
			fresh = fresh && rr.(*dns.RRSIG).ValidityPeriod(renew)
		}
		if fresh {
			sigCacheHits.WithLabelValues(server).Inc()
			return sigs, nil
		}
	}
	sigCacheMisses.WithLabelValues(server).Inc()
	v, err := ks.inflight.Do(key, func() (any, error) {
		ttl := rrs[0].Header().Ttl
		dnskey := rrs[0].Header().Rrtype == dns.TypeDNSKEY
		var sigs []dns.RR
		for _, k := range ks.keys {
			if ks.split && k.isKSK() != dnskey {
				continue // with a KSK and a ZSK: the KSK signs DNSKEY, the ZSK the rest
			}
			sig := &dns.RRSIG{
				Hdr:       dns.RR_Header{Rrtype: dns.TypeRRSIG, Ttl: ttl},
				Algorithm: k.K.Algorithm, KeyTag: k.tag, SignerName: ks.zone,
				OrigTtl: ttl, Inception: incep, Expiration: expir,
			}
			if err := sig.Sign(k.s, rrs); err != nil {
				return nil, fmt.Errorf("signing %s/%s with key %d: %w", rrs[0].Header().Name, dns.TypeToString[rrs[0].Header().Rrtype], k.tag, err)
			}
			sigs = append(sigs, sig)
		}
		if len(sigs) > 0 {
			ks.cache.Add(key, sigs)
		}
		return sigs, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]dns.RR), nil
}

// rrsetHash is the signature cache key of an RRset: its text, TTLs included (a TTL is part
// of what is signed, as the original TTL).
func rrsetHash(rrs []dns.RR) uint64 {
	h := fnv.New64()
	for _, rr := range rrs {
		io.WriteString(h, rr.String())
	}
	return h.Sum64()
}

// nsec is the black lie of the dnssec plugin: an NSEC at the query name whose next name is
// \000.name, its type bit map without the asked type, and its RRSIG.
func (ks *keySet) nsec(req *dns.Msg, mt response.Type, ttl, incep, expir uint32, server string) ([]dns.RR, error) {
	q := req.Question[0]
	qname := dns.CanonicalName(q.Name)
	n := &dns.NSEC{Hdr: dns.RR_Header{Name: q.Name, Ttl: ttl, Class: dns.ClassINET, Rrtype: dns.TypeNSEC}}
	n.NextDomain = `\000.` + q.Name
	if q.Name == "." {
		n.NextDomain = `\000.`
	}
	switch {
	case qname == ks.zone:
		n.TypeBitMap = withoutType(apexTypes, q.Qtype, mt)
	case mt == response.Delegation || q.Qtype == dns.TypeDS:
		n.TypeBitMap = delegationTypes
		if mt == response.Delegation {
			labels := dns.SplitDomainName(q.Name)
			labels[0] += `\000`
			n.NextDomain = strings.Join(labels, ".") + "."
		}
	default:
		n.TypeBitMap = withoutType(nameTypes, q.Qtype, mt)
	}
	sigs, err := ks.sign([]dns.RR{n}, incep, expir, server)
	if err != nil {
		return nil, err
	}
	return append(sigs, n), nil
}

// The NSEC type bit maps of the dnssec plugin's black lies.
var (
	delegationTypes = []uint16{dns.TypeA, dns.TypeNS, dns.TypeHINFO, dns.TypeTXT, dns.TypeAAAA, dns.TypeLOC, dns.TypeSRV, dns.TypeCERT, dns.TypeSSHFP, dns.TypeRRSIG, dns.TypeNSEC, dns.TypeTLSA, dns.TypeHIP, dns.TypeOPENPGPKEY, dns.TypeSPF}
	nameTypes       = []uint16{dns.TypeA, dns.TypeHINFO, dns.TypeTXT, dns.TypeAAAA, dns.TypeLOC, dns.TypeSRV, dns.TypeCERT, dns.TypeSSHFP, dns.TypeRRSIG, dns.TypeNSEC, dns.TypeTLSA, dns.TypeHIP, dns.TypeOPENPGPKEY, dns.TypeSPF}
	apexTypes       = []uint16{dns.TypeA, dns.TypeNS, dns.TypeSOA, dns.TypeHINFO, dns.TypeMX, dns.TypeTXT, dns.TypeAAAA, dns.TypeLOC, dns.TypeSRV, dns.TypeCERT, dns.TypeSSHFP, dns.TypeRRSIG, dns.TypeNSEC, dns.TypeDNSKEY, dns.TypeTLSA, dns.TypeHIP, dns.TypeOPENPGPKEY, dns.TypeSPF}
)

// withoutType is bitmap without t for a denial (a new slice), else bitmap.
func withoutType(bitmap []uint16, t uint16, mt response.Type) []uint16 {
	if mt != response.NoData && mt != response.NameError || t == dns.TypeNSEC {
		return bitmap
	}
	out := make([]uint16, 0, len(bitmap))
	for _, b := range bitmap {
		if b != t {
			out = append(out, b)
		}
	}
	return out
}
