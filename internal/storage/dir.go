package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Dir is a Store on a local directory. Objects are files below the root;
// a Put is a temp file renamed into place and a PutIfAbsent a temp file
// hard-linked into place (link fails when the name exists, on every local
// file system and NFS), both fsynced with their directory first, so a
// crash never leaves a visible partial object.
type Dir struct {
	root string
	// NoSync skips fsync: tests that make thousands of commits.
	NoSync bool
}

// NewDir returns the store rooted at dir. The directory is created by the
// first write.
func NewDir(dir string) *Dir { return &Dir{root: filepath.Clean(dir)} }

// Location is file:///abs/dir.
func (d *Dir) Location() string {
	abs, err := filepath.Abs(d.root)
	if err != nil {
		abs = d.root
	}
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String()
}

// LocalPath implements Localizer.
func (d *Dir) LocalPath(key string) string { return filepath.Join(d.root, filepath.FromSlash(key)) }

func (d *Dir) pathOf(op, key string) (string, error) {
	if err := CheckKey(key); err != nil {
		return "", fmt.Errorf("%s %s: %w", op, key, err)
	}
	return d.LocalPath(key), nil
}

func (d *Dir) wrap(op, key string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s %s: %w", op, Join(d.root, key), ErrNotFound)
	}
	return fmt.Errorf("%s %s: %w", op, Join(d.root, key), err)
}

// Get implements Store.
func (d *Dir) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	return d.GetRange(ctx, key, 0, -1)
}

// GetRange implements Store.
func (d *Dir) GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := d.pathOf("get", key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, d.wrap("get", key, err)
	}
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		f.Close()
		return nil, fmt.Errorf("get %s: %w", Join(d.root, key), ErrNotFound)
	}
	if offset == 0 && length < 0 {
		return f, nil
	}
	if length < 0 {
		length = 1<<63 - 1 - offset
	}
	return struct {
		io.Reader
		io.Closer
	}{io.NewSectionReader(f, offset, length), f}, nil
}

// Stat implements Store.
func (d *Dir) Stat(ctx context.Context, key string) (Info, error) {
	if err := ctx.Err(); err != nil {
		return Info{}, err
	}
	p, err := d.pathOf("stat", key)
	if err != nil {
		return Info{}, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return Info{}, d.wrap("stat", key, err)
	}
	if fi.IsDir() {
		return Info{}, fmt.Errorf("stat %s: %w", Join(d.root, key), ErrNotFound)
	}
	return Info{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// writeTemp writes size bytes of body to a temp file beside p; the caller
// removes it. Temp names start with '.' and end in ".tmp", so List never
// reports them, even left behind by a crash.
func (d *Dir) writeTemp(p string, body io.ReaderAt, size int64) (string, error) {
	dir := filepath.Dir(p)
	var f *os.File
	for attempt := 0; ; attempt++ {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", err
		}
		var err error
		f, err = os.CreateTemp(dir, "."+filepath.Base(p)+".*.tmp")
		if err == nil {
			break
		}
		// A Delete emptying the directory may remove it between the two
		// calls: make it again.
		if !errors.Is(err, fs.ErrNotExist) || attempt >= 3 {
			return "", err
		}
	}
	name := f.Name()
	_, err := io.Copy(f, io.NewSectionReader(body, 0, size))
	if err == nil && !d.NoSync {
		err = f.Sync() // the content is durable before a name shows it
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
		return "", err
	}
	return name, nil
}

func (d *Dir) syncDir(dir string) error {
	if d.NoSync {
		return nil
	}
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// Put implements Store.
func (d *Dir) Put(ctx context.Context, key string, body io.ReaderAt, size int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := d.pathOf("put", key)
	if err != nil {
		return err
	}
	tmp, err := d.writeTemp(p, body, size)
	if err != nil {
		return d.wrap("put", key, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return d.wrap("put", key, err)
	}
	if err := d.syncDir(filepath.Dir(p)); err != nil {
		return d.wrap("put", key, err)
	}
	return nil
}

// PutIfAbsent implements Store.
func (d *Dir) PutIfAbsent(ctx context.Context, key string, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := d.pathOf("put", key)
	if err != nil {
		return err
	}
	tmp, err := d.writeTemp(p, strings.NewReader(string(data)), int64(len(data)))
	if err != nil {
		return d.wrap("put", key, err)
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, p); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("put %s: %w", Join(d.root, key), ErrExists)
		}
		return d.wrap("put", key, err)
	}
	if err := d.syncDir(filepath.Dir(p)); err != nil {
		// The object is visible and stays so; only its durability across
		// a power loss is in doubt, and the caller's next write syncs
		// the directory again.
		return nil
	}
	return nil
}

// List implements Store.
func (d *Dir) List(ctx context.Context, prefix, startAfter string, limit int) ([]Info, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Walk the deepest directory the prefix names in full.
	base := ""
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		base = prefix[:i]
	}
	start := d.root
	if base != "" {
		start = d.LocalPath(base)
	}
	var out []Info
	err := filepath.WalkDir(start, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // a missing directory lists nothing; a racing delete too
			}
			return err
		}
		if e.IsDir() {
			if p == start {
				return nil
			}
			rel := filepath.ToSlash(strings.TrimPrefix(p, d.root+string(filepath.Separator)))
			// Skip directories that cannot hold a match.
			if !strings.HasPrefix(rel+"/", prefix) && !strings.HasPrefix(prefix, rel+"/") {
				return filepath.SkipDir
			}
			return nil
		}
		name := e.Name()
		if strings.HasPrefix(name, ".") && strings.HasSuffix(name, ".tmp") {
			return nil // a Put's temp file
		}
		rel := filepath.ToSlash(strings.TrimPrefix(p, d.root+string(filepath.Separator)))
		if !strings.HasPrefix(rel, prefix) || rel <= startAfter {
			return nil
		}
		fi, err := e.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		out = append(out, Info{Key: rel, Size: fi.Size(), ModTime: fi.ModTime()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", Join(d.root, prefix), err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// Delete implements Store.
func (d *Dir) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := d.pathOf("delete", key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return d.wrap("delete", key, err)
	}
	// A store has no directories: remove the ones left empty, up to the
	// root (rmdir fails on a directory that is not empty, which stops it).
	for dir := filepath.Dir(p); dir != d.root && strings.HasPrefix(dir, d.root+string(filepath.Separator)); dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil {
			break
		}
	}
	return nil
}
