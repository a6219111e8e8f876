package lake

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/certlake/certlake/internal/delta"
	"github.com/certlake/certlake/internal/storage"
)

// Scratch is one worker's own local scratch directory (worker.scratch_dir):
// data files of remote tables are written under it before their upload,
// its cache keeps the remote Parquet files DuckDB reads (the DuckDB built
// in here has no httpfs, so it only reads local files), and the merge's
// DuckDB spills under it. Never share one between workers.
type Scratch struct {
	Dir string // "" = a fresh directory under the OS temp dir, made on first use

	once  sync.Once
	root  string // Dir, or the directory made under the OS temp dir
	made  bool   // root was made by init (Close removes it whole)
	err   error
	cache *storage.Cache
}

// Subdirectories of a scratch. uploads and duckdb hold files only the
// process that wrote them needs; cache outlives a restart.
const (
	scratchUploads = "uploads"
	scratchSpill   = "duckdb"
	scratchCache   = "cache"
)

func (s *Scratch) dir() string {
	if s == nil {
		return ""
	}
	if s.init() != nil {
		return ""
	}
	return filepath.Join(s.root, scratchUploads)
}

// uploadDir is dir without creating a temp dir when none is configured
// (a local table never needs one): "" then means the OS temp dir.
func (s *Scratch) uploadDir() string {
	if s == nil || s.Dir == "" {
		return ""
	}
	return filepath.Join(s.Dir, scratchUploads)
}

// SpillDir is where DuckDB spills (each database in a fresh directory of
// its own under it): under the configured directory, "" (the OS temp dir)
// when none is configured, so that a worker reading only local tables
// never makes a scratch directory it would have to remove.
func (s *Scratch) SpillDir() string {
	if s == nil || s.Dir == "" {
		return ""
	}
	return filepath.Join(s.Dir, scratchSpill)
}

func (s *Scratch) init() error {
	s.once.Do(func() {
		s.root = s.Dir
		if s.root == "" {
			s.root, s.err = os.MkdirTemp("", "certlake-scratch-")
			if s.err != nil {
				return
			}
			s.made = true
		}
		s.cache, s.err = storage.NewCache(filepath.Join(s.root, scratchCache), 0)
	})
	return s.err
}

// Cache returns the scratch's cache of remote files.
func (s *Scratch) Cache() (*storage.Cache, error) {
	if err := s.init(); err != nil {
		return nil, fmt.Errorf("worker scratch %s: %w", s.Dir, err)
	}
	return s.cache, nil
}

// Clean removes what only a running process needs: files being uploaded
// and DuckDB spill files, left behind by a worker that was killed. A
// scratch made under the OS temp dir is removed whole. The worker calls it
// when it starts and when it stops; no table may be in use meanwhile.
func (s *Scratch) Clean() error {
	if s == nil {
		return nil
	}
	var errs []error
	if s.Dir != "" {
		for _, sub := range []string{scratchUploads, scratchSpill} {
			errs = append(errs, os.RemoveAll(filepath.Join(s.Dir, sub)))
		}
	}
	if s.made {
		errs = append(errs, os.RemoveAll(s.root))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("clean worker scratch: %w", err)
	}
	return nil
}

// Localize fills LocalPath of files read from a remote table with a local
// copy in the scratch cache (downloaded once per worker); local tables'
// files are their own. release lets the cache evict the copies again.
func (t *Table) Localize(ctx context.Context, files []FileInfo) (release func(), err error) {
	if t.IsLocal() {
		return func() {}, nil
	}
	sc := t.scratch
	if sc == nil {
		sc = &Scratch{}
		t.scratch = sc
	}
	cache, err := sc.Cache()
	if err != nil {
		return nil, err
	}
	var rels []func()
	release = func() {
		for _, r := range rels {
			r()
		}
	}
	for i := range files {
		key, err := delta.Key(files[i].Path)
		if err != nil {
			release()
			return nil, fmt.Errorf("%s: %w", t.path, err)
		}
		p, rel, err := cache.Local(ctx, t.store, key, files[i].Size)
		if err != nil {
			release()
			return nil, err
		}
		rels = append(rels, rel)
		files[i].LocalPath = p
	}
	return release, nil
}

// LocalPaths returns local files holding adds of the table (see Localize).
func (t *Table) LocalPaths(ctx context.Context, adds []delta.Add) ([]string, func(), error) {
	files := make([]FileInfo, len(adds))
	for i, a := range adds {
		files[i] = FileInfo{Path: a.Path, Size: a.Size, LocalPath: localPathOf(t, a)}
	}
	release, err := t.Localize(ctx, files)
	if err != nil {
		return nil, nil, err
	}
	out := make([]string, len(files))
	for i, f := range files {
		out[i] = f.LocalPath
	}
	return out, release, nil
}

func localPathOf(t *Table, a delta.Add) string {
	if !t.IsLocal() {
		return ""
	}
	return delta.LocalPath(t.path, a.Path)
}
