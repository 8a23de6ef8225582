package config

import (
	"strings"
	"testing"
)

func TestMembersJSONRoundTrip(t *testing.T) {
	body := `{"addresses":[],"members":[{"dns":["app.example.com"],"refresh":["5s","300s"]},{"kubernetes":"ns/svc","addresses":"endpoints"},{"srv":"_http._tcp.example.com","resolver":"127.0.0.1:5353"},{"ingress":"ns/web","kubeconfig":"/k"}]}`
	r, err := Decode(KindPool, "p", []byte(body), 30)
	if err != nil {
		t.Fatal(err)
	}
	p := r.(*Pool)
	if len(p.Members) != 4 || p.Members[2].Refresh == nil || p.Members[1].Addresses != "endpoints" {
		t.Fatalf("decoded %+v", p.Members)
	}
	out, err := Encode(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"members":[{"dns":["app.example.com"],"refresh":["5s","5m0s"]}`, `{"kubernetes":"ns/svc","addresses":"endpoints"}`, `"srv":"_http._tcp.example.com","resolver":"127.0.0.1:5353","refresh":["5s","5m0s"]`} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("encoded %s; want %s", out, want)
		}
	}
	again, err := Decode(KindPool, "p", out, 30)
	if err != nil {
		t.Fatal(err)
	}
	out2, _ := Encode(again)
	if string(out2) != string(out) {
		t.Fatalf("round trip:\n%s\n%s", out, out2)
	}
}

func TestFlattenJSON(t *testing.T) {
	for body, want := range map[string]bool{
		`{"addresses":[{"address":"lb.example.com"}],"flatten":true}`:                     true,
		`{"addresses":[{"address":"lb.example.com"}],"flatten":false}`:                    false,
		`{"addresses":[{"address":"lb.example.com"}],"flatten":{"resolver":"10.0.0.53"}}`: true,
		`{"addresses":[{"address":"lb.example.com"}],"flatten":{"refresh":["1s","10s"]}}`: true,
	} {
		r, err := Decode(KindPool, "p", []byte(body), 30)
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		p := r.(*Pool)
		if (p.Flatten != nil) != want {
			t.Fatalf("%s: flatten %+v", body, p.Flatten)
		}
		if errs := Validate(&Config{Pools: []*Pool{p}}, Env{}); len(errs) > 0 {
			t.Fatalf("%s: %v", body, errs)
		}
	}
}

func TestMembersValidation(t *testing.T) {
	KubeconfigCheck = nil
	for _, tc := range []struct {
		body, field, msg string
	}{
		{`{"addresses":[{"address":"a.example.com"}],"members":[{"dns":["b.example.com"]}]}`, "members", "a pool of domain names cannot take members"},
		{`{"addresses":[{"address":"192.0.2.1"}],"flatten":true}`, "flatten", "flatten applies only to a pool of domain names"},
		{`{"members":[{"dns":["not a name"]}]}`, "members[0].dns[0]", "expected a fully qualified domain name"},
		{`{"members":[{"dns":["192.0.2.1"]}]}`, "members[0].dns[0]", "expected a fully qualified domain name"},
		{`{"members":[{"srv":"http.tcp.example.com"}]}`, "members[0].srv", "expected _SERVICE._PROTO.NAME"},
		{`{"members":[{"kubernetes":"svc"}]}`, "members[0].kubernetes", "expected NAMESPACE/NAME"},
		{`{"members":[{"kubernetes":"ns/svc","addresses":"nodeport"}]}`, "members[0].addresses", "expected endpoints or loadbalancer"},
		{`{"members":[{"dns":["a.example.com"],"kubernetes":"ns/svc"}]}`, "members[0]", "exactly one of"},
		{`{"members":[{}]}`, "members[0]", "exactly one of"},
		{`{"members":[{"dns":["a.example.com"],"refresh":["10s","1s"]}]}`, "members[0].refresh", "MIN <= MAX"},
		{`{"members":[{"dns":["a.example.com"],"refresh":["1s"]}]}`, "members[0].refresh", "expected MIN MAX"},
		{`{"members":[{"dns":["a.example.com"],"resolver":"dns.example.com"}]}`, "members[0].resolver", "expected an IP address"},
		{`{"members":[{"dns":["a.example.com"],"kubeconfig":"/x"}]}`, "members[0]", "apply only to members kubernetes"},
		{`{}`, "addresses", "no address"},
	} {
		r, err := Decode(KindPool, "p", []byte(tc.body), 30)
		if err != nil {
			t.Fatalf("%s: decode: %v", tc.body, err)
		}
		errs := Validate(&Config{Pools: []*Pool{r.(*Pool)}}, Env{})
		if len(errs) == 0 {
			t.Fatalf("%s: valid", tc.body)
		}
		if errs[0].Field != tc.field || !strings.Contains(errs[0].Message, tc.msg) {
			t.Fatalf("%s: %q %q; want %q %q", tc.body, errs[0].Field, errs[0].Message, tc.field, tc.msg)
		}
	}
	// A pool of members alone is valid.
	r, _ := Decode(KindPool, "p", []byte(`{"members":[{"kubernetes":"ns/svc"}]}`), 30)
	if errs := Validate(&Config{Pools: []*Pool{r.(*Pool)}}, Env{}); len(errs) > 0 {
		t.Fatal(errs)
	}
}

func TestKubeconfigCheckNamesTheField(t *testing.T) {
	defer func(f func(string) error) { KubeconfigCheck = f }(KubeconfigCheck)
	KubeconfigCheck = func(file string) error {
		return errorf("kubeconfig %s: does not parse", file)
	}
	r, _ := Decode(KindPool, "p", []byte(`{"members":[{"kubernetes":"ns/svc","kubeconfig":"/bad"}]}`), 30)
	errs := Validate(&Config{Pools: []*Pool{r.(*Pool)}}, Env{})
	if len(errs) != 1 || errs[0].Field != "members[0].kubeconfig" || !strings.Contains(errs[0].Message, "/bad: does not parse") {
		t.Fatalf("%v", errs)
	}
}

func FuzzDecodeMembers(f *testing.F) {
	for _, s := range []string{
		`{"members":[{"dns":["a.example.com"],"refresh":["5s","300s"]}]}`,
		`{"members":[{"kubernetes":"ns/svc","addresses":"loadbalancer"}]}`,
		`{"addresses":[{"address":"x.example.com"}],"flatten":{"resolver":"[::1]:53"}}`,
		`{"members":[{"srv":"_a._b.c.d"}],"flatten":true}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		KubeconfigCheck = nil
		r, err := Decode(KindPool, "p", []byte(body), 30)
		if err != nil {
			return
		}
		_ = Validate(&Config{Pools: []*Pool{r.(*Pool)}}, Env{})
		out, err := Encode(r)
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		if _, err := Decode(KindPool, "p", out, 30); err != nil {
			t.Fatalf("a decoded pool does not decode again: %s: %v", out, err)
		}
	})
}
