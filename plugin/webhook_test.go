package gtm

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/coredns/caddy"
)

func TestParseWebhooks(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	os.WriteFile(secret, []byte("s3cret value\n"), 0o600)
	b, err := parse(caddy.NewTestController("dns", `gtm gtm.example.net {
    api 127.0.0.1:8080 {
        public_read
        webhook https://hooks.example.com/gtm?token=x {
            secret `+secret+`
            events health failover health
        }
        webhook http://127.0.0.1:9000/
        webhook http://127.0.0.1:9001/ {
            name pager
        }
    }
}`))
	if err != nil {
		t.Fatal(err)
	}
	hs := b.api.webhooks
	if len(hs) != 3 || !b.api.publicRead {
		t.Fatalf("webhooks %+v", hs)
	}
	if h := hs[0]; h.url != "https://hooks.example.com/gtm?token=x" || string(h.secret) != "s3cret value" || !slices.Equal(h.kinds, []string{"health", "failover"}) || h.name != "1" || h.line != 4 {
		t.Errorf("first webhook %+v", h)
	}
	if h := hs[1]; h.secret != nil || h.kinds != nil || h.name != "2" {
		t.Errorf("second webhook %+v: want no secret, every kind, name 2", h)
	}
	if hs[2].name != "pager" {
		t.Errorf("third webhook named %q", hs[2].name)
	}
}

func TestParseWebhookErrors(t *testing.T) {
	dir := t.TempDir()
	empty, secret := filepath.Join(dir, "empty"), filepath.Join(dir, "secret")
	os.WriteFile(empty, []byte("\n"), 0o600)
	os.WriteFile(secret, []byte("x"), 0o600)
	missing := filepath.Join(dir, "nope")
	for _, tc := range []struct {
		name, body string
		line       int
		want       []string
	}{
		{"no url", "webhook", 3, []string{"webhook: expected URL"}},
		{"two urls", "webhook http://a.example/ http://b.example/", 3, []string{"webhook: expected URL"}},
		{"not http", "webhook ftp://a.example/", 3, []string{`"ftp://a.example/"`, "http:// or https://"}},
		{"no scheme", "webhook a.example/hook", 3, []string{"http:// or https://"}},
		{"missing secret file", "webhook http://a.example/ {\n secret " + missing + "\n}", 4, []string{"webhook http://a.example/: secret", missing}},
		{"empty secret file", "webhook http://a.example/ {\n secret " + empty + "\n}", 4, []string{"secret file", "is empty"}},
		{"secret without file", "webhook http://a.example/ {\n secret\n}", 4, []string{"secret: expected FILE"}},
		{"unknown kind", "webhook http://a.example/ {\n secret " + secret + "\n events health reboot\n}", 5, []string{`unknown kind "reboot"`, "health, failover, failopen, fallback, hold, failback, mode, pin, config, reload, cluster"}},
		{"events without kinds", "webhook http://a.example/ {\n events\n}", 4, []string{"events: expected KIND"}},
		{"unknown option", "webhook http://a.example/ {\n retries 3\n}", 4, []string{`unknown directive "retries"`, "secret, events or name"}},
		{"bad name", "webhook http://a.example/ {\n name a/b\n}", 4, []string{"name: expected one NAME"}},
		{"same url twice", "webhook http://a.example/\n webhook http://a.example/", 4, []string{"listed twice (first on line 3)"}},
		{"same name twice", "webhook http://a.example/ {\n name x\n}\n webhook http://b.example/ {\n name x\n}", 6, []string{`name "x" is also the name of the webhook of line 3`}},
		{"nested block in a webhook", "webhook http://a.example/ {\n events {\n}\n}", 4, []string{"unexpected block"}},
		{"other api directive with a block", "state x {\n}", 3, []string{`api: unexpected block after "state"`}},
		{"unknown api directive", "hook http://a.example/", 3, []string{"token_file, token, tls, audit, public_read, state or webhook"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			input := "gtm gtm.example.net {\napi 127.0.0.1:8080 {\n" + tc.body + "\n}\n}"
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

func FuzzParseWebhook(f *testing.F) {
	f.Add("gtm gtm.example.net {\n api 127.0.0.1:8080 {\n webhook https://h.example/x {\n events health pin\n name a\n }\n }\n}")
	f.Add("gtm gtm.example.net {\n api 127.0.0.1:8080 {\n webhook http://h.example/ {\n }\n webhook http://[::1]:9/ \n }\n}")
	f.Fuzz(func(t *testing.T, input string) {
		// Must never panic; errors are fine.
		parse(caddy.NewTestController("dns", input))
	})
}
