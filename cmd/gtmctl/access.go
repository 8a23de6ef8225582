package main

import (
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/gtm-dns/coredns-gtm/client"
)

// tlsOptions are the client's settings for an API served with `tls`: the CA that signed
// the server's certificate (--cacert; default: the system's), and a client certificate
// (--cert, --key) when the server requires one.
func tlsOptions(cacert, cert, key string) (client.Options, error) {
	var o client.Options
	if (cert == "") != (key == "") {
		return o, fmt.Errorf("--cert and --key go together")
	}
	if cacert != "" {
		pem, err := os.ReadFile(cacert)
		if err != nil {
			return o, fmt.Errorf("--cacert: %v", err)
		}
		if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			return o, fmt.Errorf("--cacert %s: no PEM certificate in it", cacert)
		}
		o.CACert = pem
	}
	o.CertFile, o.KeyFile = cert, key
	return o, nil
}

// auditRecord is a record of GET /api/v1/audit.
type auditRecord struct {
	ID       uint64          `json:"id"`
	Time     time.Time       `json:"time"`
	Token    string          `json:"token"`
	Client   string          `json:"client"`
	Method   string          `json:"method"`
	Path     string          `json:"path"`
	Resource string          `json:"resource"`
	Before   json.RawMessage `json:"before"`
	After    json.RawMessage `json:"after"`
	Status   int             `json:"status"`
	Error    string          `json:"error,omitempty"`
	Node     string          `json:"node,omitempty"`
}

// auditPage is the most records one call asks for.
const auditPage = 1000

// audit prints the audit log: the latest records, or every record after since (all pages),
// then with follow keeps polling. asJSON prints each record as a JSON line, the form of
// the audit file: an export.
func (c *cli) audit(since *uint64, follow, asJSON bool, every time.Duration) error {
	for {
		q := fmt.Sprintf("/api/v1/audit?limit=%d", auditPage)
		if since != nil {
			q += fmt.Sprintf("&since=%d", *since)
		}
		var doc struct {
			Records []auditRecord
			Last    uint64
		}
		if err := c.getJSON(q, &doc); err != nil {
			return err
		}
		for _, r := range doc.Records {
			if asJSON {
				b, _ := json.Marshal(r)
				fmt.Fprintf(c.out, "%s\n", b)
				continue
			}
			line := fmt.Sprintf("%d %s %s %s %s %s %d %s", r.ID, r.Time.UTC().Format(time.RFC3339), r.Token, r.Client, r.Method, r.Path, r.Status, r.Resource)
			if r.Node != "" {
				line += " node=" + r.Node
			}
			if r.Error != "" {
				line += ": " + r.Error
			}
			fmt.Fprintln(c.out, line)
		}
		last := doc.Last
		if since != nil && *since > last {
			last = *since
		}
		since = &last
		if len(doc.Records) == auditPage {
			continue // more pages
		}
		if !follow {
			return nil
		}
		time.Sleep(every)
	}
}
