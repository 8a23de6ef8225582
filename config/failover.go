package config

import (
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Failover settings of pools and domains (PRODUCT.md Part 2, "Health checks and failover in
// depth"): min_available as a share, slow_start, fallback, failback and the degraded TTL.

// Fallback kinds of `fallback`; any other value names a pool.
const (
	FallbackOpen     = "open"
	FallbackNoData   = "nodata"
	FallbackServFail = "servfail"
)

// Failback modes of `failback`; any other value is a duration.
const (
	FailbackAuto   = "auto"
	FailbackManual = "manual"
)

// ParseMinAvailable parses `min_available N|P%`: a count, or a percentage (pct non-nil).
// Ranges are Validate's to check.
func ParseMinAvailable(s string) (n int, pct *int, ok bool) {
	if v, isPct := strings.CutSuffix(s, "%"); isPct {
		p, err := strconv.Atoi(v)
		if err != nil || v == "" || v[0] == '+' || v[0] == '-' && len(v) == 1 {
			return 0, nil, false
		}
		return 0, &p, true
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return 0, nil, false
	}
	return v, nil, true
}

// MinAvailableText is min_available as written: "2" or "50%".
func (p *Pool) MinAvailableText() string {
	if p.MinAvailablePercent != nil {
		return strconv.Itoa(*p.MinAvailablePercent) + "%"
	}
	return strconv.Itoa(p.MinAvailable)
}

// ParseFailback parses `failback auto|manual|DURATION` ("" is auto). ok is false for
// anything else, a duration that is not positive included.
func ParseFailback(s string) (manual bool, after time.Duration, ok bool) {
	switch s {
	case "", FailbackAuto:
		return false, 0, true
	case FailbackManual:
		return true, 0, true
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return false, 0, false
	}
	return false, d, true
}

// FallbackPool is the pool a domain's `fallback` names, or "" for open, nodata, servfail.
func (d *Domain) FallbackPool() string {
	switch d.Fallback {
	case "", FallbackOpen, FallbackNoData, FallbackServFail:
		return ""
	}
	return d.Fallback
}

// poolJSON is a pool's JSON form: min_available is a number, or "P%" for a share.
type poolJSON struct {
	plainPool
	MinAvailable jsontext.Value `json:"min_available"`
}

type plainPool Pool

// MarshalJSONTo writes min_available as a number, or as "P%" for a share.
func (p *Pool) MarshalJSONTo(enc *jsontext.Encoder) error {
	v := poolJSON{plainPool: plainPool(*p)}
	if p.MinAvailablePercent != nil {
		v.MinAvailable = jsontext.Value(strconv.Quote(p.MinAvailableText()))
	} else {
		v.MinAvailable = jsontext.Value(strconv.Itoa(p.MinAvailable))
	}
	return json.MarshalEncode(enc, &v)
}

// UnmarshalJSONFrom reads min_available as a number or a "P%" string; the other fields
// keep the values p had (the defaults) when the body omits them.
func (p *Pool) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	v := poolJSON{plainPool: plainPool(*p)}
	if err := json.UnmarshalDecode(dec, &v); err != nil {
		return err
	}
	*p = Pool(v.plainPool)
	if len(v.MinAvailable) == 0 {
		return nil
	}
	var n int
	if err := json.Unmarshal(v.MinAvailable, &n); err == nil {
		p.MinAvailable, p.MinAvailablePercent = n, nil
		return nil
	}
	var s string
	if err := json.Unmarshal(v.MinAvailable, &s); err == nil {
		if n, pct, ok := ParseMinAvailable(s); ok {
			p.MinAvailable, p.MinAvailablePercent = n, pct
			if pct != nil {
				p.MinAvailable = 1
			}
			return nil
		}
	}
	return &json.SemanticError{JSONPointer: "/min_available", Err: errorf("%s is not a count such as 2 or a share such as \"50%%\"", string(v.MinAvailable))}
}

// poolFailover checks a pool's min_available share and slow_start.
func (c *checker) poolFailover(p *Pool) {
	at := p.lineOf
	if pct := p.MinAvailablePercent; pct != nil && (*pct < 1 || *pct > 100) {
		c.add(p, "min_available", at("min_available"), "min_available %q: expected a count from 1 to %d or a share from 1%% to 100%%", p.MinAvailableText(), MaxWeight)
	}
	if p.SlowStart < 0 {
		c.add(p, "slow_start", at("slow_start"), "slow_start %s: expected a positive duration such as 30s", durText(p.SlowStart))
	} else if p.SlowStart > 0 && p.LB != "weighted" && p.LB != "priority" {
		c.add(p, "slow_start", at("slow_start"), "slow_start applies to lb weighted and priority, not lb %s", p.LB)
	}
}

// domainFailover checks a domain's fallback, failback and degraded TTL.
func (c *checker) domainFailover(d *Domain, cfg *Config) {
	at := d.lineOf
	if d.TTLDegraded != nil && *d.TTLDegraded > MaxTTL {
		c.add(d, "ttl_degraded", at("ttl"), "ttl %d %d: expected DEGRADED seconds from 0 to %d", d.TTL, *d.TTLDegraded, MaxTTL)
	}
	if name := d.FallbackPool(); name != "" && c.pools[name] == nil {
		c.add(d, "fallback", at("fallback"), "fallback %q: expected open, nodata, servfail or a pool (pools: %s)", name, listOrNone(names(cfg.Pools)))
	}
	if _, _, ok := ParseFailback(d.Failback); !ok {
		c.add(d, "failback", at("failback"), "failback %q: expected auto, manual or a duration such as 5m", d.Failback)
	}
}
