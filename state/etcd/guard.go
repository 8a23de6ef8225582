package etcd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/gtm-dns/coredns-gtm/state"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// The guard of a fleet's shared state against the two ways it can go wrong under its nodes:
//
//   - Two writers, each validating against its own view: every commit writes PATH/generation,
//     and a configuration write compares it (CommitGuarded), so it lands only on the state it
//     was validated against.
//   - A store that goes back in time (etcd restored empty or from an old backup): its
//     revision, cluster ID or generation is below what the node has seen. That is a fault,
//     never a state to apply: the node keeps its last good state, refuses writes and says
//     why, until an operator restores the state (Restore), which starts a new epoch (the
//     value of PATH/generation) that every node then takes whatever its revision.

// generationKey (under PATH/) is written by every commit; its value is the epoch.
const generationKey = "generation"

func (b *Backend) genKey() string { return b.prefix + generationKey }

// history is what a list must not go below; under Backend.mu.
type history struct {
	header    int64  // the highest etcd revision seen in a linearizable answer
	clusterID uint64 // the etcd cluster's ID, 0 before the first answer
	gen       int64  // the highest generation put in force
	rev       int64  // the highest state revision put in force
}

func (h *history) note(rev, gen int64) {
	h.rev, h.gen = max(h.rev, rev), max(h.gen, gen)
}

// noteHeader records a linearizable answer's header and reports whether it looks like the
// store went back in time (the list that follows decides).
func (b *Backend) noteHeader(h *etcdserverpb.ResponseHeader) (backwards bool) {
	if h == nil {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if h.Revision < max(b.hist.header, b.hist.rev) || (b.hist.clusterID != 0 && h.ClusterId != b.hist.clusterID) {
		return true
	}
	if b.fault == nil {
		b.hist.header, b.hist.clusterID = h.Revision, h.ClusterId
	}
	return false
}

// genMoved reports whether PATH/generation as read (kvs) is behind the one in force, gone,
// or of another epoch: a list must look.
func (b *Backend) genMoved(kvs []*mvccpb.KeyValue) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fault != nil {
		return true // faulted: list again each probe, to see a restore
	}
	if len(kvs) == 0 {
		return b.gen > 0
	}
	return string(kvs[0].Value) != b.epoch || kvs[0].ModRevision < b.gen
}

// checkHistoryLocked is nil when a list of header h, generation gen and epoch may be put in
// force; else the fault, raised. b.mu held.
func (b *Backend) checkHistoryLocked(h *etcdserverpb.ResponseHeader, gen int64, epoch string) error {
	if epoch != "" && epoch != b.epoch {
		// An operator restored the state (or this node's cache is of an older epoch): it is
		// the state from now on.
		b.hist = history{header: h.Revision, clusterID: h.ClusterId}
		b.setFaultLocked(nil)
		return nil
	}
	var why string
	switch {
	case b.hist.clusterID != 0 && h.ClusterId != b.hist.clusterID:
		why = fmt.Sprintf("the etcd cluster ID changed from %x to %x", b.hist.clusterID, h.ClusterId)
	case h.Revision < b.hist.header:
		why = fmt.Sprintf("etcd's revision went back from %d to %d", b.hist.header, h.Revision)
	case h.Revision < b.hist.rev:
		why = fmt.Sprintf("etcd's revision %d is below the state revision %d this node applied", h.Revision, b.hist.rev)
	case gen < b.hist.gen:
		why = fmt.Sprintf("the state generation went back from %d to %d", b.hist.gen, gen)
	}
	if why != "" {
		err := fmt.Errorf("%w: %s (etcd restored empty or from an old backup?); serving the last good state (revision %d); writes are refused until an operator restores it: gtmctl restore --from-cache FILE, or gtmctl apply -f of a saved GET /api/v1/config",
			state.ErrRegressed, why, b.rev)
		b.setFaultLocked(err)
		return err
	}
	b.hist.header, b.hist.clusterID = max(b.hist.header, h.Revision), h.ClusterId
	b.setFaultLocked(nil) // the store came back (the old member with its data)
	return nil
}

// Fault implements state.Faulted.
func (b *Backend) Fault() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.fault
}

// OnFault calls fn with the fault when the store is found gone back in time, and with nil
// when that ends. fn is called with the backend's lock held: it must not block or call the
// backend. It returns the function that stops it.
func (b *Backend) OnFault(fn func(error)) (cancel func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.faultSubs == nil {
		b.faultSubs = map[int]func(error){}
	}
	id := b.subNext
	b.subNext++
	b.faultSubs[id] = fn
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		delete(b.faultSubs, id)
	}
}

func (b *Backend) setFaultLocked(err error) {
	if (b.fault == nil) == (err == nil) && (err == nil || err.Error() == b.fault.Error()) {
		return
	}
	b.fault = err
	for _, fn := range b.faultSubs {
		fn(err)
	}
}

// Fresh implements state.Guarded: etcd's state now (a linearizable read), put in force if
// it is newer than the node's view; it returns the state in force then.
func (b *Backend) Fresh(ctx context.Context) (*state.Data, error) {
	cctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	resp, err := b.cli.Txn(cctx).Then(b.stateReads()...).Commit()
	if err != nil {
		return nil, err
	}
	if b.noteHeader(resp.Header) {
		b.kick(b.resync)
		return nil, state.ErrRegressed
	}
	return b.takeReads(resp.Responses, false), nil
}

// Restore replaces the whole shared state by entries and starts a new epoch, which every
// node takes as its state whatever its revision: the way back after etcd lost its data
// (the entries of a node's cache file, or a saved configuration). Keys not in entries are
// deleted; it is one transaction up to maxTxnOps operations, else several, the new epoch
// written last so that nodes go over when the whole state is there. The state is
// validated by the caller.
func (b *Backend) Restore(ctx context.Context, entries map[string][]byte) (*state.Data, error) {
	keys := make([]string, 0, len(entries))
	for k := range entries {
		if !stateKey(k) {
			return nil, fmt.Errorf("restore: %q is not a state key", k)
		}
		keys = append(keys, k)
	}
	now, err := b.Stored(ctx)
	if err != nil {
		return nil, b.writeError(err, false) // a read: nothing was written
	}
	var ops []clientv3.Op
	for k := range now.Entries {
		if _, keep := entries[k]; !keep {
			ops = append(ops, clientv3.OpDelete(b.prefix+k))
		}
	}
	for _, k := range keys {
		ops = append(ops, clientv3.OpPut(b.prefix+k, string(entries[k])))
	}
	epoch := newEpoch()
	ops = append(ops, clientv3.OpPut(b.genKey(), epoch))
	for len(ops) > 0 {
		n := min(len(ops), maxTxnOps)
		cctx, cancel := context.WithTimeout(ctx, requestTimeout)
		sent := b.sendable(cctx)
		_, err := b.cli.Txn(cctx).Then(ops[:n]...).Commit()
		wasSent := sent()
		cancel()
		if err != nil {
			return nil, b.writeError(err, wasSent)
		}
		ops = ops[n:]
	}
	lctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	if _, err := b.list(lctx); err != nil {
		return nil, err
	}
	b.kick(b.resync) // the watch follows the new epoch from the list's revision
	b.mu.Lock()
	defer b.mu.Unlock()
	d := b.snapshotLocked()
	return d, nil
}

// Stored reads the shared state as etcd holds it now, not put in force (what a restore
// replaces: during a fault it differs from the node's).
func (b *Backend) Stored(ctx context.Context) (*state.Data, error) {
	cctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	resp, err := b.cli.Txn(cctx).Then(b.stateReads()...).Commit()
	if err != nil {
		return nil, err
	}
	d := &state.Data{Entries: map[string]state.Entry{}}
	for _, r := range resp.Responses {
		for _, kv := range r.GetResponseRange().Kvs {
			k := strings.TrimPrefix(string(kv.Key), b.prefix)
			if k == generationKey {
				d.Generation, d.Epoch = kv.ModRevision, string(kv.Value)
				continue
			}
			d.Entries[k] = state.Entry{Value: kv.Value, Revision: kv.ModRevision}
		}
	}
	d.Revision = stateRevision(d.Entries, d.Generation)
	return d, nil
}

func newEpoch() string {
	var r [6]byte
	rand.Read(r[:])
	return time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(r[:])
}

// entriesOf is the values of a state, for Restore.
func entriesOf(d *state.Data) map[string][]byte {
	out := make(map[string][]byte, len(d.Entries))
	for k, e := range d.Entries {
		out[k] = e.Value
	}
	return out
}

func sameEntries(a, b map[string]state.Entry) bool {
	return maps.EqualFunc(a, b, func(x, y state.Entry) bool {
		return x.Revision == y.Revision && string(x.Value) == string(y.Value)
	})
}

// View implements state.Viewer: the state as the watch has it now, before the debounced
// delivery; nil while the store is faulted.
func (b *Backend) View() *state.Data {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fault != nil {
		return nil
	}
	return b.snapshotLocked()
}
