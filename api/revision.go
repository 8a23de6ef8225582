package api

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gtm-dns/coredns-gtm/state"
)

// Writes that say what happened: every accepted write answers the state revision it left
// (X-GTM-Revision), and with ?wait=synced only once every live node of the fleet has
// applied that revision, so a client that asks another node next gets the new answer
// instead of an NXDOMAIN its resolver then caches.

// RevisionHeader carries the state revision an accepted write left.
const RevisionHeader = "X-GTM-Revision"

// Bounds of ?wait=synced.
const (
	DefaultSyncTimeout = 10 * time.Second
	maxSyncTimeout     = 5 * time.Minute
	syncPoll           = 20 * time.Millisecond
)

// Lag is a node that had not applied a revision when a wait ended.
type Lag struct {
	Node     string `json:"node"`
	Revision int64  `json:"revision"`
}

// heldResponse keeps a write's answer until the wait for the fleet is over: the answer
// becomes a 504 if the fleet does not follow in time.
type heldResponse struct {
	h    http.Header
	code int
	body bytes.Buffer
}

func (r *heldResponse) Header() http.Header { return r.h }
func (r *heldResponse) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.body.Write(b)
}
func (r *heldResponse) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}

// serveWrite serves a request; an accepted write (2xx to a method other than GET and HEAD)
// gets RevisionHeader, and with ?wait=synced[&timeout=DURATION] it is answered when every
// live node reports that revision, or 504 naming the laggards (the write stands).
func (h *handler) serveWrite(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodOptions {
		h.mux.ServeHTTP(w, r)
		return
	}
	q := r.URL.Query()
	wait := q.Get("wait")
	timeout := DefaultSyncTimeout
	if wait != "" && wait != "synced" {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("wait %q: expected synced", wait))
		return
	}
	if t := q.Get("timeout"); t != "" {
		d, err := time.ParseDuration(t)
		if err != nil || d <= 0 || d > maxSyncTimeout {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("timeout %q: expected a Go duration above 0 and at most %v, such as 10s", t, maxSyncTimeout))
			return
		}
		if wait == "" {
			writeError(w, http.StatusBadRequest, "timeout: only with wait=synced")
			return
		}
		timeout = d
	}
	held := &heldResponse{h: w.Header()}
	h.mux.ServeHTTP(held, r)
	if held.code == 0 {
		held.code = http.StatusOK
	}
	if held.code/100 == 2 && h.cfg.Control != nil {
		rev, err := strconv.ParseInt(w.Header().Get(RevisionHeader), 10, 64)
		if err != nil {
			rev = h.cfg.Control.Store().Data().Revision
			w.Header().Set(RevisionHeader, strconv.FormatInt(rev, 10))
		}
		if wait == "synced" {
			if lag := h.waitSynced(r, rev, timeout); len(lag) > 0 {
				h.lagging(w, rev, timeout, lag)
				return
			}
		}
	}
	w.WriteHeader(held.code)
	w.Write(held.body.Bytes())
}

// waitSynced waits until this node and every live node of its fleet report revision rev or
// later; it returns the nodes that did not within timeout (none without a fleet).
func (h *handler) waitSynced(r *http.Request, rev int64, timeout time.Duration) []Lag {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(syncPoll)
	defer tick.Stop()
	for {
		lag := h.lag(rev)
		if len(lag) == 0 {
			return nil
		}
		select {
		case <-r.Context().Done():
			return lag
		case <-deadline.C:
			return h.lag(rev)
		case <-tick.C:
		}
	}
}

// lag lists the nodes whose applied revision is below rev.
func (h *handler) lag(rev int64) []Lag {
	c := h.cfg.Control
	var out []Lag
	self := ""
	if cl, ok := c.(Clustered); ok {
		if doc, ok := cl.Cluster(); ok {
			self = doc.Node
			for _, n := range doc.Nodes {
				if n.Revision < rev {
					out = append(out, Lag{Node: n.Name, Revision: n.Revision})
				}
			}
		}
	}
	if got := c.Revision(); got < rev && self == "" {
		out = append(out, Lag{Node: "this node", Revision: got})
	} else if got < rev && !lagged(out, self) {
		out = append(out, Lag{Node: self, Revision: got})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out
}

func lagged(l []Lag, node string) bool {
	for _, x := range l {
		if x.Node == node {
			return true
		}
	}
	return false
}

// lagging answers a write the fleet did not apply in time: 504, the write stands.
func (h *handler) lagging(w http.ResponseWriter, rev int64, timeout time.Duration, lag []Lag) {
	names := make([]string, len(lag))
	for i, l := range lag {
		names[i] = fmt.Sprintf("%s (revision %d)", l.Node, l.Revision)
	}
	hd := w.Header()
	hd.Del("Content-Length")
	hd.Del("ETag")
	writeJSON(w, http.StatusGatewayTimeout, map[string]any{
		"error":    fmt.Sprintf("the write is applied (revision %d) but not yet in force on every node after %v: %s lag; it stays, and they catch up when they can", rev, timeout, strings.Join(names, ", ")),
		"revision": rev,
		"lagging":  lag,
	})
}

// writeStoreFault answers a commit the store did not take, or did not confirm; false for
// other errors.
func writeStoreFault(w http.ResponseWriter, err error) bool {
	switch {
	case errors.Is(err, state.ErrRegressed):
		writeError(w, http.StatusServiceUnavailable, err.Error())
	case errors.Is(err, state.ErrUnavailable):
		writeError(w, http.StatusServiceUnavailable, state.ErrUnavailable.Error())
	case errors.Is(err, state.ErrUnknown):
		writeError(w, http.StatusGatewayTimeout, "outcome unknown: "+state.ErrUnknown.Error()+
			"; check before retrying: GET the resource (its ETag and body) or compare the revision of GET /api/v1/cluster on a connected node")
	default:
		return false
	}
	return true
}
