package state

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gtm-dns/coredns-gtm/policy"
)

var ctx = context.Background()

func openFileStore(t *testing.T, path string) *Store {
	t.Helper()
	f, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	s := openFileStore(t, path)
	mc := s.ModeCell("hz", "192.0.2.1")
	pc := s.PinCell("www.example.net.")
	if mc != s.ModeCell("hz", "192.0.2.1") || pc != s.PinCell("www.example.net.") {
		t.Fatal("cells must be the same for the same key")
	}
	if err := s.SetMode(ctx, "hz", "192.0.2.1", policy.ModeDown); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPin(ctx, "www.example.net.", "sg"); err != nil {
		t.Fatal(err)
	}
	s.Lock()
	if _, err := s.Commit(ctx, []Op{{Key: ConfigKey("pools", "eu"), Value: []byte(`{"addresses":[{"address":"192.0.2.9"}]}`), Check: true}}); err != nil {
		t.Fatal(err)
	}
	s.Unlock()
	if mc.Get() != policy.ModeDown || pc.Get() != "sg" {
		t.Fatal("the cells handed out earlier must see the change")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
	again := openFileStore(t, path)
	d := again.Data()
	if again.ModeCell("hz", "192.0.2.1").Get() != policy.ModeDown || again.PinCell("www.example.net.").Get() != "sg" {
		t.Fatal("overrides not loaded back")
	}
	if d.Revision != 3 || d.Entries[ConfigKey("pools", "eu")].Revision != 3 || d.Entries[ModeKey("hz", "192.0.2.1")].Revision != 1 {
		t.Fatalf("revisions not kept: %+v", d)
	}
	// Back to auto and unpinned: nothing left in force, and the file says so.
	again.SetMode(ctx, "hz", "192.0.2.1", policy.ModeAuto)
	again.SetPin(ctx, "www.example.net.", "")
	b, _ := os.ReadFile(path)
	if strings.Contains(string(b), "192.0.2.1") || strings.Contains(string(b), `"sg"`) {
		t.Fatalf("state file still holds cleared overrides: %s", b)
	}
}

// Optimistic writes: a precondition on a revision that moved changes nothing.
func TestCommitConflict(t *testing.T) {
	s := openFileStore(t, filepath.Join(t.TempDir(), "s.json"))
	key := ConfigKey("pools", "eu")
	s.Lock()
	defer s.Unlock()
	if _, err := s.Commit(ctx, []Op{{Key: key, Value: []byte(`{}`), Check: true}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(ctx, []Op{{Key: key, Value: []byte(`{"x":1}`), Check: true, Revision: 0}}); !errors.Is(err, ErrConflict) {
		t.Fatalf("create over an existing key: %v, want ErrConflict", err)
	}
	if string(s.Data().Entries[key].Value) != `{}` {
		t.Fatal("a refused write changed the state")
	}
	if _, err := s.Commit(ctx, []Op{{Key: key, Value: []byte(`{"x":2}`), Check: true, Revision: 1}}); err != nil {
		t.Fatalf("write at the current revision: %v", err)
	}
}

// A version 1 file (modes and pins, from before the control layer) loads, and the next
// write turns it into version 2 without losing them.
func TestFileVersion1Loads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	os.WriteFile(path, []byte(`{"version":1,"modes":{"hz/192.0.2.1":"down"},"pins":{"www.example.net.":"sg"}}`), 0o600)
	s := openFileStore(t, path)
	if s.ModeCell("hz", "192.0.2.1").Get() != policy.ModeDown || s.PinCell("www.example.net.").Get() != "sg" {
		t.Fatal("version 1 overrides not loaded")
	}
	if err := s.SetMode(ctx, "hz", "192.0.2.2", policy.ModeUp); err != nil {
		t.Fatal(err)
	}
	again := openFileStore(t, path)
	if again.ModeCell("hz", "192.0.2.1").Get() != policy.ModeDown || again.ModeCell("hz", "192.0.2.2").Get() != policy.ModeUp || again.PinCell("www.example.net.").Get() != "sg" {
		t.Fatal("overrides lost in the upgrade to version 2")
	}
}

func TestFileErrors(t *testing.T) {
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "corrupt.json")
	os.WriteFile(corrupt, []byte(`{"version":1,"modes":{`), 0o600)
	badMode := filepath.Join(dir, "badmode.json")
	os.WriteFile(badMode, []byte(`{"version":1,"modes":{"p/a":"sideways"}}`), 0o600)
	future := filepath.Join(dir, "future.json")
	os.WriteFile(future, []byte(`{"version":9}`), 0o600)
	notDir := filepath.Join(dir, "file")
	os.WriteFile(notDir, nil, 0o600)
	for path, want := range map[string]string{
		corrupt:                               "is corrupt",
		badMode:                               `mode "sideways"`,
		future:                                "version 9",
		filepath.Join(dir, "nodir", "s.json"): "does not exist",
		filepath.Join(notDir, "s.json"):       "is not a directory",
	} {
		_, err := OpenFile(path)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), filepath.Dir(path)) {
			t.Errorf("OpenFile(%s) = %v, want an error naming it and saying %q", path, err, want)
		}
	}
}

// A symlinked state file is written through the link; fields a newer version wrote are
// kept.
func TestFileSymlinkAndUnknownFields(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "real.json")
	os.WriteFile(target, []byte(`{"version":2,"revision":0,"entries":{},"future_field":{"a":1}}`), 0o600)
	link := filepath.Join(dir, "state.json")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	s := openFileStore(t, link)
	if err := s.SetMode(ctx, "hz", "192.0.2.1", policy.ModeDown); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatal("the symlink was replaced by a regular file")
	}
	b, _ := os.ReadFile(target)
	if !strings.Contains(string(b), "192.0.2.1") || !strings.Contains(string(b), "future_field") {
		t.Fatalf("target not written, or unknown fields dropped: %s", b)
	}
}

// When the rename succeeded but the directory sync failed, the new file is what a restart
// reads: the write must count as done, in memory too (answer, memory and disk agree).
func TestDirSyncFailureStillCommits(t *testing.T) {
	old := syncDir
	syncDir = func(string) error { return errors.New("injected EIO") }
	t.Cleanup(func() { syncDir = old })
	path := filepath.Join(t.TempDir(), "s.json")
	s := openFileStore(t, path)
	if err := s.SetMode(ctx, "hz", "192.0.2.1", policy.ModeDown); err != nil {
		t.Fatalf("write reported failed though the file was replaced: %v", err)
	}
	if openFileStore(t, path).ModeCell("hz", "192.0.2.1").Get() != policy.ModeDown || s.ModeCell("hz", "192.0.2.1").Get() != policy.ModeDown {
		t.Fatal("memory and disk disagree")
	}
}

// A write that cannot reach the disk changes nothing in memory.
func TestFailedWriteChangesNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.json")
	s := openFileStore(t, path)
	os.Chmod(dir, 0o500)
	t.Cleanup(func() { os.Chmod(dir, 0o700) })
	if os.Getuid() == 0 {
		// root ignores directory permissions: make the rename fail instead.
		os.Chmod(dir, 0o700)
		os.Mkdir(path, 0o700)
		os.WriteFile(filepath.Join(path, "x"), nil, 0o600)
	}
	if err := s.SetMode(ctx, "hz", "192.0.2.1", policy.ModeDown); err == nil {
		t.Fatal("write into an unwritable place reported success")
	}
	if s.ModeCell("hz", "192.0.2.1").Get() != policy.ModeAuto || len(s.Data().Entries) != 0 {
		t.Fatal("a failed write changed the state in memory")
	}
}

func TestSubscribersSeeEveryChange(t *testing.T) {
	s, _ := Open(ctx, NewMemory())
	var revs []int64
	cancel := s.Subscribe(func(d *Data) { revs = append(revs, d.Revision) })
	s.SetPin(ctx, "a.", "p")
	s.SetPin(ctx, "a.", "")
	cancel()
	s.SetPin(ctx, "a.", "q")
	if len(revs) != 2 || revs[0] != 1 || revs[1] != 2 {
		t.Fatalf("subscriber saw revisions %v, want [1 2]", revs)
	}
}

// A closed store calls no subscriber and sets no timer: what its owner ran on it is over.
func TestClose(t *testing.T) {
	s, _ := Open(ctx, NewMemory())
	calls := 0
	s.Subscribe(func(*Data) { calls++ })
	if err := s.Close(); err != nil || !s.Closed() {
		t.Fatalf("Close: %v, closed %v", err, s.Closed())
	}
	until := time.Now().Add(time.Hour)
	s.SetPinWindow(ctx, "a.", "p", Window{Until: until})
	if calls != 0 {
		t.Fatalf("a subscriber was called %d times after Close", calls)
	}
	s.mu.Lock()
	armed := s.sched.timer != nil
	s.mu.Unlock()
	if armed {
		t.Fatal("a timer was set after Close")
	}
}
