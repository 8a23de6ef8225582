// Package api is the admin side of coredns-gtm: manual overrides persisted to a state file,
// a ring of events, and the HTTP API and status page that expose them.
package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/gtm-dns/coredns-gtm/policy"
)

// Store holds manual overrides: address modes and domain pins. Its cells outlive
// configuration snapshots, so overrides carry over reloads; with a path they also survive
// restarts.
type Store struct {
	path string

	mu    sync.Mutex // serialises writers; the query path only reads cells
	modes map[string]*policy.ModeCell
	pins  map[string]*policy.PinCell
}

type stateFile struct {
	Version int               `json:"version"`
	Modes   map[string]string `json:"modes"` // "pool/address" -> up|down
	Pins    map[string]string `json:"pins"`  // "domain." -> pool
}

const stateVersion = 1

// OpenStore loads the state file at path ("" keeps overrides in memory only). A missing file
// is an empty state; a missing directory or a corrupt file is an error.
func OpenStore(path string) (*Store, error) {
	s := &Store{path: path, modes: map[string]*policy.ModeCell{}, pins: map[string]*policy.PinCell{}}
	if path == "" {
		return s, nil
	}
	dir := filepath.Dir(path)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("state file directory %s does not exist", dir)
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state file %s: %v", path, err)
	}
	var f stateFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("state file %s is corrupt (%v); fix or remove it, overrides are not dropped silently", path, err)
	}
	if f.Version != stateVersion {
		return nil, fmt.Errorf("state file %s has version %d; expected %d", path, f.Version, stateVersion)
	}
	for k, v := range f.Modes {
		m, ok := policy.ParseMode(v)
		if !ok {
			return nil, fmt.Errorf("state file %s: mode %q of %s: expected auto, up or down", path, v, k)
		}
		c := new(policy.ModeCell)
		c.Set(m)
		s.modes[k] = c
	}
	for k, v := range f.Pins {
		c := new(policy.PinCell)
		c.Set(v)
		s.pins[k] = c
	}
	return s, nil
}

var shared struct {
	sync.Mutex
	m map[string]*Store
}

// SharedStore returns the process's one Store for path, opening it on first use: a reload
// must reuse the cells in force, not re-read the file.
func SharedStore(path string) (*Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	shared.Lock()
	defer shared.Unlock()
	if s, ok := shared.m[abs]; ok {
		return s, nil
	}
	s, err := OpenStore(path)
	if err != nil {
		return nil, err
	}
	if shared.m == nil {
		shared.m = map[string]*Store{}
	}
	shared.m[abs] = s
	return s, nil
}

func modeKey(pool, addr string) string { return pool + "/" + addr }

// ModeCell returns the override cell of an address of a pool; the same cell every time.
func (s *Store) ModeCell(pool, addr string) *policy.ModeCell {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cell(s.modes, modeKey(pool, addr))
}

// PinCell returns the pin cell of a domain (a lower-case FQDN); the same cell every time.
func (s *Store) PinCell(domain string) *policy.PinCell {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cell(s.pins, domain)
}

// cell gets or creates the cell of key; called with s.mu held.
func cell[C any](m map[string]*C, key string) *C {
	c, ok := m[key]
	if !ok {
		c = new(C)
		m[key] = c
	}
	return c
}

// SetMode persists an address's mode, then puts it in force.
func (s *Store) SetMode(pool, addr string, m policy.Mode) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := modeKey(pool, addr)
	if err := s.persist(func(f *stateFile) {
		if m == policy.ModeAuto {
			delete(f.Modes, k)
		} else {
			f.Modes[k] = m.String()
		}
	}); err != nil {
		return err
	}
	cell(s.modes, k).Set(m)
	return nil
}

// SetPin persists a domain's pin ("" unpins), then puts it in force.
func (s *Store) SetPin(domain, pool string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.persist(func(f *stateFile) {
		if pool == "" {
			delete(f.Pins, domain)
		} else {
			f.Pins[domain] = pool
		}
	}); err != nil {
		return err
	}
	cell(s.pins, domain).Set(pool)
	return nil
}

// persist writes the current overrides with change applied: a temporary file in the same
// directory, fsync, rename over the old file, fsync the directory. A crash leaves the old
// or the new file, never a torn one. Called with s.mu held.
func (s *Store) persist(change func(*stateFile)) error {
	f := stateFile{Version: stateVersion, Modes: map[string]string{}, Pins: map[string]string{}}
	for k, c := range s.modes {
		if m := c.Get(); m != policy.ModeAuto {
			f.Modes[k] = m.String()
		}
	}
	for k, c := range s.pins {
		if p := c.Get(); p != "" {
			f.Pins[k] = p
		}
	}
	change(&f)
	if s.path == "" {
		return nil
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(s.path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(s.path)+".*")
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
	if err := os.Rename(tmp.Name(), s.path); err != nil {
		return fmt.Errorf("state file: %v", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("state file: %v", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("state file: %v", err)
	}
	return nil
}

// Overrides counts the overrides in force.
func (s *Store) Overrides() (modes, pins int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.modes {
		if c.Get() != policy.ModeAuto {
			modes++
		}
	}
	for _, c := range s.pins {
		if c.Get() != "" {
			pins++
		}
	}
	return modes, pins
}
