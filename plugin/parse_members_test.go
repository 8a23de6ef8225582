package gtm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coredns/caddy"

	_ "github.com/gtm-dns/coredns-gtm/discovery" // validation loads kubeconfigs through it
)

func TestParseMembers(t *testing.T) {
	b, err := parse(caddy.NewTestController("dns", `gtm gtm.example.net {
    pool p {
        address 192.0.2.1
        members dns a.example.com b.example.com {
            resolver 127.0.0.1:5353
            refresh 2s 60s
        }
        members srv _http._tcp.example.com
        members kubernetes ns/svc {
            addresses loadbalancer
            kubeconfig `+writeKubeconfig(t)+`
        }
        members kubernetes ingress ns/web {
            kubeconfig `+writeKubeconfig(t)+`
        }
    }
    pool alias {
        address lb.example.com
        flatten
    }
}`))
	if err != nil {
		t.Fatal(err)
	}
	p := b.res.Pools[0]
	if len(p.Members) != 4 || len(p.Members[0].DNS) != 2 || p.Members[0].Resolver != "127.0.0.1:5353" || p.Members[1].SRV == "" || p.Members[2].Addresses != "loadbalancer" || p.Members[3].Ingress != "ns/web" {
		t.Fatalf("members %+v", p.Members)
	}
	if p.Members[1].Line != 8 || len(p.Members[1].Refresh) != 2 {
		t.Fatalf("srv member %+v", p.Members[1])
	}
	if f := b.res.Pools[1].Flatten; f == nil || len(f.Refresh) != 2 {
		t.Fatalf("flatten %+v", f)
	}
}

func writeKubeconfig(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "kubeconfig")
	os.WriteFile(path, []byte("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: https://127.0.0.1:6443}\nusers:\n- name: u\n  user: {token: x}\ncontexts:\n- name: c\n  context: {cluster: c, user: u}\ncurrent-context: c\n"), 0o600)
	return path
}

func TestParseMembersErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad")
	os.WriteFile(bad, []byte("clusters: [this is: not yaml\n"), 0o600)
	cases := []struct {
		name, body string
		line       int
		want       []string
	}{
		{"members in a pool of names", "pool a {\n address x.example.org\n members dns b.example.org\n}", 4, []string{"pool a: members: a pool of domain names cannot take members"}},
		{"flatten in a pool of IPs", "pool a {\n address 192.0.2.1\n flatten\n}", 4, []string{"pool a: flatten applies only to a pool of domain names"}},
		{"not a name", "pool a {\n members dns not..a.name\n}", 3, []string{`members dns "not..a.name": expected a fully qualified domain name`}},
		{"an IP as a name", "pool a {\n members dns 192.0.2.7\n}", 3, []string{`"192.0.2.7": expected a fully qualified domain name`}},
		{"srv without labels", "pool a {\n members srv www.example.org\n}", 3, []string{"expected _SERVICE._PROTO.NAME"}},
		{"unknown source", "pool a {\n members consul web\n}", 3, []string{`unknown source "consul"`}},
		{"kubernetes without namespace", "pool a {\n members kubernetes web\n}", 3, []string{`"web": expected NAMESPACE/NAME`}},
		{"bad addresses", "pool a {\n members kubernetes ns/web {\n  addresses nodeport\n }\n}", 4, []string{"addresses: expected endpoints or loadbalancer"}},
		{"refresh on kubernetes", "pool a {\n members kubernetes ns/web {\n  refresh 1s 2s\n }\n}", 4, []string{"refresh applies only to members dns and srv"}},
		{"bad refresh", "pool a {\n members dns a.example.org {\n  refresh 5s\n }\n}", 4, []string{"refresh: expected MIN MAX"}},
		{"refresh min above max", "pool a {\n members dns a.example.org {\n  refresh 10s 5s\n }\n}", 3, []string{"refresh 10s 5s: expected 1s <= MIN <= MAX"}},
		{"bad resolver", "pool a {\n members dns a.example.org {\n  resolver dns.google\n }\n}", 4, []string{`resolver "dns.google": expected an IP address`}},
		{"unknown member directive", "pool a {\n members dns a.example.org {\n  ttl 5\n }\n}", 4, []string{`unknown directive "ttl"`}},
		{"kubeconfig that does not parse", "pool a {\n members kubernetes ns/web {\n  kubeconfig " + bad + "\n }\n}", 3, []string{"members kubernetes: kubeconfig " + bad}},
		{"missing kubeconfig", "pool a {\n members kubernetes ns/web {\n  kubeconfig /nonexistent/kc\n }\n}", 3, []string{"/nonexistent/kc"}},
		{"flatten with arguments", "pool a {\n address x.example.org\n flatten now\n}", 4, []string{"flatten: expected no arguments"}},
		{"block after address", "pool a {\n address 192.0.2.1 {\n }\n}", 3, []string{"unexpected block"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			input := "gtm gtm.example.net {\n" + tc.body + "\n}"
			_, err := parse(caddy.NewTestController("dns", input))
			if err == nil {
				t.Fatalf("no error for\n%s", input)
			}
			msg := err.Error()
			for _, w := range append([]string{"Testfile:" + itoa(tc.line) + " "}, tc.want...) {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
		})
	}
}
