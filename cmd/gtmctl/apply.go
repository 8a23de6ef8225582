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

	"github.com/gtm-dns/coredns-gtm/config"
)

// readDesired reads every YAML (or JSON) document of file: each is
// {healthchecks: {NAME: {...}}, pools: {...}, domains: {...}} (a saved GET /api/v1/config
// too: its revision is ignored). A resource defined twice, across documents or by a key
// repeated within one, is an error: which one would win is not the reader's guess.
func readDesired(file string) (map[string]map[string]map[string]any, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	want := map[string]map[string]map[string]any{}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	for doc := 1; ; doc++ {
		var node yaml.Node
		err := dec.Decode(&node)
		if errors.Is(err, io.EOF) {
			if doc == 1 {
				return nil, fmt.Errorf("%s: no document", file)
			}
			return want, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %v", file, doc, err)
		}
		text, err := yaml.Marshal(&node)
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %v", file, doc, err)
		}
		js, err := sigsyaml.YAMLToJSONStrict(text) // refuses a key given twice
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
				continue
			}
			if _, ok := config.ParseKind(k); !ok {
				return nil, fmt.Errorf("%s: document %d: unknown kind %q: expected healthchecks, pools or domains", file, doc, k)
			}
			m := map[string]map[string]any{}
			if err := json.Unmarshal(v, &m); err != nil {
				return nil, fmt.Errorf("%s: document %d: %s: %v", file, doc, k, err)
			}
			if want[k] == nil {
				want[k] = map[string]map[string]any{}
			}
			for name, body := range m {
				if _, dup := want[k][name]; dup {
					return nil, fmt.Errorf("%s: document %d: %s/%s is defined in an earlier document too", file, doc, k, name)
				}
				want[k][name] = body
			}
		}
	}
}

// applyAll writes the whole desired configuration in one request (PUT /api/v1/config):
// the server commits every change or none. A server without it gets the changes one by
// one, which is not atomic, and says so.
func (c *cli) applyAll(want map[string]map[string]map[string]any, plan []change) error {
	body, err := json.Marshal(want)
	if err != nil {
		return err
	}
	b, hdr, err := c.call("PUT", "/api/v1/config"+c.waitQuery(), body, nil)
	var ae *apiError
	if errors.As(err, &ae) && (ae.code == http.StatusNotFound || ae.code == http.StatusMethodNotAllowed) {
		fmt.Fprintln(c.out, "! the server has no whole-configuration write (PUT /api/v1/config): applying one resource at a time, which is not atomic (a refused change leaves the earlier ones in place)")
		return c.applyEach(plan)
	}
	if err != nil {
		return err
	}
	var doc struct {
		Revision int64
		Changes  []struct{ Action, Kind, Name string }
		Skipped  []string
		Epoch    string
		Restored int
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("apply: bad answer: %v", err)
	}
	for _, s := range doc.Skipped {
		fmt.Fprintf(c.out, "! %s is defined in the server's Corefile: left alone\n", s)
	}
	switch {
	case doc.Epoch != "":
		fmt.Fprintf(c.out, "restored the fleet's store from %s: %d keys (the node's last good overrides kept), new epoch %s, revision %s\n", "the file", doc.Restored, doc.Epoch, hdr.Get("X-GTM-Revision"))
	case len(doc.Changes) == 0 && len(plan) == 0:
		// "no changes" is printed already
	default:
		fmt.Fprintf(c.out, "applied %d changes in one commit (revision %d)\n", len(doc.Changes), doc.Revision)
	}
	if c.wait {
		fmt.Fprintln(c.out, "in force on every live node")
	}
	return nil
}

// applyEach is apply against a server without PUT /api/v1/config.
func (c *cli) applyEach(plan []change) error {
	for i, ch := range plan {
		path := "/api/v1/config/" + ch.kind + "/" + url.PathEscape(ch.name) + c.waitQuery()
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
			var ae *apiError
			if errors.As(err, &ae) && ae.code == http.StatusPreconditionFailed {
				err = fmt.Errorf("%w (changed on the server since it was read: run again)", err)
			}
			return fmt.Errorf("%w; %d of %d changes were applied before it and stay", err, i, len(plan))
		}
	}
	fmt.Fprintf(c.out, "applied %d changes\n", len(plan))
	return nil
}

// waitQuery is the query of a write under --wait.
func (c *cli) waitQuery() string {
	if !c.wait {
		return ""
	}
	q := "?wait=synced"
	if c.waitTimeout > 0 {
		q += "&timeout=" + url.QueryEscape(c.waitTimeout.String())
	}
	return q
}

// restoreCache puts a node's cache file back into the fleet's store.
func (c *cli) restoreCache(file string) error {
	body, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	b, _, err := c.call("POST", "/api/v1/cluster/restore", body, nil)
	if err != nil {
		return err
	}
	var doc struct {
		Revision int64
		Epoch    string
		Restored int
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("restore: bad answer: %v", err)
	}
	fmt.Fprintf(c.out, "restored the fleet's store from %s: %d keys, new epoch %s, revision %d\n", file, doc.Restored, doc.Epoch, doc.Revision)
	return nil
}
