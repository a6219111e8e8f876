package activities

import (
	"context"
	"os"
	"path/filepath"
	"sync"

	"github.com/certlake/certlake/internal/lake"
	"github.com/certlake/certlake/internal/storage"
)

// maxCachedTables bounds tableCache: a worker writes main and a few staging
// tables at a time.
const maxCachedTables = 32

// tableCache keeps the tables FetchRange writes open between activities.
// An open table reads only the commits since its last snapshot, where a
// fresh open replays the log from its last checkpoint: with up to 100
// commits between checkpoints, that replay cost more than an activity's
// scheduling through Temporal. The Writers of a cached table also reuse its
// warm buffers.
//
// A table deleted and created again at the same path (staging retired by a
// merge, then a new backfill) must not be served from the cache: its
// versions restart at 0 and a stale state would mix two tables. So an entry
// is served only while the table's first commit file is the very file seen
// when it was opened (same file, size and modification time; for a table
// in object storage the same size, time and ETag, one HEAD per activity
// instead of a replay of the log); when that file is gone or another (also
// after a log cleanup), the table is opened again.
type tableCache struct {
	mu     sync.Mutex
	tables map[tableKey]cachedTable
}

type tableKey struct {
	path string
	role lake.Role
	bin  bool // AsDERBinary of a table OpenOrCreate creates
}

type cachedTable struct {
	t     *lake.Table
	first firstCommit // at open
}

// firstCommit identifies _delta_log/00000000000000000000.json: the local
// file, or the remote object.
type firstCommit struct {
	file os.FileInfo
	obj  *storage.Info
}

func (a firstCommit) same(b firstCommit) bool {
	if a.obj != nil || b.obj != nil {
		return a.obj != nil && b.obj != nil && a.obj.Size == b.obj.Size && a.obj.ModTime.Equal(b.obj.ModTime) && a.obj.ETag == b.obj.ETag
	}
	return sameFile(a.file, b.file)
}

func (a firstCommit) exists() bool { return a.file != nil || a.obj != nil }

const firstCommitKey = "_delta_log/00000000000000000000.json"

// statFirstCommit identifies the first commit of the table at path; the
// zero firstCommit when there is none or it cannot be read.
func statFirstCommit(ctx context.Context, path string, opts lake.Options) firstCommit {
	loc, err := storage.ParseLocation("table", path)
	if err != nil {
		return firstCommit{}
	}
	if loc.IsLocal() {
		fi, _ := os.Stat(filepath.Join(loc.Dir, filepath.FromSlash(firstCommitKey)))
		return firstCommit{file: fi}
	}
	o := opts.Storage
	if o == nil {
		return firstCommit{} // no shared client: nothing to save
	}
	s, err := o.Open(ctx, loc)
	if err != nil {
		return firstCommit{}
	}
	info, err := s.Stat(ctx, firstCommitKey)
	if err != nil {
		return firstCommit{}
	}
	return firstCommit{obj: &info}
}

// openOrCreate is lake.OpenOrCreate(ctx, path, opts), served from the cache
// when the table at path is still the one cached.
func (c *tableCache) openOrCreate(ctx context.Context, path string, opts lake.Options) (*lake.Table, error) {
	key := tableKey{path: path, role: opts.Role, bin: opts.AsDERBinary}
	if loc, err := storage.ParseLocation("table", path); err == nil && loc.IsLocal() {
		key.path = filepath.Clean(path)
	}
	first := statFirstCommit(ctx, path, opts)
	c.mu.Lock()
	ct, ok := c.tables[key]
	c.mu.Unlock()
	if ok && first.same(ct.first) {
		return ct.t, nil
	}
	t, err := lake.OpenOrCreate(ctx, path, opts)
	if err != nil {
		return nil, err
	}
	if !first.exists() { // created just now
		first = statFirstCommit(ctx, path, opts)
	}
	if first.exists() {
		c.mu.Lock()
		if c.tables == nil {
			c.tables = map[tableKey]cachedTable{}
		}
		if len(c.tables) >= maxCachedTables {
			clear(c.tables)
		}
		c.tables[key] = cachedTable{t: t, first: first}
		c.mu.Unlock()
	}
	return t, nil
}

func sameFile(a, b os.FileInfo) bool {
	return a != nil && b != nil && os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}
