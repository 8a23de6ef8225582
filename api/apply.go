package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/gtm-dns/coredns-gtm/config"
	"github.com/gtm-dns/coredns-gtm/state"
	"github.com/gtm-dns/coredns-gtm/state/etcd"
)

// Whole-configuration writes: PUT /api/v1/config makes the API-managed resources exactly
// those of the body (a saved GET /api/v1/config is such a body) in one commit, so an apply
// is all or nothing; POST /api/v1/cluster/restore puts a node's cache file back into a
// fleet's store that lost its data.

// maxConfigDoc bounds a whole configuration (a few thousand resources).
const maxConfigDoc = 8 << 20

// Change is one resource a whole-configuration write creates, updates or deletes.
type Change struct {
	Action string `json:"action"` // create, update, delete
	Kind   string `json:"kind"`
	Name   string `json:"name"`
}

// desiredConfig decodes a GET /api/v1/config body into the state keys of its API
// resources and their canonical values. "revision" is ignored, resources with
// "source":"corefile" are skipped (the Corefile's are not the API's to write), and so are
// API resources this node's Corefile defines (listed in skipped).
func (h *handler) desiredConfig(body []byte) (map[string][]byte, []string, config.Errors) {
	c := h.cfg.Control
	var top map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&top); err != nil {
		return nil, nil, config.Errors{{Message: "expected {\"healthchecks\":{NAME:{…}},\"pools\":{…},\"domains\":{…}}: " + err.Error()}}
	}
	out := map[string][]byte{}
	var skipped []string
	var errs config.Errors
	for k, raw := range top {
		if k == "revision" {
			continue
		}
		kind, ok := config.ParseKind(k)
		if !ok {
			errs = append(errs, &config.Error{Field: k, Message: fmt.Sprintf("unknown kind %q: expected healthchecks, pools or domains", k)})
			continue
		}
		var m map[string]map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			errs = append(errs, &config.Error{Field: k, Message: fmt.Sprintf("%s: expected {NAME: {…}}: %v", k, err)})
			continue
		}
		for name, fields := range m {
			label := kind.Singular() + " " + name
			var src string
			if s, ok := fields["source"]; ok {
				json.Unmarshal(s, &src)
				delete(fields, "source")
			}
			if src == "corefile" {
				continue
			}
			if kind == config.KindDomain {
				fq, ok := config.DomainName(name)
				if !ok {
					errs = append(errs, &config.Error{Resource: label, Message: fmt.Sprintf("domain %q is not a domain name", name)})
					continue
				}
				if config.InZones(c.Zones(), fq) == "" {
					errs = append(errs, &config.Error{Resource: label, Message: fmt.Sprintf("domain %q is outside the zones %s", name, strings.Join(c.Zones(), ", "))})
					continue
				}
				name = fq
			}
			if c.Corefile().Get(kind, name) != nil {
				skipped = append(skipped, string(kind)+"/"+name)
				continue
			}
			b, _ := json.Marshal(fields)
			res, err := config.Decode(kind, name, b, c.DefaultTTL())
			if err != nil {
				errs = append(errs, &config.Error{Resource: label, Message: err.Error()})
				continue
			}
			canon, err := config.Encode(res)
			if err != nil {
				errs = append(errs, &config.Error{Resource: label, Message: err.Error()})
				continue
			}
			out[state.ConfigKey(string(kind), name)] = canon
		}
	}
	sort.Strings(skipped)
	return out, skipped, errs
}

// configReplace is PUT /api/v1/config: the API-managed resources become those of the body,
// validated together and committed at once; nothing is written when any is refused. When
// the fleet's store went back in time, it is the operator's restore: the body and the
// node's last good overrides are written as a new epoch.
func (h *handler) configReplace(w http.ResponseWriter, r *http.Request) {
	c := h.cfg.Control
	body, ok := readBody(w, r, maxConfigDoc)
	if !ok {
		return
	}
	desired, skipped, errs := h.desiredConfig(body)
	if len(errs) > 0 {
		writeErrors(w, http.StatusBadRequest, errs.Error(), errs)
		return
	}
	st := c.Store()
	if !st.Durable() {
		writeError(w, http.StatusConflict, "configuration writes need somewhere to persist them: configure `state FILE` in the api block, or a cluster")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), writeTimeout)
	defer cancel()
	if st.Fault() != nil {
		if a := attemptOf(r); a != nil && a.tok != nil && a.tok.Scoped() {
			writeError(w, http.StatusForbidden, fmt.Sprintf("token %s: a restore of the fleet's store writes every resource; it needs a token without scopes", a.tok.Name))
			return
		}
		entries := map[string][]byte{}
		for k, e := range st.Data().Entries {
			if !strings.HasPrefix(k, state.ConfigPrefix) {
				entries[k] = e.Value // the last good modes, pins and holds
			}
		}
		for k, v := range desired {
			entries[k] = v
		}
		h.restore(w, r, entries, "a saved configuration")
		return
	}
	var changes []Change
	d, err := st.Update(ctx, func(data *state.Data) ([]state.Op, error) {
		changes = changes[:0]
		var ops []state.Op
		for _, k := range sortedKeys(desired) {
			cur, exists := data.Entries[k]
			if exists && bytes.Equal(cur.Value, desired[k]) {
				continue
			}
			ops = append(ops, state.Op{Key: k, Value: desired[k]})
			changes = append(changes, change(k, exists))
		}
		for _, k := range sortedKeys(data.Entries) {
			if _, keep := desired[k]; !keep && strings.HasPrefix(k, state.ConfigPrefix) {
				ops = append(ops, state.Op{Key: k})
				changes = append(changes, Change{Action: "delete", Kind: kindOf(k), Name: nameOf(k)})
			}
		}
		if len(ops) == 0 {
			return nil, nil
		}
		if err := allowKeys(r, ops); err != nil {
			return nil, &refusal{code: http.StatusForbidden, msg: err.Error()}
		}
		return ops, h.validate(data, ops, "", "", false)
	})
	if err != nil {
		h.writeFailed(w, "the configuration", err)
		return
	}
	w.Header().Set(RevisionHeader, strconv.FormatInt(d.Revision, 10))
	for _, ch := range changes {
		msg := fmt.Sprintf("%s %s: %sd through the API, in a whole-configuration write of %d changes (from %s)", singular(ch.Kind), ch.Name, ch.Action, len(changes), r.RemoteAddr)
		h.cfg.Log("admin API: %s", msg)
		h.cfg.Events.Add(Event{Token: actor(r), Kind: "config", Resource: ch.Kind + "/" + ch.Name, Action: ch.Action, Client: r.RemoteAddr, Message: msg})
	}
	if changes == nil {
		changes = []Change{}
	}
	out := map[string]any{"revision": d.Revision, "changes": changes}
	if len(skipped) > 0 {
		out["skipped"] = skipped // defined in this node's Corefile: left alone
	}
	writeJSON(w, http.StatusOK, out)
}

// clusterRestore is POST /api/v1/cluster/restore: the body is a node's cache file
// (`cluster { cache FILE }`); its state replaces the fleet's, as a new epoch every node
// takes. For a store that lost its data (etcd restored empty).
func (h *handler) clusterRestore(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r, maxConfigDoc)
	if !ok {
		return
	}
	d, info, err := etcd.ParseCache(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "not a cache file: "+err.Error())
		return
	}
	if cl, ok := h.cfg.Control.(Clustered); ok {
		if doc, ok := cl.Cluster(); ok && doc.Path != "" && info.Path != doc.Path {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("the cache file is a copy of path %s; this fleet's path is %s", info.Path, doc.Path))
			return
		}
	}
	entries := make(map[string][]byte, len(d.Entries))
	for k, e := range d.Entries {
		entries[k] = e.Value
	}
	h.restore(w, r, entries, fmt.Sprintf("a cache file of revision %d", info.Revision))
}

// restore validates a whole state and writes it as a new epoch of the fleet's store.
func (h *handler) restore(w http.ResponseWriter, r *http.Request, entries map[string][]byte, what string) {
	c := h.cfg.Control
	d := &state.Data{Entries: make(map[string]state.Entry, len(entries))}
	for k, v := range entries {
		d.Entries[k] = state.Entry{Value: v}
	}
	if _, errs := c.Merge(d); len(errs) > 0 {
		writeErrors(w, http.StatusBadRequest, "the state to restore does not validate against this node's Corefile: "+errs.Error(), errs)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), writeTimeout)
	defer cancel()
	nd, err := c.Store().Restore(ctx, entries)
	if err != nil {
		if errors.Is(err, state.ErrNoRestore) {
			writeError(w, http.StatusConflict, err.Error())
			return
		}
		h.writeFailed(w, "the restore", err)
		return
	}
	w.Header().Set(RevisionHeader, strconv.FormatInt(nd.Revision, 10))
	msg := fmt.Sprintf("cluster store restored from %s through the API (%d keys, new epoch %s, from %s)", what, len(entries), nd.Epoch, r.RemoteAddr)
	h.cfg.Log("admin API: %s", msg)
	h.cfg.Events.Add(Event{Token: actor(r), Kind: "config", Action: "restore", Client: r.RemoteAddr, Message: msg})
	writeJSON(w, http.StatusOK, map[string]any{"revision": nd.Revision, "epoch": nd.Epoch, "restored": len(entries)})
}

func change(key string, exists bool) Change {
	a := "create"
	if exists {
		a = "update"
	}
	return Change{Action: a, Kind: kindOf(key), Name: nameOf(key)}
}

func kindOf(key string) string {
	k, _, _ := strings.Cut(strings.TrimPrefix(key, state.ConfigPrefix), "/")
	return k
}

func nameOf(key string) string {
	_, n, _ := strings.Cut(strings.TrimPrefix(key, state.ConfigPrefix), "/")
	return n
}

func singular(kind string) string {
	if k, ok := config.ParseKind(kind); ok {
		return k.Singular()
	}
	return kind
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
