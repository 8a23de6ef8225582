package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdtest "github.com/coredns/coredns/test"
)

// gtmctl failback releases a hold: drain the primary (the route fails over and is held on
// the standby), restore it (still held), then failback (back on the primary).
func TestFailback(t *testing.T) {
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	os.WriteFile(token, []byte("ctl-token\n"), 0o600)
	api := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	inst, _, _, err := cdtest.CoreDNSServerAndPorts(fmt.Sprintf(`.:0 {
    bind 127.0.0.1
    gtm gtm.example.net {
        api %s {
            token_file %s
            state %s
        }
        pool core {
            address 192.0.2.1
        }
        pool standby {
            address 192.0.2.9
        }
        domain www.gtm.example.net {
            route default core standby
            failback manual
        }
    }
}`, api, token, filepath.Join(dir, "state.json")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inst.ShutdownCallbacks(); inst.Stop() })
	server := "http://" + api

	if out := must(t, server, token, "failback", "www.gtm.example.net"); !strings.Contains(out, "nothing was held") || !strings.Contains(out, "route default: now core") {
		t.Errorf("failback with nothing held: %s", out)
	}
	must(t, server, token, "drain", "192.0.2.1")
	held := false
	for i := 0; i < 100 && !held; i++ {
		held = strings.Contains(must(t, server, token, "status"), "held on standby")
		time.Sleep(50 * time.Millisecond)
	}
	if !held {
		t.Fatalf("not held on standby after the drain: %s", must(t, server, token, "status"))
	}
	must(t, server, token, "restore", "192.0.2.1")
	if out := must(t, server, token, "status"); !strings.Contains(out, "now standby (held on standby") {
		t.Errorf("restored primary, failback manual: %s", out)
	}
	if out := must(t, server, token, "failback", "www.gtm.example.net"); !strings.Contains(out, "released the holds of route default") || !strings.Contains(out, "route default: now core") {
		t.Errorf("failback: %s", out)
	}
	if _, errs, code := ctl(t, server, token, "failback", "nope.gtm.example.net"); code != 1 || !strings.Contains(errs, "no managed domain") {
		t.Errorf("failback of an unknown domain: exit %d: %s", code, errs)
	}
	if _, _, code := ctl(t, server, token, "failback"); code != 2 {
		t.Errorf("failback without DOMAIN: exit %d, want 2", code)
	}
}
