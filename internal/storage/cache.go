package storage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// Cache keeps local copies of remote objects in one worker's scratch
// directory, for engines that read files by name (DuckDB here has no
// httpfs: it cannot reach S3 itself). Objects of a local store are not
// copied: their own file is returned. Copies are keyed by the store's
// location, the key and the size, so the immutable Parquet files of a
// Delta table are downloaded once per worker; a key rewritten with
// another size is downloaded again. When the copies exceed MaxBytes the
// least recently used ones are removed. Safe for concurrent use; never
// share a Cache directory between workers (worker.scratch_dir).
type Cache struct {
	dir      string
	maxBytes int64

	mu    sync.Mutex
	files map[string]*cached // by local file name
	total int64
	inUse map[string]int
}

type cached struct {
	size int64
	used time.Time
}

// DefaultCacheBytes bounds a Cache when NewCache is given 0.
const DefaultCacheBytes = 50 << 30

// NewCache opens the cache under dir (created if missing), taking over
// copies a previous run left there. maxBytes 0 = DefaultCacheBytes.
func NewCache(dir string, maxBytes int64) (*Cache, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultCacheBytes
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("scratch cache %s: %w", dir, err)
	}
	c := &Cache{dir: dir, maxBytes: maxBytes, files: map[string]*cached{}, inUse: map[string]int{}}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("scratch cache %s: %w", dir, err)
	}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".part") {
			os.Remove(filepath.Join(dir, e.Name())) // a download that died
			continue
		}
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
			c.files[e.Name()] = &cached{size: fi.Size(), used: fi.ModTime()}
			c.total += fi.Size()
		}
	}
	return c, nil
}

// Dir is the cache's directory.
func (c *Cache) Dir() string { return c.dir }

// Local returns a local file holding the object key of s (size bytes, as
// the Delta log records it; < 0 = unknown, then the object is Stat'ed).
// The file stays valid until release is called; call it when the engine
// is done with the file.
func (c *Cache) Local(ctx context.Context, s Store, key string, size int64) (name string, release func(), err error) {
	if p, ok := LocalPath(s, key); ok {
		return p, func() {}, nil
	}
	if size < 0 {
		info, err := s.Stat(ctx, key)
		if err != nil {
			return "", nil, err
		}
		size = info.Size
	}
	sum := sha256.Sum256([]byte(s.Location() + "\x00" + key))
	base := hex.EncodeToString(sum[:12]) + "-" + fmt.Sprint(size) + "-" + sanitize(path.Base(key))
	local := filepath.Join(c.dir, base)

	c.mu.Lock()
	f, ok := c.files[base]
	if ok {
		f.used = time.Now()
		c.inUse[base]++
		c.mu.Unlock()
		return local, c.releaser(base), nil
	}
	c.inUse[base]++
	c.mu.Unlock()
	if err := c.download(ctx, s, key, local, size); err != nil {
		c.releaser(base)()
		return "", nil, err
	}
	c.mu.Lock()
	if _, ok := c.files[base]; !ok {
		c.files[base] = &cached{size: size, used: time.Now()}
		c.total += size
	}
	c.evictLocked()
	c.mu.Unlock()
	return local, c.releaser(base), nil
}

func (c *Cache) releaser(base string) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			if c.inUse[base]--; c.inUse[base] <= 0 {
				delete(c.inUse, base)
			}
			c.mu.Unlock()
		})
	}
}

// download copies the object to a temp file and renames it into place, so
// a half-written copy is never taken for a whole one.
func (c *Cache) download(ctx context.Context, s Store, key, local string, size int64) error {
	r, err := s.Get(ctx, key)
	if err != nil {
		return err
	}
	defer r.Close()
	tmp, err := os.CreateTemp(c.dir, filepath.Base(local)+".*.part")
	if err != nil {
		return fmt.Errorf("scratch cache: %w", err)
	}
	defer os.Remove(tmp.Name())
	n, err := io.Copy(tmp, r)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("download %s: %w", Join(s.Location(), key), err)
	}
	if n != size {
		return fmt.Errorf("download %s: got %d bytes, the log says %d", Join(s.Location(), key), n, size)
	}
	if err := os.Rename(tmp.Name(), local); err != nil {
		return fmt.Errorf("scratch cache: %w", err)
	}
	return nil
}

// evictLocked removes least recently used copies not in use until the
// total fits. c.mu is held.
func (c *Cache) evictLocked() {
	if c.total <= c.maxBytes {
		return
	}
	names := make([]string, 0, len(c.files))
	for n := range c.files {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return c.files[names[i]].used.Before(c.files[names[j]].used) })
	for _, n := range names {
		if c.total <= c.maxBytes {
			return
		}
		if c.inUse[n] > 0 {
			continue
		}
		if err := os.Remove(filepath.Join(c.dir, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		c.total -= c.files[n].size
		delete(c.files, n)
	}
}

// sanitize keeps a file name's readable tail for people looking at the
// scratch directory.
func sanitize(s string) string {
	b := []byte(s)
	for i, ch := range b {
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '.' || ch == '-' || ch == '_') {
			b[i] = '_'
		}
	}
	if len(b) > 80 {
		b = b[len(b)-80:]
	}
	return string(b)
}
