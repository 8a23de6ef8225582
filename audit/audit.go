// Package audit keeps the record of every write attempted through the admin API: who (the
// token's name, the client), what (method, path, resource, the value before and after) and
// how it ended (the HTTP status).
//
// A record of a write that changes the state rides along the state's commit (state.Rider):
// in a fleet it is a key in the same etcd transaction, on a single node it is appended and
// fsynced to the audit file before the state is committed. A write whose record cannot be
// kept does not happen.
package audit

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"time"

	"github.com/gtm-dns/coredns-gtm/state"
)

// Record is one write attempt.
type Record struct {
	ID       uint64          `json:"id"`
	Time     time.Time       `json:"time"`
	Token    string          `json:"token"`  // the token's NAME, never its value
	Client   string          `json:"client"` // the client's address
	Method   string          `json:"method"`
	Path     string          `json:"path"`
	Resource string          `json:"resource"`        // the state key written: config/pools/eu, modes/eu/192.0.2.1, pins/www.example.net.
	Before   json.RawMessage `json:"before"`          // the resource's value before (null: none)
	After    json.RawMessage `json:"after"`           // ... and after (null: none or deleted)
	Status   int             `json:"status"`          // the HTTP status answered
	Error    string          `json:"error,omitempty"` // a refused write: why
	Node     string          `json:"node,omitempty"`  // in a fleet: the node that took it
}

// Log is where records are kept.
type Log interface {
	// Append keeps rec, a write attempt that changed nothing (refused, or nothing to do),
	// and sets its ID.
	Append(ctx context.Context, rec *Record) error
	// Rider returns what keeps rec together with the state commit of the write.
	Rider(rec *Record) Rider
	// List returns up to limit records with an ID above since, oldest first; since < 0
	// asks for the latest limit records.
	List(ctx context.Context, since int64, limit int) ([]Record, error)
	// Where says where the records are kept (for logs and docs).
	Where() string
	// Close releases the log.
	Close() error
}

// Rider is a state.Rider that also tells whether its record went with a commit.
type Rider interface {
	state.Rider
	// Committed reports whether a commit took the record along.
	Committed() bool
}

// fill sets the record's resource, before and after from the ops of a commit and the state
// they apply to: one op, its key and values; several (a whole-configuration write), the
// common prefix of their keys and {key: value} objects of every key written.
func fill(rec *Record, cur *state.Data, ops []state.Op) {
	if len(ops) == 0 {
		return
	}
	before := func(k string) json.RawMessage {
		if cur != nil {
			if e, ok := cur.Entries[k]; ok {
				return rawJSON(e.Value)
			}
		}
		return nil
	}
	if len(ops) == 1 {
		rec.Resource, rec.Before, rec.After = ops[0].Key, before(ops[0].Key), rawJSON(ops[0].Value)
		return
	}
	b, a := map[string]json.RawMessage{}, map[string]json.RawMessage{}
	prefix := ops[0].Key
	for _, op := range ops {
		b[op.Key], a[op.Key] = before(op.Key), rawJSON(op.Value)
		for !strings.HasPrefix(op.Key, prefix) {
			prefix = prefix[:len(prefix)-1]
		}
	}
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		prefix = prefix[:i+1]
	} else {
		prefix = ""
	}
	rec.Resource = prefix
	rec.Before, _ = json.Marshal(b)
	rec.After, _ = json.Marshal(a)
}

// rawJSON is v as a JSON value: state values are JSON; anything else becomes a string.
func rawJSON(v []byte) json.RawMessage {
	if v == nil {
		return nil
	}
	if json.Valid(v) {
		return json.RawMessage(v)
	}
	b, _ := json.Marshal(string(v))
	return b
}

// selfRider persists its record itself before the commit (file, memory): used by the logs
// whose records do not live in the state's backend.
type selfRider struct {
	mu        sync.Mutex
	rec       *Record
	appendFn  func(*Record) error
	persisted bool // appended: a retried commit does not append it again
	committed bool
}

func (r *selfRider) Prepare(cur *state.Data, ops []state.Op) ([]state.Op, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.committed || r.persisted {
		return nil, nil
	}
	fill(r.rec, cur, ops)
	if err := r.appendFn(r.rec); err != nil {
		return nil, err
	}
	r.persisted = true
	return nil, nil
}

func (r *selfRider) Done(_ *state.Data, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.persisted && err == nil {
		r.committed = true
	}
	if err != nil {
		// The record claims a write that did not happen: the API records the attempt
		// again with the status it answers.
		r.persisted = false
	}
}

func (r *selfRider) Committed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.committed
}
