// Package lake is the certstream Delta table: the 20-column, seen_date
// partitioned table of spec/record-format.md section 2 (certlake design
// documents), shared with the live ingester. It opens or creates main and
// staging tables, appends rows as zstd Parquet files plus one Delta commit,
// lists live files with their stats, reads rows back, and gives DuckDB SQL
// over a snapshot's files. The Delta log itself is package delta's job.
//
// Choices worth knowing:
//   - Data files follow spec 2.1 as delta-rs writes them: cert_index plain
//     INT64, seen TIMESTAMP(MICROS, UTC), 3-level LISTs with "element",
//     as_der STRING (base64) or BYTE_ARRAY per the table's schema, no
//     seen_date column; zstd everywhere (staging tables: the hex digest
//     and serial columns uncompressed and as_der Snappy, see
//     CompressionStaging), dictionary
//     encoding on the low-cardinality columns of the spec's [HEAD] settings.
//   - An existing table is written in its own as_der type. Column order,
//     nullable flags and containsNull may differ from the spec; extra
//     nullable columns are tolerated and left out of the files, which Delta
//     readers read as null. Anything else is refused with ErrNotCertstream
//     naming every difference.
//   - Staging tables carry certlake.role=staging in their configuration,
//     and Delete can refuse any table without it.
package lake

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/certlake/certlake/internal/delta"
	"github.com/certlake/certlake/internal/storage"
)

// Role says what a table is for. Staging tables carry ConfigRole=staging in
// metaData.configuration so that nothing deletes a table not marked that way.
type Role string

const (
	// RoleAny opens any certstream table; OpenOrCreate refuses it.
	RoleAny Role = ""
	// RoleMain is the table shared with the live ingester (no marker).
	RoleMain Role = "main"
	// RoleStaging is a certlake staging table (marked).
	RoleStaging Role = "staging"
)

// Keys certlake stores in metaData.configuration of the tables it creates.
const (
	ConfigRole      = "certlake.role"      // "staging" on staging tables; absent on main
	ConfigCreatedBy = "certlake.createdBy" // "certlake" on staging tables certlake created
	ConfigAdoptedAt = "certlake.adoptedAt" // when certlake marked a staging table another tool wrote (RFC 3339)
)

// Errors callers branch on.
var (
	// ErrNotExist: no Delta table at the path (wraps delta.ErrNotATable too).
	ErrNotExist = errors.New("lake: table does not exist")
	// ErrWrongRole: the table is not marked as the role asked for.
	ErrWrongRole = errors.New("lake: table has the wrong role")
	// ErrInvalidRow: Writer.Write refused a row (a string that is not
	// UTF-8, a cert_index past int64, no seen time). Retrying cannot help.
	ErrInvalidRow = errors.New("lake: invalid row")
)

// Options tune Open and OpenOrCreate. The zero value opens any existing
// certstream table.
type Options struct {
	// Role, when set, is checked against the table's marker: RoleStaging
	// requires the staging marker, RoleMain requires its absence. It is the
	// role of a table OpenOrCreate creates (RoleAny is refused there).
	Role Role
	// AcceptUnmarked, with Role RoleStaging, also opens a certstream table
	// without the staging marker as staging: one another tool wrote, such
	// as certstream-server-rust's --staging-path backfill. Its Marked is
	// false. Such a table may be read (gaps, describe); a merge adopts it
	// first (MarkStaging), and nothing deletes it before.
	AcceptUnmarked bool
	// AsDERBinary makes a newly created table store as_der as binary (raw
	// DER) instead of a base64 string. Existing tables keep their type.
	AsDERBinary bool
	// CheckpointInterval is the number of commits between checkpoints; 0
	// means package delta's default (100).
	CheckpointInterval int
	// Logger receives debug logs; nil discards.
	Logger *slog.Logger
	// Buffers, when set, is the buffer pool of the table's Writers, shared
	// with other Tables; nil gives the table a pool of its own.
	Buffers *BufferPool
	// Storage opens paths given as URIs (s3://bucket/prefix); nil opens
	// local paths, and s3 with the AWS defaults.
	Storage *storage.Opener
	// Scratch is this worker's own local scratch: data files of a remote
	// table are written there before their upload, and its Cache holds
	// the remote files DuckDB reads. nil = the OS temp dir, no cache
	// shared between Tables.
	Scratch *Scratch
}

// Table is an open certstream Delta table. It is safe for concurrent use;
// each Writer is not.
type Table struct {
	dt      *delta.Table
	path    string
	store   storage.Store // the table root
	scratch *Scratch
	role    Role
	marked  bool // the table carries ConfigRole=staging
	layout  layout
	log     *slog.Logger
	bufs    *BufferPool // buffers reused by the table's Writers
}

func (o Options) deltaOptions() delta.Options {
	return delta.Options{CheckpointInterval: o.CheckpointInterval, Logger: o.Logger, Storage: o.Storage, ScratchDir: o.Scratch.uploadDir()}
}

func (o Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return o.Logger
}

// Open opens the certstream table at path. errors.Is(err, ErrNotExist) when
// there is no Delta table; errors.Is(err, ErrNotCertstream) when the table's
// schema is not the certstream schema (the message says what differs).
func Open(ctx context.Context, path string, opts Options) (*Table, error) {
	dt, err := delta.Open(ctx, path, opts.deltaOptions())
	if err != nil {
		if errors.Is(err, delta.ErrNotATable) {
			return nil, fmt.Errorf("open table %s: %w: %w", path, ErrNotExist, err)
		}
		return nil, fmt.Errorf("open table %s: %w", path, err)
	}
	snap, err := dt.Snapshot(ctx)
	if err != nil {
		if errors.Is(err, delta.ErrNotATable) {
			return nil, fmt.Errorf("open table %s: %w: %w", path, ErrNotExist, err)
		}
		return nil, fmt.Errorf("open table %s: %w", path, err)
	}
	return newTable(dt, path, snap, opts)
}

func newTable(dt *delta.Table, path string, snap *delta.Snapshot, opts Options) (*Table, error) {
	l, err := conform(snap.Schema, snap.Metadata.PartitionColumns)
	if err != nil {
		return nil, fmt.Errorf("open table %s: %w", path, err)
	}
	role := roleOf(snap.Metadata)
	marked := role == RoleStaging
	if opts.Role == RoleStaging && !marked {
		if !opts.AcceptUnmarked {
			return nil, fmt.Errorf("open table %s as staging: %w: it has no %s=%s marker: it is a main table, or a staging table "+
				"another tool wrote (certstream-server-rust --staging-path); merge such a table with adopt_staging "+
				"(starter merge --adopt-staging), which checks it is not main and marks it", path, ErrWrongRole, ConfigRole, RoleStaging)
		}
		role = RoleStaging
	}
	if opts.Role != RoleAny && opts.Role != role {
		return nil, fmt.Errorf("open table %s as %s: %w: it is a %s table", path, opts.Role, ErrWrongRole, role)
	}
	return &Table{dt: dt, path: path, store: dt.Store(), scratch: opts.Scratch, role: role, marked: marked, layout: l, log: opts.logger(), bufs: cmp.Or(opts.Buffers, NewBufferPool())}, nil
}

func roleOf(m delta.Metadata) Role {
	if m.Configuration[ConfigRole] == string(RoleStaging) {
		return RoleStaging
	}
	return RoleMain
}

// OpenOrCreate opens the table at path, creating it with the certstream
// schema when there is none (a missing main table is created, AC4.2).
// opts.Role must be RoleMain or RoleStaging.
func OpenOrCreate(ctx context.Context, path string, opts Options) (*Table, error) {
	if opts.Role != RoleMain && opts.Role != RoleStaging {
		return nil, fmt.Errorf("open or create table %s: role %q: want %q or %q", path, opts.Role, RoleMain, RoleStaging)
	}
	t, err := Open(ctx, path, opts)
	if err == nil || !errors.Is(err, ErrNotExist) {
		return t, err
	}
	schemaString, err := Schema(opts.AsDERBinary).JSON()
	if err != nil {
		return nil, fmt.Errorf("create table %s: render schema: %w", path, err)
	}
	conf := map[string]string{}
	if opts.Role == RoleStaging {
		conf[ConfigRole] = string(RoleStaging)
		conf[ConfigCreatedBy] = "certlake"
	}
	now := time.Now().UnixMilli()
	meta := delta.Metadata{
		ID:               uuid.NewString(),
		Format:           delta.Format{Provider: "parquet", Options: map[string]string{}},
		SchemaString:     schemaString,
		PartitionColumns: []string{PartitionColumn},
		Configuration:    conf,
		CreatedTime:      &now,
	}
	if loc, err := storage.ParseLocation("table", path); err != nil {
		return nil, fmt.Errorf("create table %s: %w", path, err)
	} else if loc.IsLocal() {
		if err := os.MkdirAll(path, 0o755); err != nil {
			return nil, fmt.Errorf("create table %s: %w", path, err)
		}
	}
	dt, err := delta.Create(ctx, path, meta, delta.Protocol{MinReaderVersion: 1, MinWriterVersion: 2}, opts.deltaOptions())
	if errors.Is(err, delta.ErrExists) {
		// Another process created it first; use theirs if it conforms.
		return Open(ctx, path, opts)
	}
	if err != nil {
		return nil, fmt.Errorf("create table %s: %w", path, err)
	}
	opts.logger().DebugContext(ctx, "created table", "path", path, "role", opts.Role, "as_der_binary", opts.AsDERBinary)
	snap, err := dt.Snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("create table %s: read back: %w", path, err)
	}
	return newTable(dt, path, snap, opts)
}

// Path returns the table's root: a directory or a URI.
func (t *Table) Path() string { return t.path }

// Store returns the table's storage (keys relative to the root).
func (t *Table) Store() storage.Store { return t.store }

// TempDir is where files bound for a remote table are written first: this
// worker's scratch ("" Scratch: the OS temp dir).
func (t *Table) TempDir() string {
	if d := t.scratch.dir(); d != "" {
		return d
	}
	return os.TempDir()
}

// IsLocal reports whether the table's files are on this machine.
func (t *Table) IsLocal() bool {
	_, ok := t.localFile("x")
	return ok
}

// localFile is the file of key rel in a local table.
func (t *Table) localFile(rel string) (string, bool) {
	if t.store == nil { // a Table built by hand in a test
		return filepath.Join(t.path, filepath.FromSlash(rel)), true
	}
	return storage.LocalPath(t.store, rel)
}

// Role returns RoleStaging for a marked staging table or an unmarked one
// opened with AcceptUnmarked, else RoleMain.
func (t *Table) Role() Role { return t.role }

// Marked reports whether the table carries the certlake staging marker.
func (t *Table) Marked() bool { return t.marked }

// MarkStaging commits the staging marker (ConfigRole=staging, and
// ConfigAdoptedAt) into the table's configuration: certlake adopts a
// staging table another tool wrote. The caller must have proven it is not
// main (merge.AdoptStaging does). Marking a marked table changes nothing.
// t itself is not changed: open the table again to use it as marked. A
// concurrent commit makes it fail with delta.ErrConflict; retrying reads
// the table again.
func (t *Table) MarkStaging(ctx context.Context) error {
	snap, err := t.dt.Snapshot(ctx)
	if err != nil {
		return fmt.Errorf("mark %s as staging: %w", t.path, err)
	}
	if roleOf(snap.Metadata) == RoleStaging {
		return nil
	}
	meta := snap.Metadata
	meta.Configuration = maps.Clone(meta.Configuration)
	if meta.Configuration == nil {
		meta.Configuration = map[string]string{}
	}
	meta.Configuration[ConfigRole] = string(RoleStaging)
	meta.Configuration[ConfigAdoptedAt] = time.Now().UTC().Format(time.RFC3339)
	// A metaData change conflicts with any commit that lands meanwhile.
	if _, err := t.dt.Commit(ctx, snap.Version, []delta.Action{{MetaData: &meta}}, delta.CommitOptions{Operation: "SET TBLPROPERTIES"}); err != nil {
		return fmt.Errorf("mark %s as staging: %w", t.path, err)
	}
	return nil
}

// AsDERBinary reports whether the table stores as_der as binary (true) or
// as a base64 string (false).
func (t *Table) AsDERBinary() bool { return t.layout.asDERBinary }

// Delta returns the underlying Delta table.
func (t *Table) Delta() *delta.Table { return t.dt }

// Snapshot reads the table's latest version.
func (t *Table) Snapshot(ctx context.Context) (*delta.Snapshot, error) {
	s, err := t.dt.Snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", t.path, err)
	}
	return s, nil
}

// SnapshotAt reads version v of the table.
func (t *Table) SnapshotAt(ctx context.Context, v int64) (*delta.Snapshot, error) {
	s, err := t.dt.SnapshotAt(ctx, v)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s at version %d: %w", t.path, v, err)
	}
	return s, nil
}

// DeleteOptions tune Delete.
type DeleteOptions struct {
	// StagingOnly refuses any table that is not marked as a certlake
	// staging table.
	StagingOnly bool
}

// Delete removes the Delta table at path, directory and all. It refuses a
// path that is not a Delta table, a directory holding anything a Delta
// table does not (so a mistyped path cannot wipe unrelated data), and with
// StagingOnly a table not marked as staging.
func Delete(ctx context.Context, path string, opts DeleteOptions) error {
	dt, err := delta.Open(ctx, path, delta.Options{})
	if err != nil {
		return fmt.Errorf("delete table %s: %w", path, err)
	}
	snap, err := dt.Snapshot(ctx)
	if err != nil {
		return fmt.Errorf("delete table %s: %w", path, err)
	}
	if opts.StagingOnly && roleOf(snap.Metadata) != RoleStaging {
		return fmt.Errorf("delete table %s: %w: not marked %s=%s", path, ErrWrongRole, ConfigRole, RoleStaging)
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return fmt.Errorf("delete table %s: %w", path, err)
	}
	for _, e := range entries {
		if !tableEntry(e, snap.Metadata.PartitionColumns) {
			return fmt.Errorf("delete table %s: refusing: %q is not part of a Delta table", path, e.Name())
		}
	}
	if err := os.RemoveAll(path); err != nil {
		return fmt.Errorf("delete table %s: %w", path, err)
	}
	return nil
}

// keyIndexDir is keyindex.Dir (package keyindex's tests import this
// package, so this one cannot import it): a table's key index lives and
// dies with the table.
const keyIndexDir = "_certlake_keyindex"

// tableEntry reports whether a top-level directory entry is something a
// Delta writer puts in a table directory.
func tableEntry(e os.DirEntry, partitionColumns []string) bool {
	name := e.Name()
	if e.IsDir() {
		if name == "_delta_log" || name == "_change_data" || name == "_delta_index" {
			return true
		}
		if name == keyIndexDir {
			return true // certlake's key index of the table's files
		}
		for _, c := range partitionColumns {
			if strings.HasPrefix(name, c+"=") {
				return true
			}
		}
		return false
	}
	return filepath.Ext(name) == ".parquet" || strings.HasSuffix(name, ".parquet.crc")
}
