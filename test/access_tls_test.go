package test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gtm-dns/coredns-gtm/internal/testca"
)

// tlsClient trusts ca and presents the client certificate cert/key (when given).
func tlsClient(t *testing.T, ca *testca.CA, cert, key string) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	cfg := &tls.Config{RootCAs: pool}
	if cert != "" {
		kp, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{kp}
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
}

// servedCert is the certificate the server at addr presents.
func servedCert(t *testing.T, addr string, ca *testca.CA, cert, key string) (*x509.Certificate, error) {
	t.Helper()
	cfg := tlsClient(t, ca, cert, key).Transport.(*http.Transport).TLSClientConfig
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.Handshake(); err != nil {
		return nil, err
	}
	return c.ConnectionState().PeerCertificates[0], nil
}

// TestAPIOverTLS: the API and the status page over HTTPS with a CA made here; the page in
// headless Chromium; a reload (what SIGUSR1 does) reads renewed certificates and turns on
// required client certificates: a client without one is refused, one with it served.
func TestAPIOverTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testca.New(t)
	cert1, key1 := ca.Server(t, dir, "server1", "127.0.0.1")
	token := writeFile(t, filepath.Join(dir, "token"), "tls-token-4a9c")
	apiAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	corefile := func(tlsLine string) string {
		return fmt.Sprintf(".:0 {\n bind 127.0.0.1\n gtm gtm.example.net {\n api %s {\n token_file %s\n public_read\n %s\n }\n pool a {\n address 192.0.2.1\n }\n domain www.gtm.example.net {\n route default a\n }\n }\n}",
			apiAddr, token, tlsLine)
	}
	s := start(t, corefile("tls "+cert1+" "+key1))
	base := "https://" + apiAddr
	client := tlsClient(t, ca, "", "")
	if code, body := apiCall(t, client, "GET", base+"/api/v1/status", "", ""); code != 200 || !strings.Contains(body, "www.gtm.example.net.") {
		t.Fatalf("status over HTTPS: %d %s", code, body)
	}
	if code, body := apiCall(t, client, "PUT", base+"/api/v1/pools/a/addresses/192.0.2.1/mode", "tls-token-4a9c", `{"mode":"down"}`); code != 200 {
		t.Fatalf("write over HTTPS: %d %s", code, body)
	}
	// Plain HTTP on the HTTPS port is not served.
	if resp, err := http.Get("http://" + apiAddr + "/api/v1/status"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plain HTTP served on the TLS listener")
		}
	}

	t.Run("page in Chromium", func(t *testing.T) {
		exe := chromium(t)
		served, err := servedCert(t, apiAddr, ca, "", "")
		if err != nil {
			t.Fatal(err)
		}
		spki := sha256.Sum256(served.RawSubjectPublicKeyInfo)
		opts := append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath(exe),
			chromedp.Flag("headless", true),
			chromedp.Flag("no-sandbox", true),
			chromedp.Flag("disable-gpu", true),
			chromedp.Flag("disable-background-networking", true),
			// Trust exactly the test server's key (the CA is not in the system store).
			chromedp.Flag("ignore-certificate-errors-spki-list", base64.StdEncoding.EncodeToString(spki[:])),
			chromedp.UserDataDir(t.TempDir()),
		)
		actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		defer cancelAlloc()
		ctx, cancelCtx := chromedp.NewContext(actx)
		defer cancelCtx()
		ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		err = chromedp.Do(ctx,
			chromedp.Navigate(base+"/"),
			chromedp.WaitVisible(chromedp.CSS(`#pools`)),
			// app.js redraws the audit list from GET /api/v1/audit over HTTPS.
			chromedp.Poll[chromedp.Void](`document.querySelector("#audit li[data-audit]") !== null && document.getElementById("banner").hidden`,
				chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second)),
		)
		if err != nil {
			t.Fatalf("the page over HTTPS: %v", err)
		}
		audit, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#audit`)))
		if err != nil {
			t.Fatal(err)
		}
		proto, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.protocol`))
		if err != nil {
			t.Fatal(err)
		}
		if proto != "https:" || !strings.Contains(audit, "token_file PUT modes/a/192.0.2.1") {
			t.Fatalf("page over %s, audit list %q", proto, audit)
		}
	})

	// Renewed certificate and required client certificates, read at the reload.
	cert2, key2 := ca.Server(t, dir, "server2", "127.0.0.1")
	ccert, ckey := ca.Client(t, dir, "operator")
	if err := s.reload(corefile("tls " + cert2 + " " + key2 + " " + ca.CertFile)); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(cert2)
	eventually(t, 5*time.Second, func() string {
		got, err := servedCert(t, apiAddr, ca, ccert, ckey)
		if err != nil {
			return err.Error()
		}
		if !strings.Contains(string(want), base64.StdEncoding.EncodeToString(got.Raw)[:40]) {
			return "still the old certificate"
		}
		return ""
	})
	if code, _ := apiCall(t, tlsClient(t, ca, ccert, ckey), "GET", base+"/api/v1/status", "", ""); code != 200 {
		t.Fatalf("with a client certificate: %d", code)
	}
	req, _ := http.NewRequest("GET", base+"/api/v1/status", nil)
	if resp, err := tlsClient(t, ca, "", "").Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("served without a client certificate: %d", resp.StatusCode)
	}
	// A client certificate of another CA is refused too.
	other := testca.New(t)
	ocert, okey := other.Client(t, dir, "stranger")
	if _, err := servedCert(t, apiAddr, ca, ocert, okey); err == nil {
		if resp, err := tlsClient(t, ca, ocert, okey).Do(req); err == nil {
			resp.Body.Close()
			t.Fatal("served a client certificate of another CA")
		}
	}
}
