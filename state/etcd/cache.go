package etcd

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"unicode/utf8"

	"github.com/gtm-dns/coredns-gtm/state"
)

// The cache file is the state/file.go format's idea for a copy: one JSON document,
// replaced atomically (temporary file, fsync, rename, fsync of the directory) after every
// change applied, so a crash leaves the old or the new copy. A value is kept byte for byte:
// as a string in "text" when it is UTF-8 (the JSON of the state's keys), else as base64 in
// "bytes" (something written around the API).
const cacheVersion = 1

type cacheDoc struct {
	Version  int                   `json:"version"`
	Path     string                `json:"path"`
	Revision int64                 `json:"revision"`
	Entries  map[string]cacheEntry `json:"entries"`
	// What a restarted node compares etcd with, to notice a store gone back in time.
	Generation   int64  `json:"generation,omitempty"`
	Epoch        string `json:"epoch,omitempty"`
	EtcdRevision int64  `json:"etcd_revision,omitempty"`
	ClusterID    uint64 `json:"cluster_id,omitempty"`
}

type cacheEntry struct {
	Revision int64   `json:"revision"`
	Text     *string `json:"text,omitempty"`
	Bytes    []byte  `json:"bytes,omitempty"`
}

// readCache returns the state in the cache file, nil if there is none, and what the node
// that wrote it had seen of etcd.
func readCache(file, path string) (*state.Data, history, error) {
	d, doc, err := readCacheDoc(file)
	if err != nil || d == nil {
		return nil, history{}, err
	}
	if doc.Path != path {
		return nil, history{}, fmt.Errorf("a copy of path %s, not %s", doc.Path, path)
	}
	return d, history{header: doc.EtcdRevision, clusterID: doc.ClusterID, gen: doc.Generation, rev: doc.Revision}, nil
}

// CacheInfo is what a cache file says beside the state.
type CacheInfo struct {
	Path     string // the fleet's key prefix it is a copy of
	Revision int64
}

// ReadCache reads a node's cache file (gtmctl restore --from-cache): the state it holds,
// nil if there is no file.
func ReadCache(file string) (*state.Data, CacheInfo, error) {
	d, doc, err := readCacheDoc(file)
	if err != nil || d == nil {
		return nil, CacheInfo{}, err
	}
	return d, CacheInfo{Path: doc.Path, Revision: doc.Revision}, nil
}

// ParseCache decodes the body of a cache file.
func ParseCache(b []byte) (*state.Data, CacheInfo, error) {
	d, doc, err := parseCache(b)
	if err != nil {
		return nil, CacheInfo{}, err
	}
	return d, CacheInfo{Path: doc.Path, Revision: doc.Revision}, nil
}

func readCacheDoc(file string) (*state.Data, *cacheDoc, error) {
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	return parseCache(b)
}

func parseCache(b []byte) (*state.Data, *cacheDoc, error) {
	var doc cacheDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, nil, fmt.Errorf("corrupt (%v)", err)
	}
	if doc.Version != cacheVersion {
		return nil, nil, fmt.Errorf("version %d; expected %d", doc.Version, cacheVersion)
	}
	d := &state.Data{Revision: doc.Revision, Entries: make(map[string]state.Entry, len(doc.Entries)), Generation: doc.Generation, Epoch: doc.Epoch}
	for k, e := range doc.Entries {
		if !stateKey(k) {
			return nil, nil, fmt.Errorf("entry %q: not a state key", k)
		}
		v := []byte{}
		switch {
		case e.Text != nil:
			v = []byte(*e.Text)
		case e.Bytes != nil:
			v = e.Bytes
		}
		d.Entries[k] = state.Entry{Value: v, Revision: e.Revision}
	}
	return d, &doc, nil
}

func writeCacheFile(file, path string, d *state.Data, h history) error {
	doc := cacheDoc{Version: cacheVersion, Path: path, Revision: d.Revision, Entries: make(map[string]cacheEntry, len(d.Entries)),
		Generation: d.Generation, Epoch: d.Epoch, EtcdRevision: h.header, ClusterID: h.clusterID}
	for k, e := range d.Entries {
		ce := cacheEntry{Revision: e.Revision}
		if utf8.Valid(e.Value) {
			t := string(e.Value)
			ce.Text = &t
		} else {
			ce.Bytes = e.Value
		}
		doc.Entries[k] = ce
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(file)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(file)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
