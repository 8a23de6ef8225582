package config

import "testing"

func TestInZonesByLabel(t *testing.T) {
	zones := []string{"gtm.test.", "sub.gtm.test."}
	for name, want := range map[string]string{
		"www.gtm.test.":     "gtm.test.",
		"www.sub.gtm.test.": "sub.gtm.test.",
		`foo\.gtm.test.`:    "",
		`a\.sub.gtm.test.`:  "gtm.test.",
		"xgtm.test.":        "",
	} {
		if got := InZones(zones, name); got != want {
			t.Errorf("InZones(%s) = %q, want %q", name, got, want)
		}
	}
}
