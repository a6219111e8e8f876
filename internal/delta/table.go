package delta

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/google/uuid"

	"github.com/certlake/certlake/internal/storage"
)

// Options tunes a Table. The zero value is ready to use.
type Options struct {
	CheckpointInterval int          // commits between checkpoints; 0 means 100
	Logger             *slog.Logger // nil discards
	// Storage opens roots given as URIs (s3://bucket/prefix, file:///);
	// nil opens local paths, and s3 with the AWS defaults.
	Storage *storage.Opener
	// ScratchDir is where checkpoints of a remote table are written before
	// their upload: this worker's own scratch. "" = the OS temp dir.
	ScratchDir string
}

// DefaultCheckpointInterval is the checkpoint interval when
// Options.CheckpointInterval is 0 (the same default as Spark and delta-rs).
const DefaultCheckpointInterval = 100

// Table is a Delta table in a storage.Store: a local directory or a prefix
// of an object store. It is safe for
// concurrent use; other processes may write the same table at the same time.
// A Table caches the latest state it has read and catches up by reading only
// the commits that landed since.
type Table struct {
	root  string // as given, for messages
	opts  Options
	store storage.Store // the table root
	log   storage.Store // its _delta_log
	local string        // the root directory of a local table; "" for remote

	mu    sync.Mutex  // guards cur and first
	cur   *state      // latest state read, nil until first needed
	first firstCommit // what commit 0 looked like when last read

	// Test hooks: trace sees every log file a full load reads; beforeLink
	// runs after a commit's temp file is written, before it is linked.
	trace      func(name string)
	beforeLink func(name string)
	// noSync skips fsync in tests that make thousands of commits;
	// syncedDir sees every directory fsynced.
	noSync    bool
	syncedDir func(dir string)
	// alloc, when set, holds the Arrow buffers of checkpoints written.
	alloc memory.Allocator
}

// firstCommit identifies commit 0 as last read: the table's identity.
type firstCommit struct {
	ok   bool
	size int64
	mod  time.Time
	id   string // its metaData.id
}

// Open opens the table at root. errors.Is(err, ErrNotATable) when root has no
// Delta log. Open reads no more than the first directory entries; the log is
// replayed by the first Snapshot or Commit.
func Open(ctx context.Context, root string, opts Options) (*Table, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t, err := newTable(ctx, root, opts)
	if err != nil {
		return nil, fmt.Errorf("open table %s: %w", root, err)
	}
	ok, err := hasLogFile(ctx, t.log)
	if err != nil {
		return nil, fmt.Errorf("open table %s: %w", root, err)
	}
	if !ok {
		return nil, fmt.Errorf("open table %s: %w", root, ErrNotATable)
	}
	return t, nil
}

// Create writes version 0 (protocol + metaData + commitInfo) at root.
// errors.Is(err, ErrExists) when a table is already there. A zero proto
// means reader 1 / writer 2; an empty meta.ID gets a random UUID,
// meta.Format.Provider defaults to "parquet" and meta.CreatedTime to now.
// Of concurrent Creates of one root exactly one succeeds.
func Create(ctx context.Context, root string, meta Metadata, proto Protocol, opts Options) (*Table, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t, err := newTable(ctx, root, opts)
	if err != nil {
		return nil, fmt.Errorf("create table %s: %w", root, err)
	}
	if proto.MinReaderVersion == 0 && proto.MinWriterVersion == 0 {
		proto = Protocol{MinReaderVersion: 1, MinWriterVersion: 2}
	}
	if meta.ID == "" {
		meta.ID = uuid.NewString()
	}
	if meta.Format.Provider == "" {
		meta.Format.Provider = "parquet"
	}
	if meta.CreatedTime == nil {
		meta.CreatedTime = ptr(time.Now().UnixMilli())
	}
	normalizeMetadata(&meta)
	schema, err := checkMetadata(meta)
	if err != nil {
		return nil, fmt.Errorf("create table %s: %w", root, err)
	}
	if err := checkWritable(proto, meta, schema); err != nil {
		return nil, fmt.Errorf("create table %s: %w", root, err)
	}
	if t.local != "" {
		if err := os.MkdirAll(filepath.Join(t.local, logDirName), 0o755); err != nil {
			return nil, fmt.Errorf("create table %s: %w", root, err)
		}
		if err := t.syncCreatedRoot(); err != nil {
			return nil, fmt.Errorf("create table %s: fsync: %w", root, err)
		}
	}
	if ok, err := hasLogFile(ctx, t.log); err != nil {
		return nil, fmt.Errorf("create table %s: %w", root, err)
	} else if ok {
		return nil, fmt.Errorf("create table %s: %w", root, ErrExists)
	}
	c := &commit{version: 0, actions: []Action{{Protocol: &proto}, {MetaData: &meta}}}
	body, err := encodeCommit(c.actions, commitInfo("CREATE TABLE", -1, nil, c.actions))
	if err != nil {
		return nil, fmt.Errorf("create table %s: %w", root, err)
	}
	ok, err := t.putIfAbsent(ctx, 0, body)
	if err != nil {
		return nil, fmt.Errorf("create table %s: %w", root, err)
	}
	if !ok {
		return nil, fmt.Errorf("create table %s: %w", root, ErrExists)
	}
	t.offer([]*commit{c})
	return t, nil
}

// checkMetadata validates a metaData action a writer is about to commit.
func checkMetadata(m Metadata) (StructType, error) {
	if m.ID == "" {
		return StructType{}, fmt.Errorf("%w: metaData without id", ErrInvalidAction)
	}
	if m.Format.Provider == "" {
		return StructType{}, fmt.Errorf("%w: metaData without format.provider", ErrInvalidAction)
	}
	schema, err := ParseSchema(m.SchemaString)
	if err != nil {
		return StructType{}, fmt.Errorf("%w: metaData: %w", ErrInvalidAction, err)
	}
	seen := map[string]bool{}
	for _, c := range m.PartitionColumns {
		f, ok := schema.Field(c)
		if !ok {
			return StructType{}, fmt.Errorf("%w: partition column %q is not in the schema", ErrInvalidAction, c)
		}
		if f.Type.Primitive == "" {
			return StructType{}, fmt.Errorf("%w: partition column %q has nested type %s", ErrInvalidAction, c, f.Type)
		}
		if seen[c] {
			return StructType{}, fmt.Errorf("%w: partition column %q listed twice", ErrInvalidAction, c)
		}
		seen[c] = true
	}
	return schema, nil
}

// newTable opens the store of root (a path or a URI).
func newTable(ctx context.Context, root string, opts Options) (*Table, error) {
	loc, err := storage.ParseLocation("table", root)
	if err != nil {
		return nil, err
	}
	t := &Table{root: root, opts: opts}
	if loc.IsLocal() {
		t.local = root
		t.store = storage.NewDir(root)
	} else {
		o := opts.Storage
		if o == nil {
			o = &storage.Opener{Logger: opts.Logger}
		}
		if t.store, err = o.Open(ctx, loc); err != nil {
			return nil, err
		}
	}
	t.log = storage.Sub(t.store, logDirName)
	return t, nil
}

// Root returns the table's root as given: a directory or a URI.
func (t *Table) Root() string { return t.root }

// Store returns the table's storage, rooted at the table root: data file
// keys are add.path values decoded (Key).
func (t *Table) Store() storage.Store { return t.store }

// logDir names the log in messages.
func (t *Table) logDir() string { return storage.Join(t.root, logDirName) }

func (t *Table) allocator() memory.Allocator {
	if t.alloc == nil {
		return memory.DefaultAllocator
	}
	return t.alloc
}

func (t *Table) logger() *slog.Logger {
	if t.opts.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return t.opts.Logger
}

// checkpointInterval is Options.CheckpointInterval, else the table's
// delta.checkpointInterval property (which Spark and delta-rs honour), else
// DefaultCheckpointInterval.
func (t *Table) checkpointInterval(conf map[string]string) int64 {
	if t.opts.CheckpointInterval > 0 {
		return int64(t.opts.CheckpointInterval)
	}
	if n, err := strconv.ParseInt(conf["delta.checkpointInterval"], 10, 64); err == nil && n > 0 {
		return n
	}
	return DefaultCheckpointInterval
}

// refreshLocked brings t.cur to the latest version. The first call replays
// the log from the newest checkpoint; later calls read only new commits.
// t.mu must be held.
func (t *Table) refreshLocked(ctx context.Context) error {
	if t.cur == nil {
		st, err := t.load(ctx, -1)
		if err != nil {
			return err
		}
		t.cur = st
		return nil
	}
	// The objects the checks below Stat are independent of the commits
	// read first: a remote log Stats them meanwhile, saving round trips
	// on every refresh that finds nothing new.
	stat := prefetchStats(ctx, t.log, commitName(0), commitName(t.cur.version))
	var news []*commit
	for {
		c, err := readCommit(ctx, t.log, t.cur.version+1+int64(len(news)))
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		if err != nil {
			return err
		}
		news = append(news, c)
	}
	replaced, err := t.replacedSince(ctx, news, stat)
	if err != nil {
		return err
	}
	if replaced {
		// Another table now lives at root: its commits must not be
		// replayed on top of the old one's state (its txns would skip
		// commits, its files would be mixed with the old ones).
		t.logger().WarnContext(ctx, "delta: the table was deleted and recreated; reading it from scratch", "root", t.root, "old_id", t.cur.metadata.ID)
		t.cur = nil
		return t.refreshLocked(ctx)
	}
	for _, c := range news {
		t.cur.apply(c)
	}
	if len(news) == 0 {
		// The log never loses its newest commit; if ours is gone the table
		// was deleted or replaced, so start over.
		if _, err := stat(commitName(t.cur.version)); errors.Is(err, fs.ErrNotExist) {
			if _, err := t.log.Stat(ctx, checkpointName(t.cur.version)); errors.Is(err, fs.ErrNotExist) {
				t.cur = nil
				return t.refreshLocked(ctx)
			}
		}
	}
	return nil
}

// replacedSince reports whether the table at root is no longer the one
// t.cur was read from: a new commit carries another metaData.id, or commit
// 0 does (the directory was deleted and a table created again). Commit 0 is
// read again only when its size or mtime changed. A log whose commit 0 was
// cleaned up relies on the other checks. t.mu must be held.
func (t *Table) replacedSince(ctx context.Context, news []*commit, stat func(string) (storage.Info, error)) (bool, error) {
	if t.cur.metadata == nil {
		return false, nil
	}
	id := t.cur.metadata.ID
	for _, c := range news {
		for _, a := range c.actions {
			if a.MetaData != nil && a.MetaData.ID != id {
				return true, nil
			}
		}
	}
	first, err := t.firstCommitID(ctx, stat)
	if err != nil || first == "" {
		return false, err
	}
	return first != id, nil
}

// firstCommitID returns the metaData.id of commit 0, "" when commit 0 is
// gone or has no metaData. stat Stats a log object (see prefetchStats).
// t.mu must be held.
func (t *Table) firstCommitID(ctx context.Context, stat func(string) (storage.Info, error)) (string, error) {
	fi, err := stat(commitName(0))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if t.first.ok && t.first.size == fi.Size && t.first.mod.Equal(fi.ModTime) {
		return t.first.id, nil
	}
	c, err := readCommit(ctx, t.log, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	id := ""
	for _, a := range c.actions {
		if a.MetaData != nil {
			id = a.MetaData.ID
		}
	}
	t.first = firstCommit{ok: true, size: fi.Size, mod: fi.ModTime, id: id}
	return id, nil
}

// offer applies commits that directly follow the cached state to it, so
// commits this process has already read need not be read again.
func (t *Table) offer(cs []*commit) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range cs {
		if t.cur == nil && c.version == 0 {
			t.cur = newState()
		}
		if t.cur != nil && c.version == t.cur.version+1 {
			t.cur.apply(c)
		}
	}
}

// Snapshot reads the latest version.
func (t *Table) Snapshot(ctx context.Context) (*Snapshot, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.refreshLocked(ctx); err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", t.root, err)
	}
	s, err := t.cur.snapshot(t.root, t.store)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", t.root, err)
	}
	return s, nil
}

// SnapshotAt reads version v (time travel), starting from the newest
// checkpoint at or before v. errors.Is(err, ErrVersionNotFound) when v is
// newer than the table or its commits were cleaned up.
func (t *Table) SnapshotAt(ctx context.Context, v int64) (*Snapshot, error) {
	if v < 0 {
		return nil, fmt.Errorf("snapshot %s at %d: %w", t.root, v, ErrVersionNotFound)
	}
	t.mu.Lock()
	if t.cur != nil && t.cur.version == v {
		s, err := t.cur.snapshot(t.root, t.store)
		t.mu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("snapshot %s at %d: %w", t.root, v, err)
		}
		return s, nil
	}
	t.mu.Unlock()
	st, err := t.load(ctx, v)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s at %d: %w", t.root, v, err)
	}
	s, err := st.snapshot(t.root, t.store)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s at %d: %w", t.root, v, err)
	}
	return s, nil
}

// LatestVersion returns the newest committed version, even when the table
// uses features Snapshot refuses.
func (t *Table) LatestVersion(ctx context.Context) (int64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.refreshLocked(ctx); err != nil {
		return 0, fmt.Errorf("latest version of %s: %w", t.root, err)
	}
	return t.cur.version, nil
}

// Checkpoint writes a classic checkpoint of the latest version (and updates
// _last_checkpoint) and returns that version. Commit does this on its own
// every CheckpointInterval versions.
func (t *Table) Checkpoint(ctx context.Context) (int64, error) {
	t.mu.Lock()
	if err := t.refreshLocked(ctx); err != nil {
		t.mu.Unlock()
		return 0, fmt.Errorf("checkpoint %s: %w", t.root, err)
	}
	if err := t.cur.check(); err != nil {
		t.mu.Unlock()
		return 0, fmt.Errorf("checkpoint %s: %w", t.root, err)
	}
	if err := checkWritable(*t.cur.protocol, *t.cur.metadata, t.cur.schema); err != nil {
		t.mu.Unlock()
		return 0, fmt.Errorf("checkpoint %s: %w", t.root, err)
	}
	cp := t.cur.checkpointData(time.Now())
	t.mu.Unlock()
	if _, err := t.writeCheckpoint(ctx, cp); err != nil {
		return 0, fmt.Errorf("checkpoint %s: %w", t.root, err)
	}
	return cp.version, nil
}

// checkpointAt writes the checkpoint for version v after this process
// committed v. Errors are logged, not returned: the commit has landed.
func (t *Table) checkpointAt(ctx context.Context, v int64) {
	cp, err := t.checkpointDataAt(ctx, v)
	if err == nil {
		_, err = t.writeCheckpoint(ctx, cp)
	}
	if err != nil {
		t.logger().WarnContext(ctx, "delta: checkpoint failed", "root", t.root, "version", v, "err", err)
		return
	}
	t.logger().DebugContext(ctx, "delta: wrote checkpoint", "root", t.root, "version", v, "files", len(cp.files))
}

func (t *Table) checkpointDataAt(ctx context.Context, v int64) (*checkpointData, error) {
	t.mu.Lock()
	if t.cur != nil && t.cur.version < v {
		for t.cur.version < v {
			c, err := readCommit(ctx, t.log, t.cur.version+1)
			if err != nil {
				t.mu.Unlock()
				return nil, err
			}
			t.cur.apply(c)
		}
	}
	if t.cur != nil && t.cur.version == v {
		defer t.mu.Unlock()
		if err := t.cur.check(); err != nil {
			return nil, err
		}
		return t.cur.checkpointData(time.Now()), nil
	}
	t.mu.Unlock()
	st, err := t.load(ctx, v)
	if err != nil {
		return nil, err
	}
	if err := st.check(); err != nil {
		return nil, err
	}
	return st.checkpointData(time.Now()), nil
}

// Delete removes the table at root: first its _delta_log (so it stops being
// a table at once), then everything else under root.
// errors.Is(err, ErrNotATable) when root has no _delta_log.
func Delete(ctx context.Context, root string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t, err := newTable(ctx, root, Options{})
	if err != nil {
		return fmt.Errorf("delete %s: %w", root, err)
	}
	if t.local == "" {
		return t.deleteObjects(ctx)
	}
	dir := filepath.Join(root, logDirName)
	if _, err := os.Stat(dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("delete %s: %w", root, ErrNotATable)
		}
		return fmt.Errorf("delete %s: %w", root, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("delete %s: %w", root, err)
	}
	if err := os.RemoveAll(root); err != nil {
		return fmt.Errorf("delete %s: %w", root, err)
	}
	return nil
}

// deleteObjects deletes a remote table object by object, each one a
// listing showed (never a prefix blindly): the log first, so it stops
// being a table at once, then the rest.
func (t *Table) deleteObjects(ctx context.Context) error {
	logObjs, err := t.log.List(ctx, "", "", 0)
	if err != nil {
		return fmt.Errorf("delete %s: %w", t.root, err)
	}
	if len(logObjs) == 0 {
		return fmt.Errorf("delete %s: %w", t.root, ErrNotATable)
	}
	for _, o := range logObjs {
		if err := t.log.Delete(ctx, o.Key); err != nil {
			return fmt.Errorf("delete %s: %w", t.root, err)
		}
	}
	rest, err := t.store.List(ctx, "", "", 0)
	if err != nil {
		return fmt.Errorf("delete %s: %w", t.root, err)
	}
	for _, o := range rest {
		if err := t.store.Delete(ctx, o.Key); err != nil {
			return fmt.Errorf("delete %s: %w", t.root, err)
		}
	}
	return nil
}

// ReadCommit returns the actions of commit v in file order, with its
// commitInfo (if any) last. errors.Is(err, ErrVersionNotFound) when the
// commit file does not exist (not yet written, or cleaned up).
func (t *Table) ReadCommit(ctx context.Context, v int64) ([]Action, error) {
	c, err := readCommit(ctx, t.log, v)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("read commit %d of %s: %w: %w", v, t.root, ErrVersionNotFound, err)
		}
		return nil, fmt.Errorf("read commit %d of %s: %w", v, t.root, err)
	}
	return c.publicActions(), nil
}

// prefetchStats starts Stats of names in a remote log and returns a
// function that Stats a log object: one of names answers with the result
// of its prefetch (waiting for it), any other is Stat'ed then. A local log
// is Stat'ed on demand (no round trip to save).
func prefetchStats(ctx context.Context, log storage.Store, names ...string) func(string) (storage.Info, error) {
	if _, local := storage.LocalPath(log, ""); local {
		return func(name string) (storage.Info, error) { return log.Stat(ctx, name) }
	}
	type result struct {
		info storage.Info
		err  error
	}
	pending := make(map[string]chan result, len(names))
	for _, n := range names {
		if _, ok := pending[n]; ok {
			continue
		}
		ch := make(chan result, 1)
		pending[n] = ch
		go func() {
			info, err := log.Stat(ctx, n)
			ch <- result{info, err}
		}()
	}
	done := make(map[string]result, len(names))
	return func(name string) (storage.Info, error) {
		if r, ok := done[name]; ok {
			return r.info, r.err
		}
		if ch, ok := pending[name]; ok {
			r := <-ch
			done[name] = r
			return r.info, r.err
		}
		return log.Stat(ctx, name)
	}
}
