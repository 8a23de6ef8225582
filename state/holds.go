package state

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/gtm-dns/coredns-gtm/policy"
)

// HoldValue is the JSON value of a holds/ key: the routes of a domain that failed over and,
// with failback manual or DURATION, stay on the pool they moved to. Routes are keyed by
// their selector as written.
type HoldValue struct {
	Routes map[string]HoldRoute `json:"routes"`
}

// HoldRoute is one held route: the pool it is held on and since when.
type HoldRoute struct {
	Pool  string    `json:"pool"`
	Since time.Time `json:"since"`
}

// HoldKey is the key of a domain's holds.
func HoldKey(domain string) string { return HoldsPrefix + domain }

func holdCellKey(domain, route string) string { return domain + "\n" + route }

// HoldCell returns the hold cell of a route of a domain (a lower-case FQDN and the route's
// selector text); the same cell every time.
func (s *Store) HoldCell(domain, route string) *policy.HoldCell {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := cell(s.holds, holdCellKey(domain, route))
	if v, ok := s.data.Entries[HoldKey(domain)]; ok && c.Get() == nil {
		c.Set(holdOf(v.Value, route))
	}
	return c
}

func holdOf(b []byte, route string) *policy.Hold {
	var v HoldValue
	if json.Unmarshal(b, &v) != nil {
		return nil
	}
	r, ok := v.Routes[route]
	if !ok || r.Pool == "" {
		return nil
	}
	return &policy.Hold{Pool: r.Pool, Since: r.Since}
}

// installHolds brings every hold cell in line with d; s.mu held.
func (s *Store) installHolds(d *Data) {
	for k, c := range s.holds {
		domain, route, _ := strings.Cut(k, "\n")
		e, ok := d.Entries[HoldKey(domain)]
		if !ok {
			c.Set(nil)
			continue
		}
		h := holdOf(e.Value, route)
		if old := c.Get(); h == nil || old == nil || *old != *h {
			c.Set(h)
		}
	}
}

// Holds returns a domain's holds in d and the revision of their key (0: none).
func (d *Data) Holds(domain string) (HoldValue, int64) {
	v := HoldValue{Routes: map[string]HoldRoute{}}
	e, ok := d.Entries[HoldKey(domain)]
	if !ok {
		return v, 0
	}
	json.Unmarshal(e.Value, &v)
	if v.Routes == nil {
		v.Routes = map[string]HoldRoute{}
	}
	return v, e.Revision
}

// SetHold holds (pool non-empty) or releases (pool "") one route of a domain, if the
// domain's holds are still at revision rev (0: none): the compare-and-set that lets the
// first node of a fleet to fail over write the hold, and the others see it. It returns
// ErrConflict when another writer was first.
func (s *Store) SetHold(ctx context.Context, domain, route, pool string, since time.Time, rev int64) error {
	s.Lock()
	defer s.Unlock()
	v, cur := s.Data().Holds(domain)
	if cur != rev {
		return ErrConflict
	}
	if pool == "" {
		delete(v.Routes, route)
	} else {
		v.Routes[route] = HoldRoute{Pool: pool, Since: since.UTC().Truncate(time.Second)}
	}
	op := Op{Key: HoldKey(domain), Check: true, Revision: rev}
	if len(v.Routes) > 0 {
		op.Value, _ = json.Marshal(v)
	}
	_, err := s.Commit(ctx, []Op{op})
	return err
}

// ReleaseHolds deletes every hold of a domain (POST .../failback) and returns the routes
// that were held.
func (s *Store) ReleaseHolds(ctx context.Context, domain string) ([]string, error) {
	s.Lock()
	defer s.Unlock()
	v, rev := s.Data().Holds(domain)
	if rev == 0 {
		return nil, nil
	}
	routes := make([]string, 0, len(v.Routes))
	for r := range v.Routes {
		routes = append(routes, r)
	}
	_, err := s.Commit(ctx, []Op{{Key: HoldKey(domain), Check: true, Revision: rev}})
	return routes, err
}
