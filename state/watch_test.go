package state

import (
	"context"
	"testing"
)

// fakeWatcher is a Memory backend whose Watch hands its callback to the test.
type fakeWatcher struct {
	*Memory
	fn chan func(*Data)
}

func (f *fakeWatcher) Watch(ctx context.Context, fn func(*Data)) {
	f.fn <- fn
	<-ctx.Done()
}

// A watcher's delivery that a Commit of this process overtook is not put back in force.
func TestStoreKeepsNewerThanLateDelivery(t *testing.T) {
	be := &fakeWatcher{Memory: NewMemory(), fn: make(chan func(*Data), 1)}
	s, err := Open(context.Background(), be)
	if err != nil {
		t.Fatal(err)
	}
	deliver := <-be.fn
	old := &Data{Revision: 5, Entries: map[string]Entry{ModeKey("p", "a"): {Value: []byte(`{"mode":"up"}`), Revision: 5}}}
	deliver(old)
	if s.Data().Revision != 5 {
		t.Fatal("delivery not in force")
	}
	s.Lock()
	d, err := s.Commit(context.Background(), []Op{{Key: PinKey("x."), Value: []byte(`{"pool":"p"}`)}})
	s.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	// The Memory backend does not know revision 5; a real one's commit is above anything it
	// delivered. What matters: a late delivery below the state in force is dropped.
	newer := &Data{Revision: 9, Entries: d.Entries}
	deliver(newer)
	deliver(old)
	if s.Data().Revision != 9 {
		t.Fatalf("a late delivery of revision 5 replaced revision %d", s.Data().Revision)
	}
	deliver(newer) // the same revision again (a watch echo): taken, idempotent
	if s.Data() != newer {
		t.Fatal("an equal revision was not taken")
	}
}
