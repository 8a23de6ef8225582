package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"strings"
)

// Health from outside: pushed verdicts and the mass-failure brake.

const outsideUsage = `  health push POOL ADDRESS (--healthy | --unhealthy) [--ttl 30s] [--reason TEXT] [--check NAME]
                                  push a verdict for a protocol push check; it expires after --ttl
  brake                           the mass-failure brake: engaged or not, and the counts
  brake release                   release an engaged brake: the real verdicts apply again
`

// outsideOpts are the flags of health push.
type outsideOpts struct {
	healthy, unhealthy *bool
	ttl, reason, check *string
}

func outsideFlags(fs *flag.FlagSet) *outsideOpts {
	return &outsideOpts{
		healthy:   fs.Bool("healthy", false, "health push: the verdict is healthy"),
		unhealthy: fs.Bool("unhealthy", false, "health push: the verdict is unhealthy"),
		ttl:       fs.String("ttl", "30s", "health push: how long the verdict stays in force"),
		reason:    fs.String("reason", "", "health push: why (shown in the status and events)"),
		check:     fs.String("check", "", "health push: the push check (needed when the pool has several)"),
	}
}

// outside runs `health ...` and `brake ...`; usage errors return code 2.
func (c *cli) outside(cmd string, rest []string, o *outsideOpts) (int, error) {
	switch {
	case cmd == "health" && len(rest) == 3 && rest[0] == "push":
		if *o.healthy == *o.unhealthy {
			return 2, fmt.Errorf("health push: expected one of --healthy or --unhealthy")
		}
		return 0, c.pushHealth(rest[1], rest[2], *o.healthy, *o.ttl, *o.reason, *o.check)
	case cmd == "health":
		return 2, fmt.Errorf("health: expected push POOL ADDRESS (--healthy | --unhealthy) [--ttl 30s] [--reason TEXT] [--check NAME]")
	case cmd == "brake" && len(rest) == 0:
		return 0, c.brake(false)
	case cmd == "brake" && len(rest) == 1 && rest[0] == "release":
		return 0, c.brake(true)
	}
	return 2, fmt.Errorf("brake: expected no argument or release")
}

func (c *cli) pushHealth(pool, addr string, healthy bool, ttl, reason, check string) error {
	body, _ := json.Marshal(map[string]any{"healthy": healthy, "ttl": ttl, "reason": reason, "check": check})
	b, _, err := c.call("PUT", "/api/v1/pools/"+url.PathEscape(pool)+"/addresses/"+url.PathEscape(addr)+"/health", body, nil)
	if err != nil {
		return err
	}
	var doc struct {
		Pool, Address, Check, Reason, TTL, Expires string
		Healthy                                    bool
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("health push: bad answer: %v", err)
	}
	word := "unhealthy"
	if doc.Healthy {
		word = "healthy"
	}
	fmt.Fprintf(c.out, "pool %s address %s: check %s pushed %s until %s\n", doc.Pool, doc.Address, doc.Check, word, doc.Expires)
	return nil
}

func (c *cli) brake(release bool) error {
	var doc struct {
		Released *bool `json:"released"`
		Brake    struct {
			Percent        int
			Window         string
			Engaged, Fleet bool
			Since          string
			Down, Of, Held int
		} `json:"brake"`
	}
	if release {
		b, _, err := c.call("POST", "/api/v1/brake/release", nil, nil)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			return fmt.Errorf("brake: bad answer: %v", err)
		}
	} else if err := c.getJSON("/api/v1/brake", &doc.Brake); err != nil {
		return err
	}
	st := doc.Brake
	scope := "node"
	if st.Fleet {
		scope = "fleet"
	}
	state := "released"
	if st.Engaged {
		state = "ENGAGED since " + st.Since
	}
	if doc.Released != nil {
		if *doc.Released {
			fmt.Fprintln(c.out, "brake released: the real verdicts apply")
		} else {
			fmt.Fprintln(c.out, "the brake was not engaged")
		}
	}
	fmt.Fprintf(c.out, "brake %d%% %s (%s): %s; %d of %d checked addresses down in the wave; %d held\n",
		st.Percent, st.Window, scope, strings.ToLower(state[:1])+state[1:], st.Down, st.Of, st.Held)
	return nil
}
