package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// File rotation: the file is renamed FILE.1 when a record would take it past MaxFileSize,
// FILE.1 to FILE.2 and so on; FILE.Keep is dropped.
const (
	MaxFileSize = 64 << 20
	Keep        = 4
)

// recent is how many of the latest records a File keeps in memory, so the API and the page
// list them without reading the file.
const recent = 1000

// File appends records to a JSON-lines file, one fsync per record before the write it
// records is committed. A File is shared by every gtm block (and reload) naming its path.
type File struct {
	path string

	mu      sync.Mutex
	next    uint64
	ring    []Record // the latest records, oldest first
	maxSize int64
	keep    int
	refs    int // guarded by files.Mutex
}

var files struct {
	sync.Mutex
	m map[string]*File
}

// OpenFile returns the audit file at path, reading the latest records and the next ID
// from it (and its rotated predecessor). A record torn by a crash (a last line without
// its newline: never acknowledged) is cut off. A file that cannot be written is not an
// error here: each write then fails with the reason, and Check reports it now.
func OpenFile(path string) (*File, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("audit file %s: %v", path, err)
	}
	files.Lock()
	defer files.Unlock()
	if f, ok := files.m[abs]; ok {
		f.refs++
		return f, nil
	}
	if fi, err := os.Stat(abs); err == nil && fi.IsDir() {
		return nil, fmt.Errorf("audit file %s is a directory", path)
	}
	f := &File{path: abs, next: 1, maxSize: MaxFileSize, keep: Keep, refs: 1}
	if err := f.recover(); err != nil {
		return nil, err
	}
	if files.m == nil {
		files.m = map[string]*File{}
	}
	files.m[abs] = f
	return f, nil
}

// recover reads the latest records and the next ID.
func (f *File) recover() error {
	recs, err := readRecords(f.path, true)
	if err != nil {
		return err
	}
	if len(recs) == 0 {
		if recs, err = readRecords(f.rotated(1), false); err != nil {
			return err
		}
	}
	if n := len(recs); n > 0 {
		f.next = recs[n-1].ID + 1
		f.ring = recs[max(n-recent, 0):]
	}
	return nil
}

// readRecords decodes a file's records; a missing or non-regular file (/dev/full) has
// none. With cut, a torn last line is removed from the file.
func readRecords(path string, cut bool) ([]Record, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && !fi.Mode().IsRegular()) {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrPermission) {
		return nil, nil // Check and every write report it
	}
	if err != nil {
		return nil, fmt.Errorf("audit file %s: %v", path, err)
	}
	if i := bytes.LastIndexByte(b, '\n'); i+1 < len(b) {
		b = b[:i+1]
		if cut {
			if err := os.Truncate(path, int64(i+1)); err != nil {
				return nil, fmt.Errorf("audit file %s: cutting a torn last record: %v", path, err)
			}
		}
	}
	var out []Record
	for n, line := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var r Record
		if err := json.Unmarshal(line, &r); err != nil {
			return nil, fmt.Errorf("audit file %s:%d: %v", path, n+1, err)
		}
		out = append(out, r)
	}
	return out, nil
}

func (f *File) rotated(i int) string { return f.path + "." + strconv.Itoa(i) }

// Check reports whether a record can be appended now.
func (f *File) Check() error {
	fh, err := os.OpenFile(f.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit file: %v", err)
	}
	return fh.Close()
}

// Append implements Log.
func (f *File) Append(_ context.Context, rec *Record) error { return f.add(rec) }

// add appends rec and fsyncs it. On failure the file is left as it was.
func (f *File) add(rec *Record) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	rec.ID = f.next
	line, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("audit record: %v", err)
	}
	line = append(line, '\n')
	fh, err := f.open(int64(len(line)))
	if err != nil {
		return fmt.Errorf("audit file: %v", err)
	}
	fi, statErr := fh.Stat()
	n, err := fh.Write(line)
	if err == nil {
		err = fh.Sync()
	}
	if err != nil {
		if n > 0 && statErr == nil && fi.Mode().IsRegular() {
			fh.Truncate(fi.Size()) // no half record for the next one to follow
		}
		fh.Close()
		return fmt.Errorf("audit file %s: %v", f.path, err)
	}
	if err := fh.Close(); err != nil {
		return fmt.Errorf("audit file %s: %v", f.path, err)
	}
	f.next++
	if len(f.ring) == recent {
		f.ring = append(f.ring[:0], f.ring[1:]...)
	}
	f.ring = append(f.ring, *rec)
	return nil
}

// open opens the file for appending a record of n bytes, rotating it first when the record
// would take it past the size limit. The file is opened per record, so one that becomes
// unwritable (or is moved away) is noticed at the next write.
func (f *File) open(n int64) (*os.File, error) {
	fi, err := os.Stat(f.path)
	created := errors.Is(err, fs.ErrNotExist)
	if err == nil && fi.Mode().IsRegular() && fi.Size() > 0 && fi.Size()+n > f.maxSize {
		if err := f.rotate(); err != nil {
			return nil, err
		}
		created = true
	}
	fh, err := os.OpenFile(f.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if created {
		if err := syncDir(filepath.Dir(f.path)); err != nil {
			fh.Close()
			return nil, err
		}
	}
	return fh, nil
}

// rotate shifts FILE.i to FILE.i+1 (dropping FILE.keep) and FILE to FILE.1.
func (f *File) rotate() error {
	for i := f.keep - 1; i >= 1; i-- {
		if err := os.Rename(f.rotated(i), f.rotated(i+1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("rotating: %v", err)
		}
	}
	if err := os.Rename(f.path, f.rotated(1)); err != nil {
		return fmt.Errorf("rotating: %v", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Rider implements Log: the record is appended and fsynced before the state commit.
func (f *File) Rider(rec *Record) Rider { return &selfRider{rec: rec, appendFn: f.add} }

// List implements Log: from memory when the latest records cover the question, else from
// the files, oldest first.
func (f *File) List(_ context.Context, since int64, limit int) ([]Record, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := len(f.ring); (since < 0 && limit <= n) || (n > 0 && since >= 0 && uint64(since)+1 >= f.ring[0].ID) || f.next == 1 {
		return pick(f.ring, since, limit), nil
	}
	var all []Record
	for i := f.keep; i >= 0; i-- {
		p := f.path
		if i > 0 {
			p = f.rotated(i)
		}
		recs, err := scan(p, since)
		if err != nil {
			return nil, err
		}
		all = append(all, recs...)
		if since >= 0 && len(all) >= limit {
			break
		}
	}
	return pick(all, since, limit), nil
}

// scan reads the records of one file with an ID above since (all when since < 0).
func scan(path string, since int64) ([]Record, error) {
	fh, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit file: %v", err)
	}
	defer fh.Close()
	if fi, err := fh.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, nil
	}
	var out []Record
	br := bufio.NewReaderSize(fh, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			var r Record
			if json.Unmarshal(line, &r) == nil && (since < 0 || r.ID > uint64(since)) {
				out = append(out, r)
			}
		}
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("audit file %s: %v", path, err)
		}
	}
}

// Where implements Log.
func (f *File) Where() string { return f.path }

// Close implements Log: the last user of the path lets it go.
func (f *File) Close() error {
	files.Lock()
	defer files.Unlock()
	f.refs--
	if f.refs == 0 {
		delete(files.m, f.path)
	}
	return nil
}
