package policy

import "time"

// Failback hold-down: after a failover a route with `failback manual` or `failback DURATION`
// stays on the pool it moved to. The decision is a pure function of what the route looks
// like now; the plugin's holder feeds it on every health change and stores the result (in
// the state store, which the query path reads through the route's HoldCell).

// HoldInput is what NextHold decides on for one route.
type HoldInput struct {
	Held    string // the pool the route is held on, "" when not held
	HeldIdx int    // its place in the route, -1 when the route does not list it
	HeldUp  bool   // it is available
	Natural string // the first available pool of the route, "" when none
	NatIdx  int    // its place, -1 when none
	// BetterSince is since when some pool listed before Held has been available without a
	// break (zero when none is); the caller tracks it.
	BetterSince time.Time
	Now         time.Time
	Manual      bool          // failback manual
	After       time.Duration // failback DURATION
}

// HoldVerdict is what NextHold decided.
type HoldVerdict struct {
	Change bool   // the hold changes
	Pool   string // the new hold: a pool name, or "" to release
}

// NextHold decides a route's hold:
//   - not held: a route whose first available pool is not its first pool has failed over,
//     and is held there;
//   - held on a pool that is no longer listed, or that failed: the hold moves to the first
//     available pool if that is not the route's first, else it is released (the standby
//     failing too ends the hold);
//   - held while a better pool is available: manual keeps the hold until an operator
//     releases it; DURATION releases it once the better pool has been available that long
//     (and holds the better pool instead if it is not the first either).
func NextHold(in HoldInput) HoldVerdict {
	hold := func(pool string) HoldVerdict {
		if pool == in.Held {
			return HoldVerdict{}
		}
		return HoldVerdict{Change: true, Pool: pool}
	}
	natural := ""
	if in.NatIdx > 0 {
		natural = in.Natural
	}
	switch {
	case in.Held == "":
		return hold(natural)
	case in.HeldIdx <= 0 || !in.HeldUp:
		return hold(natural)
	case in.NatIdx >= 0 && in.NatIdx < in.HeldIdx:
		if in.Manual || in.After <= 0 {
			return HoldVerdict{}
		}
		if !in.BetterSince.IsZero() && in.Now.Sub(in.BetterSince) >= in.After {
			return hold(natural)
		}
	}
	return HoldVerdict{}
}
