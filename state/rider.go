package state

import (
	"context"
	"strings"
)

// AuditPrefix keys the audit records a backend writes next to the state (etcd: PATH/audit/):
// they ride along the commits they record and are never part of Data.
const AuditPrefix = "audit/"

// RecordKey reports whether k is a record key (AuditPrefix), not a state key.
func RecordKey(k string) bool { return strings.HasPrefix(k, AuditPrefix) && len(k) > len(AuditPrefix) }

// A Rider rides along the commit made with its context: the audit record of the write. Its
// writes are part of the commit or the commit does not happen, so no acknowledged write
// lacks its record.
type Rider interface {
	// Prepare is called by Store.Commit before the backend commits, with the state the ops
	// apply to. It returns record ops (RecordKey keys) for a backend that writes them in the
	// same transaction (etcd), or persists the record itself and returns none; an error
	// aborts the commit.
	Prepare(cur *Data, ops []Op) ([]Op, error)
	// Done is called with the commit's outcome.
	Done(d *Data, err error)
}

type riderKey struct{}

// WithRider returns ctx carrying r: the next commit made with it (or a context derived from
// it) takes r along. The admin API sets it once per write request, so every write path (a
// config write, a mode, a pin, a failback) is recorded without passing records around.
func WithRider(ctx context.Context, r Rider) context.Context {
	return context.WithValue(ctx, riderKey{}, r)
}

// ride runs the rider of ctx (if any) before a commit of ops on cur; it returns the ops to
// commit and the function to call with the outcome.
func ride(ctx context.Context, cur *Data, ops []Op) ([]Op, func(*Data, error), error) {
	r, _ := ctx.Value(riderKey{}).(Rider)
	if r == nil {
		return ops, func(*Data, error) {}, nil
	}
	extra, err := r.Prepare(cur, ops)
	if err != nil {
		r.Done(nil, err)
		return nil, nil, err
	}
	if len(extra) > 0 {
		ops = append(ops[:len(ops):len(ops)], extra...)
	}
	return ops, r.Done, nil
}
