package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"

	"go.yaml.in/yaml/v3"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/gtm-dns/coredns-gtm/client"
	"github.com/gtm-dns/coredns-gtm/config"
)

// The whole-configuration side of apply: the file's every document, one commit on the
// server (PUT /api/v1/config), --wait, and restore --from-cache.

// desiredSet is what a file asks for: kind → name → the resource's JSON fields.
type desiredSet map[string]map[string]map[string]any

// readDesired reads every YAML (or JSON) document of file: each is
// {healthchecks: {NAME: {...}}, pools: {...}, domains: {...}} (a saved GET /api/v1/config
// too: its revision is ignored). A resource defined twice, across documents or by a key
// repeated within one, is an error: which one would win is not the reader's guess.
func readDesired(file string) (desiredSet, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	want := desiredSet{}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	for doc := 1; ; doc++ {
		var node yaml.Node
		err := dec.Decode(&node)
		if errors.Is(err, io.EOF) {
			if doc == 1 {
				return nil, fmt.Errorf("%s: no document (an empty configuration is {})", file)
			}
			return want, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %v", file, doc, err)
		}
		// Re-encoded and read strictly: the node keeps a key given twice, the strict
		// reader refuses it (a plain decode would let the last one win silently).
		text, err := yaml.Marshal(&node)
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %v", file, doc, err)
		}
		js, err := sigsyaml.YAMLToJSONStrict(text)
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %v", file, doc, err)
		}
		if bytes.Equal(bytes.TrimSpace(js), []byte("null")) {
			continue // an empty document (a trailing ---)
		}
		var top map[string]json.RawMessage
		if err := json.Unmarshal(js, &top); err != nil {
			return nil, fmt.Errorf("%s: document %d: expected {healthchecks: {NAME: {...}}, pools: {...}, domains: {...}}: %v", file, doc, err)
		}
		for k, v := range top {
			if k == "revision" {
				continue // a saved GET /api/v1/config
			}
			if _, ok := config.ParseKind(k); !ok {
				return nil, fmt.Errorf("%s: document %d: unknown kind %q: expected healthchecks, pools or domains", file, doc, k)
			}
			m := map[string]map[string]any{}
			if err := json.Unmarshal(v, &m); err != nil {
				return nil, fmt.Errorf("%s: document %d: %s: expected {NAME: {...}}: %v", file, doc, k, err)
			}
			if want[k] == nil {
				want[k] = map[string]map[string]any{}
			}
			for name, body := range m {
				if _, dup := want[k][name]; dup {
					return nil, fmt.Errorf("%s: document %d: %s/%s is defined in an earlier document too", file, doc, k, name)
				}
				if body == nil {
					body = map[string]any{}
				}
				want[k][name] = body
			}
		}
	}
}

// applyAll writes the whole desired configuration in one request (PUT /api/v1/config):
// the server validates it together and commits every change or none. A server without
// that endpoint gets the changes one by one, which is not atomic, and gtmctl says so.
func (c *cli) applyAll(want desiredSet, plan []change) error {
	body, err := json.Marshal(want)
	if err != nil {
		return err
	}
	b, hdr, err := c.call("PUT", "/api/v1/config", body, nil) // with --wait the client adds ?wait=synced
	if s := client.StatusOf(err); s == http.StatusNotFound || s == http.StatusMethodNotAllowed {
		fmt.Fprintln(c.out, "! the server has no whole-configuration write (PUT /api/v1/config): applying one resource at a time, which is not atomic (a refused change leaves the earlier ones in place)")
		return c.applyEach(plan)
	}
	if err != nil {
		return c.waitFailed(err)
	}
	var doc struct {
		Revision int64
		Changes  []struct{ Action, Kind, Name string }
		Skipped  []string
		Epoch    string
		Restored int
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("apply: unexpected answer: %v", err)
	}
	for _, s := range doc.Skipped {
		fmt.Fprintf(c.out, "! %s is defined in the server's Corefile: left alone\n", s)
	}
	switch {
	case doc.Epoch != "":
		fmt.Fprintf(c.out, "restored the fleet's store from the file: %d keys (the node's last good overrides kept), new epoch %s, revision %s\n", doc.Restored, doc.Epoch, hdr.Get("X-GTM-Revision"))
	case len(doc.Changes) == 0 && len(plan) == 0:
		// "no changes" is printed already
	default:
		fmt.Fprintf(c.out, "applied %d changes in one commit (revision %d)\n", len(doc.Changes), doc.Revision)
	}
	if c.wait {
		fmt.Fprintf(c.out, "in force on every live node (revision %s)\n", hdr.Get("X-GTM-Revision"))
	}
	return nil
}

// applyEach is apply against a server without PUT /api/v1/config.
func (c *cli) applyEach(plan []change) error {
	for i, ch := range plan {
		path := "/api/v1/config/" + ch.kind + "/" + url.PathEscape(ch.name)
		var err error
		switch ch.op {
		case "create":
			_, _, err = c.call("PUT", path, ch.body, map[string]string{"If-None-Match": "*"})
		case "update":
			_, _, err = c.call("PUT", path, ch.body, map[string]string{"If-Match": ch.etag})
		case "delete":
			_, _, err = c.call("DELETE", path, nil, map[string]string{"If-Match": ch.etag})
		}
		if err != nil {
			if client.StatusOf(err) == http.StatusPreconditionFailed {
				err = fmt.Errorf("%w (changed on the server since it was read: run again)", err)
			}
			return fmt.Errorf("%w; %d of %d changes were applied before it and stay", c.waitFailed(err), i, len(plan))
		}
	}
	fmt.Fprintf(c.out, "applied %d changes\n", len(plan))
	return nil
}

// waitFailed explains a 504 of --wait: the write is in, some node had not applied it.
func (c *cli) waitFailed(err error) error {
	if c.wait && client.StatusOf(err) == http.StatusGatewayTimeout {
		return fmt.Errorf("%w (with --wait: the write stands; the nodes named had not applied it in time, or the outcome is unknown: check with gtmctl get)", err)
	}
	return err
}

// restoreCache puts a node's cache file (cluster { cache FILE }) back into the fleet's
// store: for an etcd that lost its data.
func (c *cli) restoreCache(file string) error {
	body, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	b, _, err := c.call("POST", "/api/v1/cluster/restore", body, nil)
	if err != nil {
		return c.waitFailed(err)
	}
	var doc struct {
		Revision int64
		Epoch    string
		Restored int
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("restore: unexpected answer: %v", err)
	}
	fmt.Fprintf(c.out, "restored the fleet's store from %s: %d keys, new epoch %s, revision %d\n", file, doc.Restored, doc.Epoch, doc.Revision)
	return nil
}
