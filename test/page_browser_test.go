package test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/miekg/dns"
)

func pageCorefile(dnsPort, backPort int, apiAddr, token, state string) string {
	return fmt.Sprintf(`.:%d {
    bind 127.0.0.1
    gtm gtm.example.net {
        healthcheck web {
            protocol http
            port %d
            path /health
            interval 300ms
            timeout 200ms
            fall 2
            rise 2
        }
        pool primary {
            address 127.0.40.1
            address 127.0.40.2
            address 127.0.40.3
            lb all
            healthcheck web
        }
        pool standby {
            address 127.0.41.1
            address 127.0.41.2
            lb all
            healthcheck web
        }
        domain www.gtm.example.net {
            route net:10.0.0.0/8 standby
            route default primary standby
        }
        domain api.gtm.example.net {
            route default standby primary
        }
        api %s {
            token_file %s
            public_read
            state %s
        }
    }
}
`, dnsPort, backPort, apiAddr, token, state)
}

// TestStatusPageActions drives the status page of the built binary in headless Chromium:
// the server-rendered first paint without JavaScript, actions disabled until a token is
// entered, draining an address from the page (it leaves the real DNS answers and the page
// shows it, history included), API errors shown in the page, pin and unpin, pool drain,
// explain, and the token kept out of cookies and URLs. With GTM_SCREENSHOTS=1 it writes
// test/output/status-page.png and status-actions.png.
func TestStatusPageActions(t *testing.T) {
	exe := chromium(t)
	dir := t.TempDir()
	backPort := freePort(t)
	for _, ip := range []string{"127.0.40.1", "127.0.40.2", "127.0.41.1", "127.0.41.2"} {
		newBackend(t, ip, backPort)
	}
	newBackend(t, "127.0.40.3", backPort).status.Store(503)
	token := writeFile(t, filepath.Join(dir, "token"), "page-actions-token\n")
	dnsPort := freePort(t)
	apiAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	base := "http://" + apiAddr
	conf := writeFile(t, filepath.Join(dir, "Corefile"), pageCorefile(dnsPort, backPort, apiAddr, token, filepath.Join(dir, "state.json")))
	p := startBinary(t, dir, conf)
	s := &server{t: t, udp: fmt.Sprintf("127.0.0.1:%d", dnsPort), tcp: fmt.Sprintf("127.0.0.1:%d", dnsPort)}
	ask := func(name string) string {
		got := answers(s.ask(query{name: name, qtype: dns.TypeA}))
		slices.Sort(got)
		return join(got)
	}
	eventually(t, 20*time.Second, func() string {
		if _, err := s.exchange(query{name: "www.gtm.example.net", qtype: dns.TypeA}); err != nil {
			return "DNS not answering: " + err.Error() + "\n" + p.out.String()
		}
		if got := ask("www.gtm.example.net"); got != "127.0.40.1 127.0.40.2" {
			return "www answers " + got + ", want the two healthy primary addresses"
		}
		return ""
	})
	for range 30 { // answers for the history pictures
		ask("www.gtm.example.net")
		ask("api.gtm.example.net")
	}
	everything := []string{"www.gtm.example.net.", "api.gtm.example.net.", "primary", "standby",
		"127.0.40.1", "127.0.40.2", "127.0.40.3", "127.0.41.1", "127.0.41.2"}

	t.Run("without JavaScript", func(t *testing.T) {
		resp, err := http.Get(base + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		page := string(b)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("GET /: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		for _, want := range everything {
			if !strings.Contains(page, want) {
				t.Errorf("the page as served does not name %s", want)
			}
		}
		for _, want := range []string{
			`<tr data-address="127.0.40.1" data-state="up">`,
			`<tr data-address="127.0.40.3" data-state="down">`,
			`<span class="badge up">available</span>`,
			`<td>primary → standby</td>`,
		} {
			if !strings.Contains(page, want) {
				t.Errorf("the page as served lacks %s", want)
			}
		}
	})

	// Every request the browser makes, to check where the token goes.
	type sent struct {
		url  string
		auth string
	}
	var mu sync.Mutex
	var reqs []sent
	ctx := browser(t, exe, 120*time.Second)
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			auth, _ := e.Request.Headers["Authorization"].(string)
			mu.Lock()
			reqs = append(reqs, sent{e.Request.URL, auth})
			mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	js := func(t *testing.T, expr string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		return v
	}
	wait := func(t *testing.T, what, expr string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(15*time.Second))); err != nil {
			t.Fatalf("%s: %v\nresult box: %s", what, err, js(t, `document.getElementById("action-result").textContent`))
		}
	}
	// click clicks like a person; the page redraws every 2 s, so a node found may be
	// replaced before the click lands: find it again then.
	click := func(t *testing.T, sel string) {
		t.Helper()
		var err error
		for range 5 {
			if err = chromedp.Do(ctx, chromedp.WaitEnabled(chromedp.CSS(sel)), chromedp.Click(chromedp.CSS(sel))); err == nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("click %s: %v", sel, err)
	}
	screenshot := func(t *testing.T, name string) {
		t.Helper()
		if os.Getenv("GTM_SCREENSHOTS") != "1" {
			return
		}
		buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll("output", 0o755)
		if err := os.WriteFile(filepath.Join("output", name), buf, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: test/output/%s (%d bytes)", name, len(buf))
	}

	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-address="127.0.40.3"][data-state="down"]`)),
	); err != nil {
		t.Fatalf("the page did not load: %v", err)
	}
	wait(t, "the history pictures", `document.querySelectorAll("svg.tl").length === 5 && document.querySelector('.pool[data-pool="primary"] svg.bars') !== null`)

	t.Run("live page names everything", func(t *testing.T) {
		text := js(t, `document.querySelector("main").innerText`)
		for _, want := range everything {
			if !strings.Contains(text, want) {
				t.Errorf("the live page does not name %s", want)
			}
		}
		// The answers just asked are in the pictures: each domain asked 31+ times.
		total := js(t, `document.querySelector('.pool[data-pool="primary"] svg.bars').getAttribute("data-total") + "/" + document.querySelector('.pool[data-pool="standby"] svg.bars').getAttribute("data-total")`)
		var prim, stby int
		fmt.Sscanf(total, "%d/%d", &prim, &stby)
		if prim < 31 || stby < 30 {
			t.Errorf("answers drawn per pool (primary/standby): %s, want at least 31/30", total)
		}
		if st := js(t, `document.querySelector('tr[data-address="127.0.40.3"] svg.tl').getAttribute("data-states")`); !strings.HasSuffix(st, "down") {
			t.Errorf("127.0.40.3's timeline %q does not end down", st)
		}
	})

	t.Run("actions disabled without a token", func(t *testing.T) {
		got := js(t, `(() => { const b = [...document.querySelectorAll("button.act")]; return b.length + " " + b.filter((x) => !x.disabled).length; })()`)
		// 5 addresses, 2 pools x 2, 2 domains: 11 buttons, none enabled.
		if got != "11 0" {
			t.Fatalf("action buttons (count, enabled): %s, want 11 0", got)
		}
	})

	click(t, "#token-use") // an empty token changes nothing
	t.Run("an empty token enables nothing", func(t *testing.T) {
		if got := js(t, `String(document.querySelectorAll("button.act:not(:disabled)").length)`); got != "0" {
			t.Fatalf("%s buttons enabled by an empty token", got)
		}
	})
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS("#token"), "page-actions-token")); err != nil {
		t.Fatal(err)
	}
	click(t, "#token-use")
	wait(t, "actions enabled by the token", `document.querySelectorAll("button.act:not(:disabled)").length === 11`)
	screenshot(t, "status-page.png")

	t.Run("drain an address from the page", func(t *testing.T) {
		click(t, `button[data-action="drain"][data-address="127.0.40.1"]`)
		wait(t, "the page shows the drain", `document.querySelector('tr[data-address="127.0.40.1"][data-state="down"] button[data-action="restore"]') !== null`)
		if got := ask("www.gtm.example.net"); got != "127.0.40.2" {
			t.Errorf("after draining 127.0.40.1 from the page, www answers %s, want 127.0.40.2", got)
		}
		if msg := js(t, `document.getElementById("action-result").textContent`); !strings.Contains(msg, "127.0.40.1") || !strings.Contains(msg, "drained") {
			t.Errorf("the page says %q", msg)
		}
		wait(t, "the timeline shows the drain", `(document.querySelector('tr[data-address="127.0.40.1"] svg.tl') || {getAttribute() {}}).getAttribute("data-states") === "up,drained"`)
		wait(t, "the mode event", `[...document.querySelectorAll("#events li")].some((li) => li.textContent.includes("address 127.0.40.1 of pool primary set to mode down"))`)
	})

	t.Run("explain", func(t *testing.T) {
		if err := chromedp.Do(ctx,
			chromedp.SendKeys(chromedp.CSS("#ex-domain"), "www.gtm.example.net"),
			chromedp.SendKeys(chromedp.CSS("#ex-client"), "192.0.2.7"),
			chromedp.Click(chromedp.CSS("#ex-go")),
		); err != nil {
			t.Fatal(err)
		}
		wait(t, "the explain result", `document.getElementById("explain-answer") !== null`)
		text := js(t, `document.getElementById("explain-result").innerText`)
		for _, want := range []string{"www.gtm.example.net. A asked by 192.0.2.7 gets 127.0.40.2", "primary", "net:10.0.0.0/8", "no match", "matched by default", "Chosen: 127.0.40.2"} {
			if !strings.Contains(text, want) {
				t.Errorf("explain result lacks %q:\n%s", want, text)
			}
		}
		screenshot(t, "status-actions.png")
		// A bad client is the API's error, shown.
		if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.CSS("#ex-client"), "not-an-ip"), chromedp.Click(chromedp.CSS("#ex-go"))); err != nil {
			t.Fatal(err)
		}
		wait(t, "the explain error", `document.getElementById("explain-result").innerText.includes('client "not-an-ip": expected an IP address')`)
	})

	t.Run("restore", func(t *testing.T) {
		click(t, `button[data-action="restore"][data-address="127.0.40.1"]`)
		wait(t, "the page shows the restore", `document.querySelector('tr[data-address="127.0.40.1"][data-state="up"] button[data-action="drain"]') !== null`)
		if got := ask("www.gtm.example.net"); got != "127.0.40.1 127.0.40.2" {
			t.Errorf("after restoring 127.0.40.1, www answers %s", got)
		}
	})

	t.Run("pin and unpin", func(t *testing.T) {
		// Choose standby as a person does: the select changes and fires "change" (one step,
		// so a redraw cannot come in between).
		js(t, `(() => { const s = document.querySelector('select.pin-pool[data-domain="www.gtm.example.net."]'); s.value = "standby"; s.dispatchEvent(new Event("change", {bubbles: true})); return ""; })()`)
		click(t, `button[data-action="pin"][data-domain="www.gtm.example.net."]`)
		wait(t, "the pin shown", `document.querySelector('button[data-action="unpin"][data-domain="www.gtm.example.net."]') !== null`)
		if got := ask("www.gtm.example.net"); got != "127.0.41.1 127.0.41.2" {
			t.Errorf("pinned to standby from the page, www answers %s", got)
		}
		click(t, `button[data-action="unpin"][data-domain="www.gtm.example.net."]`)
		wait(t, "the unpin shown", `document.querySelector('button[data-action="unpin"]') === null`)
		if got := ask("www.gtm.example.net"); got != "127.0.40.1 127.0.40.2" {
			t.Errorf("unpinned from the page, www answers %s", got)
		}
	})

	t.Run("drain and restore a pool", func(t *testing.T) {
		click(t, `button[data-action="drain-pool"][data-pool="standby"]`)
		wait(t, "the pool drained", `document.querySelectorAll('.pool[data-pool="standby"] tr[data-state="down"]').length === 2`)
		if got := ask("api.gtm.example.net"); got != "127.0.40.1 127.0.40.2" {
			t.Errorf("standby drained from the page, api answers %s, want the primary addresses", got)
		}
		click(t, `button[data-action="restore-pool"][data-pool="standby"]`)
		wait(t, "the pool restored", `document.querySelectorAll('.pool[data-pool="standby"] tr[data-state="up"]').length === 2`)
		if got := ask("api.gtm.example.net"); got != "127.0.41.1 127.0.41.2" {
			t.Errorf("standby restored, api answers %s", got)
		}
	})

	t.Run("API errors shown", func(t *testing.T) {
		click(t, "#token-forget")
		wait(t, "actions disabled again", `document.querySelectorAll("button.act:not(:disabled)").length === 0`)
		if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS("#token"), "wrong-token"), chromedp.Click(chromedp.CSS("#token-use"))); err != nil {
			t.Fatal(err)
		}
		click(t, `button[data-action="drain"][data-address="127.0.40.2"]`)
		wait(t, "the 401 shown", `document.getElementById("action-result").textContent.includes("missing or wrong bearer token")`)
		if got := ask("www.gtm.example.net"); got != "127.0.40.1 127.0.40.2" {
			t.Errorf("a refused drain changed the answers: %s", got)
		}
	})

	t.Run("token kept out of cookies and URLs", func(t *testing.T) {
		if c := js(t, `document.cookie`); c != "" {
			t.Errorf("document.cookie = %q", c)
		}
		if v := js(t, `sessionStorage.getItem("gtm-token") + "|" + localStorage.length`); v != "wrong-token|0" {
			t.Errorf("storage: %s, want the token in sessionStorage only", v)
		}
		mu.Lock()
		defer mu.Unlock()
		var authed int
		for _, r := range reqs {
			if strings.Contains(r.url, "token") {
				t.Errorf("a request URL carries the token: %s", r.url)
			}
			if r.auth != "" {
				authed++
				if r.auth != "Bearer page-actions-token" && r.auth != "Bearer wrong-token" {
					t.Errorf("Authorization %q", r.auth)
				}
			}
		}
		if authed == 0 {
			t.Error("no request carried the bearer header")
		}
	})

	// The state behind it: the API agrees with what the page showed.
	var st struct {
		Domains []struct{ Name, Pinned string }
		Pools   []struct {
			Name      string
			Addresses []struct{ Address, Mode string }
		}
	}
	if err := json.Unmarshal([]byte(get(t, base+"/api/v1/status", "")), &st); err != nil {
		t.Fatal(err)
	}
	for _, pl := range st.Pools {
		for _, a := range pl.Addresses {
			if a.Mode != "auto" {
				t.Errorf("%s/%s left in mode %s", pl.Name, a.Address, a.Mode)
			}
		}
	}
}
