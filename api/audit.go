package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gtm-dns/coredns-gtm/access"
	"github.com/gtm-dns/coredns-gtm/audit"
	"github.com/gtm-dns/coredns-gtm/state"
)

// attempt is the audit of one write request, reachable from its context.
type attempt struct {
	rec   *audit.Record
	rider audit.Rider
	tok   *access.Token
}

type attemptKey struct{}

func attemptOf(r *http.Request) *attempt {
	a, _ := r.Context().Value(attemptKey{}).(*attempt)
	return a
}

// actor is the name of the token a write request presents ("" outside one): events and
// logs name it, never its value.
func actor(r *http.Request) string {
	if a := attemptOf(r); a != nil {
		return a.rec.Token
	}
	return ""
}

// expect sets the status the record of a write states if its commit succeeds (the record
// goes with the commit, before the answer exists): 200 unless told.
func expect(r *http.Request, code int) {
	if a := attemptOf(r); a != nil {
		a.rec.Status = code
	}
}

// bufferedResponse holds a write's answer until its audit record is kept: a write whose
// record cannot be kept answers 500 instead.
type bufferedResponse struct {
	hdr  http.Header
	code int
	body bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.hdr }

func (b *bufferedResponse) WriteHeader(code int) {
	if b.code == 0 {
		b.code = code
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	b.WriteHeader(http.StatusOK)
	return b.body.Write(p)
}

func (b *bufferedResponse) flush(w http.ResponseWriter) {
	for k, v := range b.hdr {
		w.Header()[k] = v
	}
	w.WriteHeader(max(b.code, http.StatusOK))
	w.Write(b.body.Bytes())
}

// audited serves a write request of a known token and keeps its record: with the commit
// when the write changes the state (the rider in the request's context), else after the
// handler, before the answer. Refusals by role or scope are recorded like the others.
func (h *handler) audited(w http.ResponseWriter, r *http.Request, tok *access.Token) {
	_, pattern := h.mux.Handler(r)
	rec := &audit.Record{
		Time: time.Now().UTC(), Token: tok.Name, Client: r.RemoteAddr,
		Method: r.Method, Path: r.URL.EscapedPath(), Resource: resourceOf(pattern, r.URL.EscapedPath()),
		Status: http.StatusOK,
	}
	a := &attempt{rec: rec, rider: h.cfg.Audit.Rider(rec), tok: tok}
	ctx := context.WithValue(state.WithRider(r.Context(), a.rider), attemptKey{}, a)
	buf := &bufferedResponse{hdr: http.Header{}}
	h.route(buf, r.WithContext(ctx), tok)
	if a.rider.Committed() {
		buf.flush(w)
		return
	}
	// Nothing was committed: the record states the answer, and that nothing changed.
	rec.Status = max(buf.code, http.StatusOK)
	rec.Error = ""
	if rec.Status >= 400 {
		var e struct {
			Error string `json:"error"`
		}
		json.Unmarshal(buf.body.Bytes(), &e)
		rec.Error = e.Error
	}
	rec.Before, rec.After = nil, nil
	if h.cfg.Control != nil {
		if e, ok := h.cfg.Control.Store().Data().Entries[rec.Resource]; ok {
			rec.Before = json.RawMessage(e.Value)
			rec.After = rec.Before
		}
	}
	wait := writeTimeout
	if rec.Status == http.StatusServiceUnavailable || rec.Status == http.StatusGatewayTimeout {
		wait = 300 * time.Millisecond // the store is away: a partitioned node answers at once
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), wait)
	defer cancel()
	if err := h.cfg.Audit.Append(actx, rec); err != nil {
		h.cfg.Log("admin API: audit: could not record %s %s of token %s: %v", r.Method, rec.Path, tok.Name, err)
		if rec.Status == http.StatusServiceUnavailable || rec.Status == http.StatusGatewayTimeout {
			// The store the record goes to is the one that refused the write or did not
			// answer it: the answer says that (503 nothing written, 504 outcome unknown);
			// a 500 "nothing was changed" would be wrong for a 504.
			buf.flush(w)
			return
		}
		setSecurityHeaders(w.Header())
		switch {
		case rec.Status >= 500:
			buf.flush(w) // the write failed anyway (a partitioned node's 503): its answer stands
		case errors.Is(err, state.ErrUnavailable):
			writeError(w, http.StatusServiceUnavailable, "audit log: "+err.Error()+"; nothing was changed")
		default:
			writeError(w, http.StatusInternalServerError, "audit log: "+err.Error()+"; nothing was changed")
		}
		return
	}
	buf.flush(w)
}

// AuditDoc is the body of GET /api/v1/audit.
type AuditDoc struct {
	Records []audit.Record `json:"records"`
	Last    uint64         `json:"last"` // the ID of the last record listed (since when none): the next since
	Where   string         `json:"where"`
}

// maxAuditLimit bounds one page of GET /api/v1/audit.
const maxAuditLimit = 1000

func (h *handler) auditList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	since, limit := int64(-1), 100
	if v := q.Get("since"); v != "" {
		n, err := strconv.ParseUint(v, 10, 63)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("since %q: expected a record id (a non-negative integer)", v))
			return
		}
		since = int64(n)
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxAuditLimit {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit %q: expected a number from 1 to %d", v, maxAuditLimit))
			return
		}
		limit = n
	}
	ctx, cancel := context.WithTimeout(r.Context(), writeTimeout)
	defer cancel()
	recs, err := h.cfg.Audit.List(ctx, since, limit)
	if err != nil {
		writeStoreError(w, "could not read the audit log", err)
		return
	}
	doc := AuditDoc{Records: recs, Last: uint64(max(since, 0)), Where: h.cfg.Audit.Where()}
	if n := len(recs); n > 0 {
		doc.Last = recs[n-1].ID
	}
	writeJSON(w, http.StatusOK, doc)
}
