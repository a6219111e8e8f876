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
// footer first, then the column chunks they need). A remote one also has
// Prefetch(off, n int64) error (see [Prefetcher]).
type File interface {
	io.ReaderAt
	io.ReadSeeker
	io.Closer
}

// Prefetcher is implemented by the Files of remote stores: Prefetch
// fetches a byte range in one request, and reads inside it are then served
// from memory.
type Prefetcher interface {
	Prefetch(off, n int64) error
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

	mu     sync.Mutex
	window []byte // bytes from winOff, fetched by Prefetch
	winOff int64
}

// Prefetch fetches [off, off+n) in one ranged GET and serves later reads
// inside it from memory (until the next Prefetch replaces it). A Parquet
// reader reads each column chunk it needs with a read of its own; the
// caller that knows which chunks come next (the key columns of one row
// group) turns their round trips into one.
func (r *rangeFile) Prefetch(off, n int64) error {
	if off < 0 || n <= 0 || off >= r.tailStart() {
		return nil // in the tail, which one read fetches whole
	}
	n = min(n, r.size-off)
	body, err := r.s.GetRange(r.ctx, r.key, off, n)
	if err != nil {
		return err
	}
	defer body.Close()
	buf := make([]byte, n)
	if _, err := io.ReadFull(body, buf); err != nil {
		return fmt.Errorf("read %s at %d: %w", Join(r.s.Location(), r.key), off, err)
	}
	r.mu.Lock()
	r.window, r.winOff = buf, off
	r.mu.Unlock()
	return nil
}

// fromWindow serves a read that lies wholly inside the prefetched window.
func (r *rangeFile) fromWindow(p []byte, off int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.window == nil || off < r.winOff || off+int64(len(p)) > r.winOff+int64(len(r.window)) {
		return false
	}
	copy(p, r.window[off-r.winOff:])
	return true
}

// tailStart is where the prefetched tail begins.
func (r *rangeFile) tailStart() int64 { return max(r.size-tailBytes, 0) }

func (r *rangeFile) ReadAt(p []byte, off int64) (int, error) {
	if off >= r.size {
		return 0, io.EOF
	}
	n := min(int64(len(p)), r.size-off)
	if n == int64(len(p)) && r.fromWindow(p, off) {
		return len(p), nil
	}
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
