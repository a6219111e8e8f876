package activities

import (
	"context"
	"os"
	"path/filepath"
	"sync"

	"github.com/certlake/certlake/internal/lake"
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
// when it was opened (same file, size and modification time); when that
// file is gone or another (also after a log cleanup), the table is opened
// again.
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
	first os.FileInfo // _delta_log/00000000000000000000.json at open
}

// openOrCreate is lake.OpenOrCreate(ctx, path, opts), served from the cache
// when the table at path is still the one cached.
func (c *tableCache) openOrCreate(ctx context.Context, path string, opts lake.Options) (*lake.Table, error) {
	key := tableKey{path: filepath.Clean(path), role: opts.Role, bin: opts.AsDERBinary}
	firstPath := filepath.Join(path, "_delta_log", "00000000000000000000.json")
	first, _ := os.Stat(firstPath)
	c.mu.Lock()
	ct, ok := c.tables[key]
	c.mu.Unlock()
	if ok && sameFile(first, ct.first) {
		return ct.t, nil
	}
	t, err := lake.OpenOrCreate(ctx, path, opts)
	if err != nil {
		return nil, err
	}
	if first == nil { // created just now
		first, _ = os.Stat(firstPath)
	}
	if first != nil {
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
