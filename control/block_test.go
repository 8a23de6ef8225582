package control

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/gtm-dns/coredns-gtm/policy"
	"github.com/gtm-dns/coredns-gtm/state"
)

// A stopped block is done: its snapshot is gone, and a delivery still in flight when Stop
// ran (a publisher had copied the subscriber list; the etcd deliverLoop) compiles nothing
// and acquires no prober that nothing would release.
func TestDeliveryAfterStop(t *testing.T) {
	cfg := testConfig(t, "gtm.stop.test.", `{
	"healthchecks": {"web": {"protocol": "tcp", "port": 1, "interval": "1h"}},
	"pools": {"a": {"addresses": [{"address": "127.0.70.1"}], "healthcheck": "web"}},
	"domains": {"www.gtm.stop.test": {"routes": [{"selector": "default", "pools": ["a"]}]}}
}`)
	st := newMemStore(t)
	cfg.Store = st
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	before := probers.Len()
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	if probers.Len() != before+1 {
		t.Fatalf("%d probers after Start, want %d", probers.Len(), before+1)
	}
	b.Stop()
	if b.Snapshot() != nil {
		t.Fatal("Stop left the snapshot in place")
	}
	waitLen(t, before)
	// The state gains a checked pool; the delivery reaches the stopped block.
	d, err := st.Commit(context.Background(), []state.Op{{Key: state.ConfigKey("pools", "b"), Value: []byte(`{"addresses":[{"address":"127.0.70.2"}],"healthcheck":"web"}`)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.rebuild(d); err != nil {
		t.Fatal(err)
	}
	if b.Snapshot() != nil || probers.Len() != before {
		t.Fatalf("a delivery after Stop compiled: snapshot %v, %d probers (want %d)", b.Snapshot() != nil, probers.Len(), before)
	}
	b.Stop() // twice is fine
}

// Start subscribes before it reads: a change committed between New and Start, or while
// Start runs, is in force once Start returns, at the revision the snapshot reports.
func TestStartReadsAfterSubscribing(t *testing.T) {
	cfg := testConfig(t, "gtm.start.test.", `{"pools": {"a": {"addresses": [{"address": "192.0.2.1"}]}}}`)
	st := newMemStore(t)
	cfg.Store = st
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Written after New (setup) and before Start (startup): the reload window.
	d, err := st.Commit(context.Background(), []state.Op{
		{Key: state.ConfigKey("pools", "late"), Value: []byte(`{"addresses":[{"address":"192.0.2.7"}]}`)},
		{Key: state.ConfigKey("domains", "late.gtm.start.test."), Value: []byte(`{"routes":[{"selector":"default","pools":["late"]}]}`)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Stop)
	cs := b.Snapshot()
	if cs.Domain("late.gtm.start.test.") == nil || cs.Pool("late") == nil || b.InForce().Pool("late") == nil {
		t.Fatal("a write of the reload window is not in force after Start")
	}
	if cs.Revision() != d.Revision || b.Revision() != d.Revision {
		t.Fatalf("revision %d, want the state's %d", cs.Revision(), d.Revision)
	}
	// A mode write needs no compile: a new Snapshot of the same compiled configuration.
	if err := st.SetMode(context.Background(), "late", "192.0.2.7", policy.ModeDown); err != nil {
		t.Fatal(err)
	}
	if next := b.Snapshot(); next == cs || next.compiled != cs.compiled || next.Revision() != st.Data().Revision {
		t.Fatalf("after a mode write: snapshot %p (was %p), revision %d, want %d", next, cs, next.Revision(), st.Data().Revision)
	}
}

// A resource written through the API gets the warnings a Corefile one gets (config.Warnings).
func TestAPIWrittenResourceWarned(t *testing.T) {
	lines := testLog.capture(t)
	cfg := testConfig(t, "gtm.warn.test.", `{"pools": {"a": {"addresses": [{"address": "192.0.2.1"}]}}}`)
	st := newMemStore(t)
	cfg.Store = st
	startBlock(t, cfg)
	_, err := st.Commit(context.Background(), []state.Op{{Key: state.ConfigKey("domains", "x.gtm.warn.test."), Value: []byte(`{"routes":[{"selector":"net:192.0.2.0/24","pools":["a"]}]}`)}})
	if err != nil {
		t.Fatal(err)
	}
	logged := lines()
	for _, l := range logged {
		if strings.Contains(l, "domain x.gtm.warn.test. has no default route") && strings.Contains(l, "written through the API") {
			return
		}
	}
	t.Fatalf("no warning for the API domain without a default route: %q", logged)
}

// testLog is installed as the package's logger before any test runs, so no test writes the
// log variable while probers of earlier tests (a process-wide registry) may still log.
var testLog = &recordLog{next: log}

func init() { log = testLog }

// recordLog forwards every line and, while a test captures, keeps a copy.
type recordLog struct {
	next      Logger
	mu        sync.Mutex
	capturing bool
	lines     []string
}

func (l *recordLog) capture(t *testing.T) func() []string {
	l.mu.Lock()
	l.capturing, l.lines = true, nil
	l.mu.Unlock()
	t.Cleanup(func() {
		l.mu.Lock()
		l.capturing, l.lines = false, nil
		l.mu.Unlock()
	})
	return func() []string {
		l.mu.Lock()
		defer l.mu.Unlock()
		return append([]string(nil), l.lines...)
	}
}

func (l *recordLog) keep(f string, a ...any) {
	l.mu.Lock()
	if l.capturing {
		l.lines = append(l.lines, fmt.Sprintf(f, a...))
	}
	l.mu.Unlock()
}

func (l *recordLog) Debugf(f string, a ...any)   { l.next.Debugf(f, a...) }
func (l *recordLog) Infof(f string, a ...any)    { l.keep(f, a...); l.next.Infof(f, a...) }
func (l *recordLog) Warningf(f string, a ...any) { l.keep(f, a...); l.next.Warningf(f, a...) }
func (l *recordLog) Errorf(f string, a ...any)   { l.keep(f, a...); l.next.Errorf(f, a...) }

// A server CoreDNS failed to stop on a reload keeps calling the old instance's handler: the
// stopped block answers from the block that replaced it (same zones), through any number
// of later reloads, and from nothing once no block serves its zones.
func TestStoppedBlockAnswersFromSuccessor(t *testing.T) {
	doc := `{
	"pools": {"a": {"addresses": [{"address": "192.0.2.1"}]}},
	"domains": {"www.gtm.succ.test": {"routes": [{"selector": "default", "pools": ["a"]}]}}
}`
	first := startBlock(t, testConfig(t, "gtm.succ.test.", doc))
	other := startBlock(t, testConfig(t, "gtm.other.test.", `{}`))
	second := startBlock(t, testConfig(t, "gtm.succ.test.", doc)) // the reload's new block
	first.Stop()
	if got := first.Snapshot(); got == nil || got != second.Snapshot() {
		t.Fatalf("stopped block answers from %p, want its successor's %p", got, second.Snapshot())
	}
	third := startBlock(t, testConfig(t, "gtm.succ.test.", doc)) // another reload
	second.Stop()
	if got := first.Snapshot(); got != third.Snapshot() {
		t.Fatalf("after a second reload the stray answers from %p, want %p", got, third.Snapshot())
	}
	if first.Snapshot() == other.Snapshot() {
		t.Fatal("a block of other zones is nobody's successor")
	}
	third.Stop() // shut down: nothing serves the zones
	if got := first.Snapshot(); got != nil {
		t.Fatal("a stopped block answered with every block of its zones stopped")
	}
}
