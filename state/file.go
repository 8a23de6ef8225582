package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/gtm-dns/coredns-gtm/policy"
)

// FileVersion is the schema version the file backend writes. Version 1 files (modes and
// pins only, from before the control layer) still load.
const FileVersion = 2

// File keeps the state in one JSON file, replaced atomically on every write (temporary file
// in the same directory, fsync, rename, fsync of the directory): a crash leaves the old or
// the new file, never a torn one.
type File struct {
	path string // the file written: a symlink is followed once, at open

	mu    sync.Mutex
	data  *Data
	extra map[string]json.RawMessage // top-level fields this version does not know, kept
}

// Memory keeps the state in the process only: overrides outlive reloads, not restarts.
type Memory struct {
	mu   sync.Mutex
	data *Data
}

// NewMemory returns an empty in-memory backend.
func NewMemory() *Memory { return &Memory{data: &Data{Entries: map[string]Entry{}}} }

// Load implements Backend.
func (m *Memory) Load(context.Context) (*Data, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.data, nil
}

// Commit implements Backend.
func (m *Memory) Commit(_ context.Context, ops []Op) (*Data, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, err := m.data.Apply(ops)
	if err != nil {
		return nil, err
	}
	m.data = d
	return d, nil
}

// Durable implements Backend: memory is not.
func (m *Memory) Durable() bool { return false }

// Close implements Backend.
func (m *Memory) Close() error { return nil }

type fileV2 struct {
	Version  int              `json:"version"`
	Revision int64            `json:"revision"`
	Entries  map[string]entry `json:"entries"`
}

type entry struct {
	Revision int64           `json:"revision"`
	Value    json.RawMessage `json:"value"`
}

type fileV1 struct {
	Modes map[string]string `json:"modes"` // "pool/address" -> up|down
	Pins  map[string]string `json:"pins"`  // "domain." -> pool
}

// OpenFile opens the state file at path. A missing file is an empty state; a missing
// directory, a directory that is not one, or a corrupt file is an error.
func OpenFile(path string) (*File, error) {
	dir := filepath.Dir(path)
	switch st, err := os.Stat(dir); {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("state file directory %s does not exist", dir)
	case err != nil:
		return nil, fmt.Errorf("state file directory %s: %v", dir, err)
	case !st.IsDir():
		return nil, fmt.Errorf("state file directory %s is not a directory", dir)
	}
	// Write through a symlink to its target rather than replace the link by a regular file.
	if target, err := filepath.EvalSymlinks(path); err == nil {
		path = target
	} else if lt, lerr := os.Readlink(path); lerr == nil {
		if !filepath.IsAbs(lt) {
			lt = filepath.Join(dir, lt)
		}
		path = lt // a dangling link: create its target
	}
	f := &File{path: path, data: &Data{Entries: map[string]Entry{}}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state file %s: %v", path, err)
	}
	if err := f.decode(b); err != nil {
		return nil, fmt.Errorf("state file %s %v; fix or remove it, overrides are not dropped silently", path, err)
	}
	return f, nil
}

func (f *File) decode(b []byte) error {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return fmt.Errorf("is corrupt (%v)", err)
	}
	var version int
	if err := json.Unmarshal(top["version"], &version); err != nil {
		return fmt.Errorf("has no version (%v)", err)
	}
	switch version {
	case 1:
		var v fileV1
		if err := json.Unmarshal(b, &v); err != nil {
			return fmt.Errorf("is corrupt (%v)", err)
		}
		for k, m := range v.Modes {
			mode, ok := policy.ParseMode(m)
			if !ok {
				return fmt.Errorf(": mode %q of %s: expected auto, up or down", m, k)
			}
			if mode == policy.ModeAuto {
				continue
			}
			val, _ := json.Marshal(ModeValue{Mode: m})
			f.data.Entries[ModesPrefix+k] = Entry{Value: val}
		}
		for k, p := range v.Pins {
			if p == "" {
				continue
			}
			val, _ := json.Marshal(PinValue{Pool: p})
			f.data.Entries[PinsPrefix+k] = Entry{Value: val}
		}
		delete(top, "modes")
		delete(top, "pins")
	case FileVersion:
		var v fileV2
		if err := json.Unmarshal(b, &v); err != nil {
			return fmt.Errorf("is corrupt (%v)", err)
		}
		f.data.Revision = v.Revision
		for k, e := range v.Entries {
			if !validKey(k) || len(e.Value) == 0 {
				return fmt.Errorf(": entry %q: expected a key under config/, modes/, poolmodes/, pins/ or holds/ with a value", k)
			}
			f.data.Entries[k] = Entry{Value: []byte(e.Value), Revision: e.Revision}
		}
		delete(top, "revision")
		delete(top, "entries")
	default:
		return fmt.Errorf("has version %d; expected 1 or %d", version, FileVersion)
	}
	delete(top, "version")
	if len(top) > 0 {
		f.extra = top
	}
	return nil
}

func validKey(k string) bool {
	return strings.HasPrefix(k, ConfigPrefix) || strings.HasPrefix(k, ModesPrefix) || strings.HasPrefix(k, PinsPrefix) ||
		strings.HasPrefix(k, PoolModesPrefix) || strings.HasPrefix(k, HoldsPrefix)
}

// Path is the file written.
func (f *File) Path() string { return f.path }

// Load implements Backend.
func (f *File) Load(context.Context) (*Data, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.data, nil
}

// Durable implements Backend.
func (f *File) Durable() bool { return true }

// Close implements Backend.
func (f *File) Close() error { return nil }

// Commit implements Backend: the new state is on disk before it is returned. When the
// rename succeeded but the directory could not be synced, the new file is the one in place
// (it is what a restart reads), so the write counts as done and the failure is logged:
// the answer, memory and disk agree.
func (f *File) Commit(_ context.Context, ops []Op) (*Data, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, err := f.data.Apply(ops)
	if err != nil {
		return nil, err
	}
	if err := f.write(d); err != nil {
		return nil, err
	}
	f.data = d
	return d, nil
}

func (f *File) write(d *Data) error {
	doc := map[string]any{}
	for k, v := range f.extra {
		doc[k] = v
	}
	entries := make(map[string]entry, len(d.Entries))
	for k, e := range d.Entries {
		entries[k] = entry{Revision: e.Revision, Value: e.Value}
	}
	doc["version"], doc["revision"], doc["entries"] = FileVersion, d.Revision, entries
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(f.path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(f.path)+".*")
	if err != nil {
		return fmt.Errorf("state file: %v", err)
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("state file: %v", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("state file: %v", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("state file: %v", err)
	}
	if err := os.Rename(tmp.Name(), f.path); err != nil {
		return fmt.Errorf("state file: %v", err)
	}
	if err := syncDir(dir); err != nil {
		log.Printf("[WARNING] plugin/gtm: state file %s written, but its directory could not be synced: %v", f.path, err)
	}
	return nil
}

// syncDir is a variable so tests can make it fail.
var syncDir = func(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
