package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/gtm-dns/coredns-gtm/state"
)

// DefaultRetention is how long a fleet keeps audit records unless told otherwise.
const DefaultRetention = 30 * 24 * time.Hour

// Etcd keeps a fleet's records in etcd under PATH/audit/, each written in the transaction
// of the write it records. A record's ID is the etcd revision that created it: unique and
// ordered across the fleet, so any node lists every node's records, oldest first.
//
// Keys are PATH/audit/<unix nanoseconds, 16 hex digits>-<node>-<sequence>: ordered by time,
// so trimming records older than the retention is one range delete.
type Etcd struct {
	cli       *clientv3.Client
	prefix    string // PATH/audit/
	node      string
	retention time.Duration
	seq       atomic.Uint64
	// Connected reports whether etcd is reachable (the cluster backend's view); nil: always
	// tried. A partitioned node's refusal then fails at once instead of after a timeout.
	Connected func() bool

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewEtcd returns the audit log of the fleet under path (the cluster's key prefix) as seen
// by node, and starts trimming records older than retention (0: DefaultRetention).
func NewEtcd(cli *clientv3.Client, path, node string, retention time.Duration) *Etcd {
	if retention <= 0 {
		retention = DefaultRetention
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Etcd{cli: cli, prefix: "/" + strings.Trim(path, "/") + "/" + state.AuditPrefix, node: node, retention: retention, cancel: cancel}
	e.wg.Add(1)
	go e.trimLoop(ctx)
	return e
}

// key is a new record's key under the state's prefix (the rider's op) .
func (e *Etcd) key(t time.Time) string {
	return fmt.Sprintf("%s%016x-%s-%d", state.AuditPrefix, t.UnixNano(), e.node, e.seq.Add(1))
}

// Append implements Log.
func (e *Etcd) Append(ctx context.Context, rec *Record) error {
	if e.Connected != nil && !e.Connected() {
		return state.ErrUnavailable
	}
	rec.Node = e.node
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("audit record: %v", err)
	}
	k := strings.TrimSuffix(e.prefix, state.AuditPrefix) + e.key(rec.Time)
	resp, err := e.cli.Put(ctx, k, string(b))
	if err != nil {
		return fmt.Errorf("%w (%v)", state.ErrUnavailable, err)
	}
	rec.ID = uint64(resp.Header.Revision)
	return nil
}

// Rider implements Log: the record is a put in the write's own transaction.
func (e *Etcd) Rider(rec *Record) Rider { return &etcdRider{e: e, rec: rec} }

type etcdRider struct {
	e         *Etcd
	rec       *Record
	committed atomic.Bool
}

func (r *etcdRider) Prepare(cur *state.Data, ops []state.Op) ([]state.Op, error) {
	if r.committed.Load() {
		return nil, nil
	}
	fill(r.rec, cur, ops)
	r.rec.Node = r.e.node
	b, err := json.Marshal(r.rec)
	if err != nil {
		return nil, fmt.Errorf("audit record: %v", err)
	}
	return []state.Op{{Key: r.e.key(r.rec.Time), Value: b}}, nil
}

func (r *etcdRider) Done(_ *state.Data, err error) {
	if err == nil {
		r.committed.Store(true)
	}
}

func (r *etcdRider) Committed() bool { return r.committed.Load() }

// List implements Log.
func (e *Etcd) List(ctx context.Context, since int64, limit int) ([]Record, error) {
	opts := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithLimit(int64(limit))}
	if since < 0 {
		opts = append(opts, clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortDescend))
	} else {
		opts = append(opts, clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend), clientv3.WithMinCreateRev(since+1))
	}
	resp, err := e.cli.Get(ctx, e.prefix, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w (%v)", state.ErrUnavailable, err)
	}
	out := make([]Record, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var r Record
		if json.Unmarshal(kv.Value, &r) != nil {
			continue
		}
		r.ID = uint64(kv.CreateRevision)
		out = append(out, r)
	}
	if since < 0 {
		slices.Reverse(out)
	}
	return out, nil
}

// Trim deletes the records older than the retention at now.
func (e *Etcd) Trim(ctx context.Context, now time.Time) error {
	end := fmt.Sprintf("%s%016x", e.prefix, now.Add(-e.retention).UnixNano())
	_, err := e.cli.Delete(ctx, e.prefix, clientv3.WithRange(end))
	return err
}

// trimLoop trims now and then every tenth of the retention (at most a minute apart); every
// node does it, which is idempotent.
func (e *Etcd) trimLoop(ctx context.Context) {
	defer e.wg.Done()
	every := min(max(e.retention/10, 200*time.Millisecond), time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		e.Trim(tctx, time.Now()) // a failure is retried at the next tick
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Where implements Log.
func (e *Etcd) Where() string { return "etcd " + e.prefix }

// Close implements Log: it stops trimming (the client belongs to the cluster backend).
func (e *Etcd) Close() error {
	e.cancel()
	e.wg.Wait()
	return nil
}
