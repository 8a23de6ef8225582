package audit

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gtm-dns/coredns-gtm/internal/etcdtest"
	"github.com/gtm-dns/coredns-gtm/state"
	"github.com/gtm-dns/coredns-gtm/state/etcd"
)

// A record rides in the write's own etcd transaction: both or neither; list by id (the
// creating revision), oldest first; the latest without since.
func TestEtcdRiderAndList(t *testing.T) {
	srv := etcdtest.Start(t)
	ctx := context.Background()
	be, err := etcd.Open(ctx, etcd.Config{Endpoints: srv.Endpoints(), Path: "/gtm", Node: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	st, err := state.Open(ctx, be)
	if err != nil {
		t.Fatal(err)
	}
	log := NewEtcd(be.Client(), be.Path(), be.Node(), 0)
	defer log.Close()
	key := state.PinKey("www.example.net.")
	commit := func(ops ...state.Op) (Rider, error) {
		r := log.Rider(rec(0))
		st.Lock()
		defer st.Unlock()
		_, err := st.Commit(state.WithRider(ctx, r), ops)
		return r, err
	}
	if r, err := commit(state.Op{Key: key, Value: []byte(`{"pool":"a"}`)}); err != nil || !r.Committed() {
		t.Fatal(err)
	}
	// A failed precondition: no state change, no record.
	if r, err := commit(state.Op{Key: key, Value: []byte(`{"pool":"b"}`), Check: true, Revision: 1}); !errors.Is(err, state.ErrConflict) || r.Committed() {
		t.Fatalf("conflict: %v", err)
	}
	refused := rec(1)
	refused.Status, refused.Error = 403, "token x: role read cannot pin domains"
	if err := log.Append(ctx, refused); err != nil || refused.ID == 0 {
		t.Fatal(err)
	}
	if r, err := commit(state.Op{Key: key}); err != nil || !r.Committed() {
		t.Fatal(err)
	}
	all, err := log.List(ctx, 0, 100)
	if err != nil || len(all) != 3 {
		t.Fatalf("list: %v %+v", err, all)
	}
	if string(all[0].After) != `{"pool":"a"}` || !null(all[0].Before) || all[0].Node != "n1" || all[1].Status != 403 || all[1].ID != refused.ID ||
		string(all[2].Before) != `{"pool":"a"}` || !null(all[2].After) || all[2].Resource != key || !(all[0].ID < all[1].ID && all[1].ID < all[2].ID) {
		t.Fatalf("records: %+v", all)
	}
	// The record and the state share the transaction's revision.
	if got := st.Data().Revision; uint64(got) < all[2].ID {
		t.Fatalf("state revision %d below the record's %d", got, all[2].ID)
	}
	if page, _ := log.List(ctx, int64(all[0].ID), 1); len(page) != 1 || page[0].ID != all[1].ID {
		t.Fatalf("since first, limit 1: %+v", page)
	}
	if latest, _ := log.List(ctx, -1, 2); len(latest) != 2 || latest[0].ID != all[1].ID || latest[1].ID != all[2].ID {
		t.Fatalf("latest 2: %+v", latest)
	}
	// The state keys do not include the records.
	for k := range st.Data().Entries {
		if strings.HasPrefix(k, state.AuditPrefix) {
			t.Fatalf("record %s in the state", k)
		}
	}
}

// Records older than the retention are trimmed.
func TestEtcdRetention(t *testing.T) {
	srv := etcdtest.Start(t)
	ctx := context.Background()
	be, err := etcd.Open(ctx, etcd.Config{Endpoints: srv.Endpoints(), Path: "/r", Node: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	log := NewEtcd(be.Client(), be.Path(), be.Node(), time.Second)
	defer log.Close()
	old := rec(0)
	old.Time = time.Now().Add(-2 * time.Second)
	if err := log.Append(ctx, old); err != nil {
		t.Fatal(err)
	}
	fresh := rec(1)
	if err := log.Append(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := log.List(ctx, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 1 && got[0].ID == fresh.ID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not trimmed to the fresh record: %+v", got)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// And the fresh one goes once it is older than the retention.
	deadline = time.Now().Add(5 * time.Second)
	for {
		got, _ := log.List(ctx, 0, 10)
		if len(got) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not trimmed: %+v", got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func null(m []byte) bool { return m == nil || string(m) == "null" }
