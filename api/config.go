package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gtm-dns/coredns-gtm/config"
	"github.com/gtm-dns/coredns-gtm/state"
	"github.com/gtm-dns/coredns-gtm/state/etcd"
)

// Control is what the handler needs of a gtm block to manage its configuration: the store
// that owns run-time state, and the block's rules for what a state means.
type Control interface {
	// Store is the owner of API resources, modes and pins.
	Store() *state.Store
	// Merge returns the configuration that state d puts in force (the Corefile's resources
	// and the API's, validated together), or every error.
	Merge(d *state.Data) (*config.Config, config.Errors)
	// Corefile returns the block's own resources (read-only through the API).
	Corefile() *config.Config
	// InForce returns the configuration the query path answers from.
	InForce() *config.Config
	// Revision is the state revision in force.
	Revision() int64
	// DefaultTTL is the block's TTL, the default of a domain's.
	DefaultTTL() uint32
	// Zones are the block's zones: domains must be inside them.
	Zones() []string
}

// writeTimeout bounds a commit to the store (an unreachable cluster answers within it).
const writeTimeout = 5 * time.Second

// resourceDoc is a resource's settings plus where it is defined.
func resourceDoc(r config.Resource) (map[string]any, error) {
	b, err := config.Encode(r)
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	doc["source"] = string(config.MetaOf(r).Source)
	return doc, nil
}

func (h *handler) configAll(w http.ResponseWriter, r *http.Request) {
	c := h.cfg.Control
	res := c.InForce()
	out := map[string]any{"revision": c.Revision()}
	for _, k := range config.Kinds {
		m := map[string]any{}
		var list []config.Resource
		switch k {
		case config.KindHealthCheck:
			for _, x := range res.HealthChecks {
				list = append(list, x)
			}
		case config.KindPool:
			for _, x := range res.Pools {
				list = append(list, x)
			}
		case config.KindDomain:
			for _, x := range res.Domains {
				list = append(list, x)
			}
		}
		for _, x := range list {
			doc, err := resourceDoc(x)
			if err != nil {
				writeError(w, http.StatusInternalServerError, err.Error())
				return
			}
			m[config.MetaOf(x).Name] = doc
		}
		out[string(k)] = m
	}
	writeJSON(w, http.StatusOK, out)
}

// target reads {kind} and {name} of a config path; domain names are canonical FQDNs.
func (h *handler) target(w http.ResponseWriter, r *http.Request) (config.Kind, string, bool) {
	kind, ok := config.ParseKind(r.PathValue("kind"))
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such resource kind %q: expected healthchecks, pools or domains", r.PathValue("kind")))
		return "", "", false
	}
	name := r.PathValue("name")
	if kind == config.KindDomain {
		fqdn, valid := config.DomainName(name)
		if !valid {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("domain %q is not a domain name", name))
			return "", "", false
		}
		if config.InZones(h.cfg.Control.Zones(), fqdn) == "" {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("domain %q is outside the zones %s", name, strings.Join(h.cfg.Control.Zones(), ", ")))
			return "", "", false
		}
		name = fqdn
	}
	return kind, name, true
}

func etag(e state.Entry) string { return `"` + strconv.FormatInt(e.Revision, 10) + `"` }

// corefileETag is the tag of a Corefile resource: it changes only with a reload.
const corefileETag = `"corefile"`

func (h *handler) configGet(w http.ResponseWriter, r *http.Request) {
	kind, name, ok := h.target(w, r)
	if !ok {
		return
	}
	c := h.cfg.Control
	// An API resource's body and ETag come from one state: the snapshot in force may lag
	// the store by a compile, and a stale body under a new ETag would let an If-Match
	// writer build on old data.
	tag := corefileETag
	res := c.Corefile().Get(kind, name)
	if res == nil {
		e, ok := c.Store().Data().Entries[state.ConfigKey(string(kind), name)]
		if ok {
			if r, err := config.Decode(kind, name, e.Value, c.DefaultTTL()); err == nil {
				res, tag = r, etag(e)
			}
		}
	}
	if res == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no %s %q", kind.Singular(), name))
		return
	}
	doc, err := resourceDoc(res)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("ETag", tag)
	writeJSON(w, http.StatusOK, doc)
}

// readBody reads a request body of at most limit bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, bool) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", limit))
		} else {
			writeError(w, http.StatusBadRequest, "could not read the request body: "+err.Error())
		}
		return nil, false
	}
	return b, true
}

// maxConfigBody bounds a resource body: a pool of a few thousand addresses fits.
const maxConfigBody = 1 << 20

func (h *handler) configPut(w http.ResponseWriter, r *http.Request) {
	kind, name, ok := h.target(w, r)
	if !ok {
		return
	}
	body, ok := readBody(w, r, maxConfigBody)
	if !ok {
		return
	}
	c := h.cfg.Control
	res, err := config.Decode(kind, name, body, c.DefaultTTL())
	if err != nil {
		writeErrors(w, http.StatusBadRequest, err.Error(), nil)
		return
	}
	canonical, err := config.Encode(res)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	key := state.ConfigKey(string(kind), name)
	h.write(w, r, kind, name, key, canonical, func(created bool) {
		doc, _ := resourceDoc(res)
		code := http.StatusOK
		if created {
			code = http.StatusCreated
		}
		writeJSON(w, code, doc)
	})
}

func (h *handler) configDelete(w http.ResponseWriter, r *http.Request) {
	kind, name, ok := h.target(w, r)
	if !ok {
		return
	}
	key := state.ConfigKey(string(kind), name)
	h.write(w, r, kind, name, key, nil, func(bool) { w.WriteHeader(http.StatusNoContent) })
}

// refusal is a write refused before anything was committed: its status and message.
type refusal struct {
	code int
	msg  string
	errs config.Errors
}

func (e *refusal) Error() string { return e.msg }

// write is the one path of a config write: refuse what touches the Corefile or cannot
// persist, then, in one state.Update, check the preconditions and validate the whole
// configuration the write leaves against the state the commit is checked against (a fleet
// node's view may lag: another node's write makes the commit run again on the state now),
// and only then answer. value nil deletes.
func (h *handler) write(w http.ResponseWriter, r *http.Request, kind config.Kind, name, key string, value []byte, done func(created bool)) {
	c := h.cfg.Control
	label := kind.Singular() + " " + name
	if res := c.Corefile().Get(kind, name); res != nil {
		writeError(w, http.StatusConflict, fmt.Sprintf("%s is defined in the Corefile (line %d): Corefile resources are read-only through the API", label, config.MetaOf(res).Line))
		return
	}
	st := c.Store()
	if !st.Durable() {
		writeError(w, http.StatusConflict, "configuration writes need somewhere to persist them: configure `state FILE` in the api block, or a cluster")
		return
	}
	var existed bool
	ctx, cancel := context.WithTimeout(r.Context(), writeTimeout)
	defer cancel()
	d, err := st.Update(ctx, func(data *state.Data) ([]state.Op, error) {
		cur, exists := data.Entries[key]
		if value == nil && !exists {
			return nil, &refusal{code: http.StatusNotFound, msg: fmt.Sprintf("no %s %q", kind.Singular(), name)}
		}
		if code, msg := preconditions(r, cur, exists); code != 0 {
			return nil, &refusal{code: code, msg: msg}
		}
		op := state.Op{Key: key, Value: value, Check: true, Revision: cur.Revision}
		if err := h.validate(data, []state.Op{op}, kind, name, value == nil); err != nil {
			return nil, err
		}
		existed = exists
		switch {
		case value == nil:
			expect(r, http.StatusNoContent)
		case !exists:
			expect(r, http.StatusCreated)
		default:
			expect(r, http.StatusOK)
		}
		return []state.Op{op}, nil
	})
	if err != nil {
		h.writeFailed(w, label, err)
		return
	}
	w.Header().Set(RevisionHeader, strconv.FormatInt(d.Revision, 10))
	action := "update"
	switch {
	case value == nil:
		action = "delete"
	case !existed:
		action = "create"
	}
	if e, ok := d.Entries[key]; ok && value != nil {
		w.Header().Set("ETag", etag(e))
	}
	msg := fmt.Sprintf("%s: %s through the API (from %s)", label, action+"d", r.RemoteAddr)
	h.cfg.Log("admin API: %s", msg)
	h.cfg.Events.Add(Event{Token: actor(r), Kind: "config", Resource: string(kind) + "/" + name, Action: action, Client: r.RemoteAddr, Message: msg})
	done(!existed)
}

// validate refuses ops on state data when the configuration they leave is invalid: 409 for
// the delete of a resource still referenced, else 400 with every error. A shared state that
// is invalid already (written around the API) does not block a write that adds nothing to
// what is wrong with it: only the errors the write brings count.
func (h *handler) validate(data *state.Data, ops []state.Op, kind config.Kind, name string, del bool) error {
	c := h.cfg.Control
	next, err := data.Apply(ops)
	if err != nil {
		return &refusal{code: http.StatusPreconditionFailed, msg: err.Error()}
	}
	_, errs := c.Merge(next)
	if len(errs) == 0 {
		return nil
	}
	before, was := c.Merge(data)
	if len(was) > 0 {
		// Compare like with like: Merge stops at resources that do not decode, so both
		// sides are validated without the ones that did not decode before.
		broken := undecodable(c, data)
		_, errs = c.Merge(without(next, broken))
		_, was = c.Merge(without(data, broken))
		errs = added(errs, was)
		if len(errs) == 0 {
			return nil
		}
	}
	if del && before != nil {
		if users := config.References(before, kind, name); len(users) > 0 {
			return &refusal{code: http.StatusConflict, msg: fmt.Sprintf("%s %s is used by %s", kind.Singular(), name, strings.Join(users, ", "))}
		}
	}
	return &refusal{code: http.StatusBadRequest, msg: errs.Error(), errs: errs}
}

// undecodable lists the config keys of d whose value does not decode.
func undecodable(c Control, d *state.Data) map[string]bool {
	out := map[string]bool{}
	for k, e := range d.Entries {
		ks, name, ok := strings.Cut(strings.TrimPrefix(k, state.ConfigPrefix), "/")
		if !ok || !strings.HasPrefix(k, state.ConfigPrefix) {
			continue
		}
		kind, ok := config.ParseKind(ks)
		if !ok {
			out[k] = true
			continue
		}
		if _, err := config.Decode(kind, name, e.Value, c.DefaultTTL()); err != nil {
			out[k] = true
		}
	}
	return out
}

func without(d *state.Data, keys map[string]bool) *state.Data {
	nd := *d
	nd.Entries = make(map[string]state.Entry, len(d.Entries))
	for k, e := range d.Entries {
		if !keys[k] {
			nd.Entries[k] = e
		}
	}
	return &nd
}

// added is the errors of after that before does not have.
func added(after, before config.Errors) config.Errors {
	had := map[string]bool{}
	for _, e := range before {
		had[e.Message] = true
	}
	var out config.Errors
	for _, e := range after {
		if !had[e.Message] {
			out = append(out, e)
		}
	}
	return out
}

// writeFailed answers a write that did not commit, or whose outcome is not known.
func (h *handler) writeFailed(w http.ResponseWriter, label string, err error) {
	var ref *refusal
	switch {
	case errors.As(err, &ref):
		writeErrors(w, ref.code, ref.msg, ref.errs)
	case errors.Is(err, state.ErrBusy):
		writeError(w, http.StatusConflict, label+": "+err.Error())
	case errors.Is(err, state.ErrConflict):
		writeError(w, http.StatusPreconditionFailed, label+": "+err.Error())
	default:
		writeStoreError(w, "could not persist "+label, err)
		if !errors.Is(err, state.ErrUnavailable) && !errors.Is(err, state.ErrRegressed) && !errors.Is(err, state.ErrUnknown) {
			h.cfg.Log("admin API: could not persist %s: %v", label, err)
		}
	}
}

// preconditions applies If-Match and If-None-Match (RFC 9110 13.1) to the stored version:
// 0 when they hold, else 412 and why.
func preconditions(r *http.Request, cur state.Entry, exists bool) (int, string) {
	if im := r.Header.Get("If-Match"); im != "" {
		if !exists || !matchesETag(im, etag(cur)) {
			return http.StatusPreconditionFailed, "If-Match: the resource is not at that version (it changed or does not exist)"
		}
	}
	if inm := r.Header.Get("If-None-Match"); inm != "" && exists && (strings.TrimSpace(inm) == "*" || matchesETag(inm, etag(cur))) {
		return http.StatusPreconditionFailed, "If-None-Match: the resource already exists"
	}
	return 0, ""
}

func matchesETag(header, tag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == tag {
			return true
		}
	}
	return false
}

// writeErrors answers a refused write: the message, and with validation errors the list
// (resource, field, message each).
func writeErrors(w http.ResponseWriter, code int, msg string, errs config.Errors) {
	body := map[string]any{"error": msg}
	if len(errs) > 0 {
		body["errors"] = errs
	}
	writeJSON(w, code, body)
}

// ClusterDoc is the body of GET /api/v1/cluster.
type ClusterDoc struct {
	Node        string      `json:"node"`
	Region      string      `json:"region,omitempty"`
	Path        string      `json:"path,omitempty"` // the fleet's key prefix in etcd
	Connected   bool        `json:"connected"`
	Revision    int64       `json:"revision"` // the shared state revision this node has applied
	Nodes       []etcd.Node `json:"nodes"`    // every live node and the revision it applied
	ConfigError string      `json:"config_error,omitempty"`
	// NodeConflict: another process holds this node's name; this one registers nothing
	// and publishes no votes until the name is free.
	NodeConflict string `json:"node_conflict,omitempty"`
}

// Clustered is a Control of a fleet node.
type Clustered interface {
	// Cluster describes the fleet as this node sees it; false without a cluster.
	Cluster() (ClusterDoc, bool)
}

func (h *handler) cluster(w http.ResponseWriter, r *http.Request) {
	if c, ok := h.cfg.Control.(Clustered); ok {
		if doc, ok := c.Cluster(); ok {
			writeJSON(w, http.StatusOK, doc)
			return
		}
	}
	writeError(w, http.StatusNotFound, "no cluster configured: this node is on its own")
}
