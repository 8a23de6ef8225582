package etcd

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gtm-dns/coredns-gtm/internal/etcdtest"
	"github.com/gtm-dns/coredns-gtm/state"
)

// A failback hold is shared by a fleet: the first node to fail over writes it, a second
// node that decided on the same state loses the compare-and-set and follows the first.
func TestStoresShareHolds(t *testing.T) {
	srv := etcdtest.Start(t)
	ctx := context.Background()
	sa, err := state.Open(ctx, open(t, srv.Endpoints(), "a"))
	if err != nil {
		t.Fatal(err)
	}
	sb, err := state.Open(ctx, open(t, srv.Endpoints(), "b"))
	if err != nil {
		t.Fatal(err)
	}
	cell := sb.HoldCell("www.gtm.test.", "default")
	if err := sa.SetHold(ctx, "www.gtm.test.", "default", "standby", time.Now(), 0); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "hold on the other node", func() bool { return cell.Pool() == "standby" })
	if err := sb.SetHold(ctx, "www.gtm.test.", "default", "third", time.Now(), 0); !errors.Is(err, state.ErrConflict) {
		t.Fatalf("second writer: %v, want ErrConflict", err)
	}
	routes, err := sb.ReleaseHolds(ctx, "www.gtm.test.")
	if err != nil || len(routes) != 1 {
		t.Fatalf("release: %v %v", routes, err)
	}
	eventually(t, 2*time.Second, "release on the first node", func() bool { return sa.HoldCell("www.gtm.test.", "default").Get() == nil })
}
