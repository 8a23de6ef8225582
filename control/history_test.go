package control

import (
	"testing"
	"time"

	"github.com/gtm-dns/coredns-gtm/history"
	"github.com/gtm-dns/coredns-gtm/policy"
)

type stateHealth bool

func (h stateHealth) Healthy() bool    { return bool(h) }
func (stateHealth) RTT() time.Duration { return 0 }

func TestAddrState(t *testing.T) {
	cases := []struct {
		name     string
		disabled bool
		health   policy.Health
		mode     policy.Mode
		want     history.State
	}{
		{"no checks", false, nil, policy.ModeAuto, history.Up},
		{"healthy", false, stateHealth(true), policy.ModeAuto, history.Up},
		{"unhealthy", false, stateHealth(false), policy.ModeAuto, history.Down},
		{"drained", false, stateHealth(true), policy.ModeDown, history.Drained},
		{"drained while unhealthy", false, stateHealth(false), policy.ModeDown, history.Drained},
		{"drained without checks", false, nil, policy.ModeDown, history.Drained},
		{"forced up while unhealthy", false, stateHealth(false), policy.ModeUp, history.Up},
		{"disabled", true, stateHealth(true), policy.ModeAuto, history.Disabled},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := &policy.Address{Disabled: tc.disabled, Health: tc.health, Mode: &policy.ModeCell{}}
			a.Mode.Set(tc.mode)
			if got := addrState(a); got != tc.want {
				t.Fatalf("%v, want %v", got, tc.want)
			}
		})
	}
}
