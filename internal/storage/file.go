package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// File is an object opened for random access (Parquet readers read the
// footer first, then the column chunks they need).
type File interface {
	io.ReaderAt
	io.ReadSeeker
	io.Closer
}

// Open opens key for random access and returns its size. A local store
// gives its file; a remote one answers each ReadAt with a ranged GET.
func Open(ctx context.Context, s Store, key string) (File, int64, error) {
	return OpenSized(ctx, s, key, -1)
}

// OpenSized is Open of an object whose size the caller knows (a Delta add
// records it): a remote object is then not Stat'ed first, a round trip
// saved per file. size < 0 = unknown.
func OpenSized(ctx context.Context, s Store, key string, size int64) (File, int64, error) {
	if p, ok := LocalPath(s, key); ok {
		f, err := os.Open(p)
		if err != nil {
			return nil, 0, fmt.Errorf("open %s: %w", Join(s.Location(), key), translate(err))
		}
		fi, err := f.Stat()
		if err != nil || !fi.Mode().IsRegular() {
			f.Close()
			return nil, 0, fmt.Errorf("open %s: %w", Join(s.Location(), key), ErrNotFound)
		}
		return f, fi.Size(), nil
	}
	if size < 0 {
		info, err := s.Stat(ctx, key)
		if err != nil {
			return nil, 0, err
		}
		size = info.Size
	}
	r := &rangeFile{ctx: ctx, s: s, key: key, size: size}
	return r, size, nil
}

// tailBytes is how much of a remote file's end the first read there
// fetches at once: a Parquet reader reads the 8-byte footer length, then
// the footer before it, then column chunks; fetching the tail whole turns
// the first two round trips into one (a footer of a few dozen columns and
// row groups fits easily).
const tailBytes = 64 << 10

func translate(err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return ErrNotFound
	}
	return err
}

// rangeFile reads a remote object by ranges.
type rangeFile struct {
	ctx  context.Context
	s    Store
	key  string
	size int64
	off  int64

	tailOnce sync.Once
	tail     []byte // the object's last bytes, from tailStart
	tailErr  error
}

// tailStart is where the prefetched tail begins.
func (r *rangeFile) tailStart() int64 { return max(r.size-tailBytes, 0) }

func (r *rangeFile) ReadAt(p []byte, off int64) (int, error) {
	if off >= r.size {
		return 0, io.EOF
	}
	n := min(int64(len(p)), r.size-off)
	if ts := r.tailStart(); off >= ts {
		r.tailOnce.Do(func() {
			body, err := r.s.GetRange(r.ctx, r.key, ts, r.size-ts)
			if err != nil {
				r.tailErr = err
				return
			}
			defer body.Close()
			r.tail = make([]byte, r.size-ts)
			if _, err := io.ReadFull(body, r.tail); err != nil {
				r.tail, r.tailErr = nil, fmt.Errorf("read %s at %d: %w", Join(r.s.Location(), r.key), ts, err)
			}
		})
		if r.tailErr != nil {
			return 0, r.tailErr
		}
		got := copy(p[:n], r.tail[off-ts:])
		if got < len(p) {
			return got, io.EOF
		}
		return got, nil
	}
	body, err := r.s.GetRange(r.ctx, r.key, off, n)
	if err != nil {
		return 0, err
	}
	defer body.Close()
	got, err := io.ReadFull(body, p[:n])
	if err != nil {
		return got, fmt.Errorf("read %s at %d: %w", Join(r.s.Location(), r.key), off, err)
	}
	if got < len(p) {
		return got, io.EOF
	}
	return got, nil
}

func (r *rangeFile) Read(p []byte) (int, error) {
	n, err := r.ReadAt(p, r.off)
	r.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

func (r *rangeFile) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += r.off
	case io.SeekEnd:
		off += r.size
	default:
		return 0, fmt.Errorf("seek: bad whence %d", whence)
	}
	if off < 0 {
		return 0, fmt.Errorf("seek before the start")
	}
	r.off = off
	return off, nil
}

func (r *rangeFile) Close() error { return nil }

// CreateTemp makes a local file to write an object's bytes into before
// PutFile publishes it: beside the object's own file for a local store (so
// PutFile is a rename), else in scratchDir ("" = the OS temp dir).
func CreateTemp(s Store, key, scratchDir string) (*os.File, error) {
	dir := scratchDir
	if p, ok := LocalPath(s, key); ok {
		dir = filepath.Dir(p)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
	} else if dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
	}
	// '.' first and ".tmp" last: a local store's List never shows it.
	return os.CreateTemp(dir, "."+filepath.Base(key)+".*.tmp")
}

// PutFile publishes the whole of local file f (made by CreateTemp, still
// open) as key, replacing what is there, and removes the local file. On a
// local store it is an fsync and a rename; otherwise an upload (multipart
// when large). f is closed either way.
func PutFile(ctx context.Context, s Store, key string, f *os.File, noSync bool) error {
	name := f.Name()
	defer os.Remove(name) // no-op after a rename
	if p, ok := LocalPath(s, key); ok && filepath.Dir(p) == filepath.Dir(name) {
		var err error
		if !noSync {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(name, p)
		}
		if err == nil && !noSync {
			err = syncDirOf(p)
		}
		if err != nil {
			return fmt.Errorf("put %s: %w", Join(s.Location(), key), err)
		}
		return nil
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("put %s: %w", Join(s.Location(), key), err)
	}
	return s.Put(ctx, key, f, fi.Size())
}

func syncDirOf(p string) error {
	d, err := os.Open(filepath.Dir(p))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
