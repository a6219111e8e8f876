package delta

// CONTRACT STUB: the signatures below are the package's public API that other
// packages code against. The delta helper replaces the bodies (and moves them
// to files of its choosing) without changing the signatures.

import (
	"context"
	"errors"
	"log/slog"
)

var errTODO = errors.New("delta: not implemented yet")

// Options tunes a Table. The zero value is ready to use.
type Options struct {
	CheckpointInterval int          // commits between checkpoints; 0 means 100
	Logger             *slog.Logger // nil discards
}

// Table is a Delta table on the local file system.
type Table struct {
	root string
	opts Options
}

// Open opens the table at root. errors.Is(err, ErrNotATable) when root has no
// Delta log.
func Open(ctx context.Context, root string, opts Options) (*Table, error) { return nil, errTODO }

// Create writes version 0 (protocol + metaData + commitInfo) at root.
// errors.Is(err, ErrExists) when a table is already there.
func Create(ctx context.Context, root string, meta Metadata, proto Protocol, opts Options) (*Table, error) {
	return nil, errTODO
}

// Root returns the table's root directory.
func (t *Table) Root() string { return t.root }

// Snapshot reads the latest version.
func (t *Table) Snapshot(ctx context.Context) (*Snapshot, error) { return nil, errTODO }

// SnapshotAt reads version v (time travel).
func (t *Table) SnapshotAt(ctx context.Context, v int64) (*Snapshot, error) { return nil, errTODO }

// Snapshot is the table state at one version.
type Snapshot struct {
	Version  int64
	Protocol Protocol
	Metadata Metadata
	Schema   StructType
	Files    []Add            // live files, sorted by Path
	Txns     map[string]int64 // latest txn version per appId
}

// LocalPath returns the absolute file-system path of a live file (the log's
// Path is relative and URI-encoded).
func (s *Snapshot) LocalPath(a Add) string { return "" }

// CommitOptions describe one commit attempt.
type CommitOptions struct {
	Operation string // commitInfo.operation, e.g. "WRITE"
	// Txn, when set, is written as a txn action; if the table already holds
	// this AppID at Version or newer, the commit is skipped (idempotent).
	Txn *Txn
	// Check is called with the actions of every commit that landed after the
	// read version, before retrying at a newer version. Returning an error
	// aborts the commit with that error (wrap ErrConflict).
	Check func(winning []Action) error
}

// CommitResult tells where a commit landed.
type CommitResult struct {
	Version int64 // the new version, or the table's version when Skipped
	Skipped bool  // true when Txn was already committed
}

// Commit writes actions as a new version after readVersion with
// put-if-absent, retrying at the next version when a concurrent writer won
// and the winning commits do not conflict.
func (t *Table) Commit(ctx context.Context, readVersion int64, actions []Action, opts CommitOptions) (CommitResult, error) {
	return CommitResult{}, errTODO
}

// StructType is a Delta schema (schemaString) or a nested struct type.
type StructType struct {
	Fields []StructField
}

// StructField is one field of a StructType.
type StructField struct {
	Name     string
	Type     DataType
	Nullable bool
	Metadata map[string]any
}

// DataType is a Delta data type: a primitive name ("long", "string",
// "timestamp", "binary", ...) or one of the nested types.
type DataType struct {
	Primitive string
	Array     *ArrayType
	Struct    *StructType
	Map       *MapType
}

// ArrayType is {"type":"array",...}.
type ArrayType struct {
	ElementType  DataType
	ContainsNull bool
}

// MapType is {"type":"map",...}.
type MapType struct {
	KeyType           DataType
	ValueType         DataType
	ValueContainsNull bool
}

// String renders the type as Spark DDL ("long", "array<string>").
func (d DataType) String() string { return d.Primitive }

// ParseSchema parses metaData.schemaString.
func ParseSchema(s string) (StructType, error) { return StructType{}, errTODO }

// JSON renders the schema as a schemaString.
func (s StructType) JSON() (string, error) { return "", errTODO }
