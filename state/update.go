package state

import (
	"context"
	"errors"
	"fmt"
)

// A fleet's writers are many processes: a node's view of the state may lag a write made
// through another node, so validating a write against the view alone commits states that
// nobody validated (a domain naming a pool deleted meanwhile). Update validates against the
// state at the revision the commit then checks, and runs again when another writer got in
// between: the whole configuration a write leaves is the one its validation saw.

// Errors of Update and Commit beside ErrConflict and ErrUnavailable.
var (
	// ErrUnknown: the write was sent to the cluster store but no answer came in time; it may
	// or may not have been applied (the HTTP 504 of a write).
	ErrUnknown = errors.New("the write was sent to the cluster store but no answer came in time: it may or may not have been applied")
	// ErrRegressed: the cluster store went back in time (restored empty or from an old
	// backup); writes are refused until an operator restores the state.
	ErrRegressed = errors.New("cluster store regressed")
	// ErrBusy: Update lost the race against other writers every time it tried.
	ErrBusy = errors.New("the configuration kept changing under concurrent writes")
)

// StaleError is a guarded commit refused because the configuration changed after the state
// it was built on; Data is the state now. It is an ErrConflict.
type StaleError struct{ Data *Data }

func (e *StaleError) Error() string { return "the configuration changed since it was read" }

// Is makes a StaleError an ErrConflict.
func (e *StaleError) Is(target error) bool { return target == ErrConflict }

// Guarded is a Backend that other processes write too (etcd).
type Guarded interface {
	// CommitGuarded commits ops only if no configuration key changed since base was read
	// (base.Revision, base.Generation); otherwise it returns a *StaleError with the state
	// now. It returns what Commit returns.
	CommitGuarded(ctx context.Context, base *Data, ops []Op) (*Data, error)
	// Fresh reads the state as the store holds it now (not this node's view of it).
	Fresh(ctx context.Context) (*Data, error)
}

// Viewer is a Backend whose own view of the store can be ahead of the state in force: a
// watch applies other writers' changes at once but hands them to the Store debounced (so
// that a burst compiles once).
type Viewer interface {
	// View is the backend's newest state; nil when it has none to offer (a fault).
	View() *Data
}

// Faulted is a Backend that can find its store unfit to write to (a regression).
type Faulted interface {
	// Fault is why writes are refused ("" when they are not): an ErrRegressed.
	Fault() error
}

// UpdateTries bounds Update's attempts: each retry means another writer committed meanwhile.
const UpdateTries = 8

// Update is one read-validate-commit of the whole state: fn gets the state to build on and
// returns the ops that make the change (their Checks are the caller's preconditions), or why
// the change is refused. With a Guarded backend the commit holds only if no configuration
// key changed since that state, else fn runs again on the state now (at most UpdateTries
// times: then ErrBusy); a refusal by fn is checked once more against the store's state now,
// since the node's view may lag a write made through another node. No ops: nothing is
// written and the state is returned. The Rider of ctx (the audit record) rides along every
// attempt's commit, as with Commit.
func (s *Store) Update(ctx context.Context, fn func(*Data) ([]Op, error)) (*Data, error) {
	s.Lock()
	defer s.Unlock()
	g, guarded := s.be.(Guarded)
	d := s.Data()
	// Built on the newest state the backend has seen, not only the one delivered: a write
	// made through another node a few milliseconds ago is in the view already, and building
	// on the delivered state would send a commit that is sure to be refused (and re-run).
	if v, ok := s.be.(Viewer); ok {
		if nd := v.View(); nd != nil && nd.Epoch == d.Epoch && nd.Revision > d.Revision {
			d = nd
		}
	}
	fresh := !guarded // a lone writer's view is the state
	for try := 1; ; try++ {
		ops, err := fn(d)
		if err != nil {
			if fresh {
				return nil, err
			}
			fresh = true
			nd, ferr := g.Fresh(ctx)
			if ferr != nil || (nd.Revision == d.Revision && nd.Generation == d.Generation) {
				return nil, err
			}
			d = nd
			continue
		}
		if len(ops) == 0 {
			return d, nil
		}
		if !guarded {
			return s.Commit(ctx, ops)
		}
		if err := s.writable(); err != nil {
			return nil, err
		}
		all, done, err := ride(ctx, d, ops) // the audit record goes in the same transaction
		if err != nil {
			return nil, err
		}
		nd, err := g.CommitGuarded(ctx, d, all)
		done(nd, err)
		var stale *StaleError
		if errors.As(err, &stale) {
			if try >= UpdateTries {
				return nil, fmt.Errorf("%w (%d tries): try again", ErrBusy, try)
			}
			d, fresh = stale.Data, true
			continue
		}
		if err != nil {
			return nil, err
		}
		s.publish(nd)
		return nd, nil
	}
}

// writable is nil when a commit may be sent: not to a partitioned node's store (it answers
// at once, not after a timeout), nor to a store that went back in time.
func (s *Store) writable() error {
	if f, ok := s.be.(Faulted); ok {
		if err := f.Fault(); err != nil {
			return err
		}
	}
	if c, ok := s.be.(interface{ Connected() bool }); ok && !c.Connected() {
		return ErrUnavailable
	}
	return nil
}

// Fault is why the store refuses writes (a regressed cluster store), nil when it does not.
func (s *Store) Fault() error {
	if f, ok := s.be.(Faulted); ok {
		return f.Fault()
	}
	return nil
}

// Restorer is a Backend whose whole state an operator can replace (a fleet's store, after
// etcd lost its data).
type Restorer interface {
	// Restore replaces the whole state by entries and starts a new epoch.
	Restore(ctx context.Context, entries map[string][]byte) (*Data, error)
}

// ErrNoRestore: the backend keeps no shared state to restore (a single node's file).
var ErrNoRestore = errors.New("restore replaces a fleet's shared state: this node has no cluster")

// Restore replaces the whole state by entries (keys of the layout, JSON values) and puts
// it in force: the way back after the store lost its data. The caller validates entries.
func (s *Store) Restore(ctx context.Context, entries map[string][]byte) (*Data, error) {
	r, ok := s.be.(Restorer)
	if !ok {
		return nil, ErrNoRestore
	}
	s.Lock()
	defer s.Unlock()
	d, err := r.Restore(ctx, entries)
	if err != nil {
		return nil, err
	}
	s.publish(d)
	return d, nil
}
