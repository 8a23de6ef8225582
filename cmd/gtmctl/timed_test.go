package main

import (
	"strings"
	"testing"
	"time"
)

func TestWindowFlags(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		from, until string
		want        map[string]string
		err         string
	}{
		{"", "2h", map[string]string{"until": "2026-12-01T14:00:00Z"}, ""},
		{"30m", "2026-12-01T15:00:00+01:00", map[string]string{"from": "2026-12-01T12:30:00Z", "until": "2026-12-01T15:00:00+01:00"}, ""},
		{"", "", map[string]string{}, ""},
		{"", "tomorrow", nil, `--until "tomorrow"`},
		{"-5m", "", nil, `--from "-5m"`},
	} {
		got, err := window(tc.from, tc.until, now)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("window(%q, %q): error %v, want %q", tc.from, tc.until, err, tc.err)
			}
			continue
		}
		if err != nil || len(got) != len(tc.want) {
			t.Errorf("window(%q, %q) = %v, %v; want %v", tc.from, tc.until, got, err, tc.want)
			continue
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("window(%q, %q)[%s] = %q, want %q", tc.from, tc.until, k, got[k], v)
			}
		}
	}
}

// drain --until, drain --pool alone (the pool mode), pin --from, and the API's refusal.
func TestTimedDrainAndPoolDrain(t *testing.T) {
	server, token := serve(t)
	out := must(t, server, token, "drain", "192.0.2.1", "--until", "1h")
	if !strings.Contains(out, "pool core address 192.0.2.1: mode down until ") {
		t.Errorf("drain --until: %s", out)
	}
	if st := must(t, server, token, "status"); !strings.Contains(st, "192.0.2.1") {
		t.Errorf("status: %s", st)
	}
	out = must(t, server, token, "drain", "--pool", "core", "--from", "1h", "--until", "2h")
	if !strings.Contains(out, "pool core: pool mode down from ") {
		t.Errorf("drain --pool: %s", out)
	}
	if out := must(t, server, token, "restore", "--pool", "core"); !strings.Contains(out, "pool mode cleared") {
		t.Errorf("restore --pool: %s", out)
	}
	if out := must(t, server, token, "pin", "www.gtm.example.net", "core", "--from", "10m"); !strings.Contains(out, "pinned to pool core from ") {
		t.Errorf("pin --from: %s", out)
	}
	if _, errs, code := ctl(t, server, token, "drain", "192.0.2.1", "--from", "2026-01-01T00:00:00Z", "--until", "2025-01-01T00:00:00Z"); code == 0 || !strings.Contains(errs, "until") {
		t.Errorf("a window in the past: exit %d: %s", code, errs)
	}
	if _, errs, code := ctl(t, server, token, "drain", "192.0.2.1", "--until", "soon"); code != 2 || !strings.Contains(errs, "--until") {
		t.Errorf("a bad --until: exit %d: %s", code, errs)
	}
}
