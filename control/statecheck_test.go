package control

import (
	"strings"
	"testing"

	"github.com/gtm-dns/coredns-gtm/config"
	"github.com/gtm-dns/coredns-gtm/state"
)

func TestInvalidOverrides(t *testing.T) {
	d := &state.Data{Entries: map[string]state.Entry{
		"modes/web/192.0.2.1":         {Value: []byte(`{"mode":"down"}`)},
		"modes/web/192.0.2.2":         {Value: []byte(`{"mode":"dwon"}`)},
		"poolmodes/web":               {Value: []byte(`"down"`)},
		"pins/www.gtm.example.net.":   {Value: []byte(`"dr"`)},
		"pins/api.gtm.example.net.":   {Value: []byte(`{"pool":"dr"}`)},
		"pins/x.gtm.example.net.":     {Value: []byte(`{"pool":`)},
		"config/pools/web":            {Value: []byte(`"not checked here"`)},
		"modes/web/" + big(1000):      {Value: []byte(`{"mode":"` + big(5000) + `"}`)},
		"pins/empty.gtm.example.net.": {Value: []byte(`{"pool":""}`)},
	}}
	got := invalidOverrides(d)
	want := []string{`modes/web/192.0.2.2 = {"mode":"dwon"}: mode "dwon": expected auto, up or down`,
		`pins/www.gtm.example.net. = "dr": expected {"pool":"NAME"}: the value is a JSON string, not an object`,
		`poolmodes/web = "down": expected {"mode":"auto|up|down"}: the value is a JSON string, not an object`}
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || g == w
		}
		if !found {
			t.Errorf("missing %q in %q", w, got)
		}
	}
	if len(got) != 5 {
		t.Errorf("%d invalid overrides, want 5: %q", len(got), got)
	}
	for _, g := range got {
		if len(g) > 400 {
			t.Errorf("one report is %d bytes", len(g))
		}
	}
}

func big(n int) string { return strings.Repeat("x", n) }

func TestSummarise(t *testing.T) {
	var errs config.Errors
	for range 1000 {
		errs = append(errs, &config.Error{Message: "pool p: address \"" + big(900) + "\": not an IP address or domain name"})
	}
	s := summarise(errs)
	if len(s) > 2000 || !strings.Contains(s, "and 995 more error(s)") || !strings.Contains(s, "bytes more)") {
		t.Fatalf("summary of 1000 long errors: %d bytes: %.300s", len(s), s)
	}
	if got := summarise(config.Errors{{Message: "one"}}); got != "one" {
		t.Fatalf("one short error: %q", got)
	}
	if got := cut("ääää", 3); !strings.HasPrefix(got, "ä…") {
		t.Fatalf("cut on a rune boundary: %q", got)
	}
}

// FuzzInvalidOverrides: any stored value is either in force or reported, in bounded text.
func FuzzInvalidOverrides(f *testing.F) {
	for _, s := range []string{`{"mode":"down"}`, `"dr"`, `{"pool":1}`, `[`, ``, `{"mode":"up","until":"0001-01-01T00:00:00Z"}`, `null`, `7`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		d := &state.Data{Entries: map[string]state.Entry{"modes/p/a": {Value: []byte(v)}, "pins/d.": {Value: []byte(v)}}}
		for _, r := range invalidOverrides(d) {
			if len(r) > 400 {
				t.Fatalf("report of %d bytes", len(r))
			}
		}
	})
}
