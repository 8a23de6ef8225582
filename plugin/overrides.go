package gtm

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/gtm-dns/coredns-gtm/api"
	"github.com/gtm-dns/coredns-gtm/state"
)

// noteOverrideChange records a timed override that started or ended by itself (the
// store's schedule, state/schedule.go, has already put the cells in line) as an event of
// the kind its write was: mode or pin.
func noteOverrideChange(c state.Change) {
	var v struct {
		Mode, Pool string
		state.Window
	}
	json.Unmarshal(c.Value, &v)
	e := api.Event{Action: c.Action}
	var what, value, after string
	switch {
	case strings.HasPrefix(c.Key, state.ModesPrefix):
		e.Kind = "mode"
		e.Pool, e.Address, _ = strings.Cut(strings.TrimPrefix(c.Key, state.ModesPrefix), "/")
		what, value, after = fmt.Sprintf("address %s of pool %s", e.Address, e.Pool), "mode "+v.Mode, "back to mode auto"
	case strings.HasPrefix(c.Key, state.PoolModesPrefix):
		e.Kind, e.Pool = "mode", strings.TrimPrefix(c.Key, state.PoolModesPrefix)
		what, value, after = "pool "+e.Pool, "mode "+v.Mode, "its addresses follow their own modes"
	case strings.HasPrefix(c.Key, state.PinsPrefix):
		e.Kind, e.Domain, e.Pool = "pin", strings.TrimPrefix(c.Key, state.PinsPrefix), v.Pool
		what, value, after = "domain "+e.Domain, "pinned to pool "+v.Pool, "unpinned"
	default:
		return
	}
	if c.Action == "expired" {
		e.Message = fmt.Sprintf("timed override of %s (%s) ended at %s: %s", what, value, v.Until.UTC().Format(time.RFC3339), after)
	} else {
		e.Message = fmt.Sprintf("scheduled override of %s started: %s", what, value)
		if !v.Until.IsZero() {
			e.Message += " until " + v.Until.UTC().Format(time.RFC3339)
		}
	}
	log.Infof("%s", e.Message)
	record(e)
}
