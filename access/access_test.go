package access

import (
	"fmt"
	"strings"
	"testing"
)

func TestLookupAndRoles(t *testing.T) {
	ro := NewToken("dash", "read-value", Read)
	ops := NewToken("ops", "ops-value", Operate)
	ci := NewToken("ci", "ci-value", Admin, Scope{Kind: "domain", Glob: "*.shop.gtm.example.net"})
	s, err := NewSet(ro, ops, ci)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		presented string
		want      *Token
	}{
		{"read-value", ro}, {"ops-value", ops}, {"ci-value", ci},
		{"", nil}, {"ops-valu", nil}, {"ops-value ", nil}, {"OPS-VALUE", nil}, {"read-value-and-more", nil},
	} {
		if got := s.Lookup(c.presented); got != c.want {
			t.Errorf("Lookup(%q) = %v, want %v", c.presented, got, c.want)
		}
	}
	if _, err := NewSet(ro, NewToken("dash", "other", Read)); err == nil || !strings.Contains(err.Error(), "token dash: defined twice") {
		t.Errorf("duplicate name: %v", err)
	}
	if _, err := NewSet(ro, NewToken("copy", "read-value", Admin)); err == nil || !strings.Contains(err.Error(), "same value as token dash") {
		t.Errorf("duplicate value: %v", err)
	}
	// Formatting a token shows its name only.
	for _, f := range []string{"%v", "%s", "%+v", "%#v"} {
		if out := fmt.Sprintf(f, ci); strings.Contains(out, "ci-value") {
			t.Errorf("%s prints the value: %s", f, out)
		}
	}
}

func TestAllow(t *testing.T) {
	ops := NewToken("ops", "x", Operate)
	ci := NewToken("ci", "y", Admin, Scope{Kind: "domain", Glob: "*.shop.gtm.example.net"}, Scope{Kind: "pool", Glob: "shop-*"})
	dash := NewToken("dash", "z", Read)
	for _, c := range []struct {
		tok    *Token
		need   Role
		write  bool
		target Target
		err    string
	}{
		{dash, Read, false, Target{}, ""},
		{dash, Operate, true, Target{"pool", "eu"}, "token dash: role read cannot act"},
		{ops, Operate, true, Target{"pool", "eu"}, ""},
		{ops, Admin, true, Target{"pool", "eu"}, "token ops: role operate cannot act"},
		{ci, Admin, true, Target{"domain", "www.shop.gtm.example.net."}, ""},
		{ci, Admin, true, Target{"domain", "WWW.Shop.gtm.example.net"}, ""},
		{ci, Admin, true, Target{"domain", "a.b.shop.gtm.example.net."}, ""},
		{ci, Admin, true, Target{"domain", "shop.gtm.example.net."}, "token ci: scope domain:*.shop.gtm.example.net pool:shop-* does not cover domain shop.gtm.example.net."},
		{ci, Admin, true, Target{"domain", "www.example.net."}, "does not cover domain www.example.net."},
		{ci, Admin, true, Target{"pool", "shop-eu"}, ""},
		{ci, Admin, true, Target{"pool", "eu"}, "does not cover pool eu"},
		{ci, Admin, true, Target{"healthcheck", "tcp"}, "does not cover healthcheck tcp"},
		{ci, Operate, true, Target{}, "does not cover resources outside any domain or pool"},
		{ci, Read, false, Target{"pool", "eu"}, ""}, // scopes limit writes only
	} {
		err := Allow(c.tok, c.need, "act", c.write, c.target)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s %v: refused: %v", c.tok.Name, c.target, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s %v: %v, want %q", c.tok.Name, c.target, err, c.err)
		}
	}
}

func TestParseScope(t *testing.T) {
	for in, want := range map[string]string{
		"domain:*.shop.gtm.example.net.": "domain:*.shop.gtm.example.net",
		"domain:WWW.Example.NET":         "domain:www.example.net",
		"pool:eu-*":                      "pool:eu-*",
	} {
		s, err := ParseScope(in)
		if err != nil || s.String() != want {
			t.Errorf("ParseScope(%q) = %v, %v; want %s", in, s, err, want)
		}
	}
	for _, bad := range []string{"", "domain:", "zone:x", "pool", "pool:[", "*.example.net"} {
		if _, err := ParseScope(bad); err == nil {
			t.Errorf("ParseScope(%q) accepted", bad)
		}
	}
}

func FuzzParseScope(f *testing.F) {
	for _, s := range []string{"domain:*.shop.gtm.example.net", "pool:eu-*", "pool:[a-", "domain:\\", ":"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sc, err := ParseScope(s)
		if err != nil {
			return
		}
		if sc.Kind != "domain" && sc.Kind != "pool" {
			t.Fatalf("kind %q", sc.Kind)
		}
		sc.covers(Target{Kind: sc.Kind, Name: "www.example.net."}) // never panics
	})
}
