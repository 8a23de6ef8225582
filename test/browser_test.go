package test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromium finds Debian's chromium; CI must have it (make test installs it), elsewhere the
// test is skipped with a message.
func chromium(t *testing.T) string {
	for _, p := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed: CI must run the status page test (make test installs it)")
	}
	t.Skip("chromium not installed; `make test` installs it")
	return ""
}

// browser starts headless Chromium for one test and stops it at the test's end.
func browser(t *testing.T, exe string, within time.Duration) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancel := context.WithTimeout(ctx, within)
	t.Cleanup(func() { cancel(); cancelCtx(); cancelAlloc() })
	return ctx
}

// TestStatusPageInBrowser loads the status page in headless Chromium against a running
// server, checks that a person sees domains, pools, addresses and events, changes an
// address through the API and sees the page follow.
func TestStatusPageInBrowser(t *testing.T) {
	exe := chromium(t)
	port := freePort(t)
	newBackend(t, "127.0.20.1", port)
	down := newBackend(t, "127.0.20.2", port)
	newBackend(t, "127.0.21.1", port)
	down.status.Store(503)

	dir := t.TempDir()
	token := writeFile(t, filepath.Join(dir, "token"), "page-token")
	apiAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	start(t, healthCorefile(port, fmt.Sprintf(`api %s {
            token_file %s
            public_read
            state %s
        }`, apiAddr, token, filepath.Join(dir, "state.json"))))

	ctx := browser(t, exe, 60*time.Second)
	err := chromedp.Do(ctx,
		chromedp.Navigate("http://"+apiAddr+"/"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-address="127.0.20.2"][data-state="down"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#events li`)),
	)
	if err != nil {
		t.Fatalf("status page did not render: %v", err)
	}
	text := func(sel string) string {
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	domains, pools, events := text("#domains"), text("#pools"), text("#events")
	for _, want := range []string{"www.gtm.example.net.", "primary → standby", "standby"} {
		if !strings.Contains(domains, want) {
			t.Errorf("domains table lacks %q:\n%s", want, domains)
		}
	}
	for _, want := range []string{"primary", "unavailable", "127.0.20.1", "127.0.21.1", "available"} {
		if !strings.Contains(pools, want) {
			t.Errorf("pools lack %q:\n%s", want, pools)
		}
	}
	if !strings.Contains(events, "127.0.20.2 is down") {
		t.Errorf("events lack the health change:\n%s", events)
	}

	// Drain an address through the API: the page follows within its refresh period.
	req, _ := http.NewRequest("PUT", "http://"+apiAddr+"/api/v1/pools/standby/addresses/127.0.21.1/mode", strings.NewReader(`{"mode":"down"}`))
	req.Header.Set("Authorization", "Bearer page-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("mode: %v %v", resp, err)
	}
	resp.Body.Close()
	err = chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.CSS(`tr[data-address="127.0.21.1"][data-state="down"]`)),
		chromedp.WaitVisible(chromedp.CSS(`span.kind.mode`)),
	)
	if err != nil {
		t.Fatalf("the page did not follow the override: %v", err)
	}
}
