package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Answers beyond A and AAAA (PRODUCT.md Part 3): a domain's `https` (an HTTPS record in
// ServiceMode at the managed name, RFC 9460) and `srv` (SRV records at _SERVICE._PROTO under
// it, RFC 2782). Both are built from the same decision as the domain's A/AAAA answer.

// HTTPS is a domain's `https [PRIORITY] { alpn ID...; port N; hints on|off }`; JSON
// {"priority":1,"alpn":["h3","h2"],"port":443,"hints":true}.
type HTTPS struct {
	Priority int      `json:"priority,omitzero"` // SvcPriority, 1..65535; 0: 1
	ALPN     []string `json:"alpn,omitzero"`
	Port     int      `json:"port,omitzero"` // 0: no port key (the default port)
	// Hints is nil when not written: on for domains of addresses. Kept apart from an explicit
	// `hints on`, which a domain with pools of names refuses (a CNAME carries no hints).
	Hints *Switch `json:"hints,omitzero"`
}

// SRV is one `srv _SERVICE._PROTO PORT [PRIORITY]`; JSON
// {"service":"_sip._udp","port":5060,"priority":0}.
type SRV struct {
	Service  string `json:"service"`
	Port     int    `json:"port"`
	Priority int    `json:"priority,omitzero"`
	Line     int    `json:"-"`
}

// Switch is an on|off setting: JSON true/false (or "on"/"off" as the Corefile writes it).
type Switch bool

// MarshalJSONTo writes the switch as true or false.
func (s Switch) MarshalJSONTo(enc *jsontext.Encoder) error {
	return enc.WriteToken(jsontext.Bool(bool(s)))
}

// UnmarshalJSONFrom reads true, false, "on" or "off".
func (s *Switch) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	v, err := dec.ReadValue()
	if err != nil {
		return err
	}
	switch string(v) {
	case "true", `"on"`:
		*s = true
	case "false", `"off"`:
		*s = false
	default:
		return fmt.Errorf("%s: expected true, false, \"on\" or \"off\"", string(v))
	}
	return nil
}

// ParseSwitch parses the Corefile's on|off.
func ParseSwitch(s string) (Switch, bool) {
	switch s {
	case "on":
		return true, true
	case "off":
		return false, true
	}
	return false, false
}

// HintsOn reports whether the HTTPS record carries ipv4hint/ipv6hint (the default).
func (h *HTTPS) HintsOn() bool { return h.Hints == nil || bool(*h.Hints) }

// SvcPriority is the record's SvcPriority (1 when not written).
func (h *HTTPS) SvcPriority() uint16 {
	if h.Priority == 0 {
		return 1
	}
	return uint16(h.Priority)
}

// HTTPSKeys are the SvcParam keys `https` takes, in the order of RFC 9460's registry.
var HTTPSKeys = []string{"alpn", "port", "hints"}

// Limits of the service settings.
const (
	MaxPort     = 65535
	MaxPriority = 65535
	maxALPN     = 255 // an alpn-id is one length-prefixed octet string
)

// ServiceName canonicalises `_SERVICE._PROTO` (lower case), or says what is wrong with it.
func ServiceName(s string) (string, error) {
	s = strings.ToLower(strings.TrimSuffix(s, "."))
	labels := strings.Split(s, ".")
	if len(labels) != 2 {
		return "", fmt.Errorf("%q: expected _SERVICE._PROTO such as _sip._udp (two labels, each starting with _)", s)
	}
	for _, l := range labels {
		if len(l) < 2 || len(l) > 63 || l[0] != '_' {
			return "", fmt.Errorf("%q: label %q must start with _ and name a service or protocol, as in _sip._udp", s, l)
		}
		for i := 1; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return "", fmt.Errorf("%q: label %q may hold only letters, digits and - after its _", s, l)
			}
		}
	}
	return s, nil
}

// checkALPN says what is wrong with one alpn-id, or returns nil.
func checkALPN(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("an empty protocol ID")
	case len(id) > maxALPN:
		return fmt.Errorf("protocol ID %.20q... is longer than %d bytes", id, maxALPN)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c >= 0x7f || c == ',' || c == '\\' || c == '"' {
			return fmt.Errorf("protocol ID %q: expected printable characters without comma, quote or backslash (such as h3, h2, http/1.1)", id)
		}
	}
	return nil
}

// domainServices checks a domain's https and srv settings.
func (c *checker) domainServices(d *Domain, cfg *Config) {
	at := d.lineOf
	if h := d.HTTPS; h != nil {
		if h.Priority < 0 || h.Priority > MaxPriority {
			c.add(d, "https.priority", at("https"), "https: priority %d: expected a number from 1 to %d (a ServiceMode record)", h.Priority, MaxPriority)
		}
		if h.Port < 0 || h.Port > MaxPort {
			c.add(d, "https.port", at("https.port"), "https: port %d: expected a number from 1 to %d", h.Port, MaxPort)
		}
		if h.ALPN != nil && len(h.ALPN) == 0 {
			c.add(d, "https.alpn", at("https.alpn"), "https: alpn: expected at least one protocol ID (such as h3 h2)")
		}
		for i, id := range h.ALPN {
			field := "https.alpn[" + strconv.Itoa(i) + "]"
			if err := checkALPN(id); err != nil {
				c.add(d, field, at("https.alpn"), "https: alpn: %v", err)
			} else if j := indexOf(h.ALPN[:i], id); j >= 0 {
				c.add(d, field, at("https.alpn"), "https: alpn: %q listed twice", id)
			}
		}
		if h.Hints != nil && bool(*h.Hints) {
			if names := c.namePools(d); len(names) > 0 {
				c.add(d, "https.hints", at("https.hints"), "https: hints on: the domain answers with pools of domain names (%s), which answer HTTPS with a CNAME and carry no address hints; use hints off or leave hints out", strings.Join(names, ", "))
			}
		}
	}
	seen := map[string]int{}
	for i, s := range d.SRV {
		field := "srv[" + strconv.Itoa(i) + "]"
		line := s.Line
		if line == 0 {
			line = d.Line
		}
		name, err := ServiceName(s.Service)
		if err != nil {
			c.add(d, field+".service", line, "srv %v", err)
		}
		if s.Port < 1 || s.Port > MaxPort {
			c.add(d, field+".port", line, "srv %s: port %d: expected a number from 1 to %d", s.Service, s.Port, MaxPort)
		}
		if s.Priority < 0 || s.Priority > MaxPriority {
			c.add(d, field+".priority", line, "srv %s: priority %d: expected a number from 0 to %d", s.Service, s.Priority, MaxPriority)
		}
		key := name + " " + strconv.Itoa(s.Port)
		if j, dup := seen[key]; dup && err == nil {
			c.add(d, field, line, "srv %s %d: listed twice (also srv[%d])", s.Service, s.Port, j)
		}
		seen[key] = i
	}
}

// namePools lists the pools of domain names the domain's routes (or fallback) answer from.
func (c *checker) namePools(d *Domain) []string {
	var out []string
	add := func(name string) {
		if p := c.pools[name]; p != nil && p.IsCNAME() && indexOf(out, name) < 0 {
			out = append(out, name)
		}
	}
	for _, r := range d.Routes {
		for _, pn := range r.Pools {
			add(pn)
		}
	}
	if fp := d.FallbackPool(); fp != "" {
		add(fp)
	}
	return out
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

// UnmarshalJSONFrom reads an https object, refusing a member that is no key of `https` in
// the Corefile's words (an SvcParam gtm does not set, such as ech or mandatory).
func (h *HTTPS) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	v, err := dec.ReadValue()
	if err != nil {
		return err
	}
	var members map[string]jsontext.Value
	if err := json.Unmarshal(v, &members); err == nil {
		for k := range members {
			if k != "priority" && indexOf(HTTPSKeys, k) < 0 {
				return &json.SemanticError{JSONPointer: jsontext.Pointer("/https/" + k),
					Err: fmt.Errorf("unknown SvcParam key %q; expected %s (or priority)", k, strings.Join(HTTPSKeys, ", "))}
			}
		}
	}
	type plain HTTPS
	var p plain
	if err := json.Unmarshal(v, &p, json.RejectUnknownMembers(true)); err != nil {
		// Decoded apart from the domain: its field paths start here (a domain's https only).
		var se *json.SemanticError
		if errors.As(err, &se) {
			se.JSONPointer = "/https" + se.JSONPointer
		}
		return err
	}
	*h = HTTPS(p)
	return nil
}
