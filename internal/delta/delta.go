// Package delta implements the subset of the Delta Lake transaction protocol
// (https://github.com/delta-io/delta/blob/master/PROTOCOL.md) that certlake
// needs: reader version 1 / writer version 2 tables, log replay from JSON
// commits and classic Parquet checkpoints, put-if-absent commits with conflict
// checks, idempotent transactions (txn) and checkpoint writing.
package delta

import "errors"

// Errors callers branch on. Wrapped errors keep these in their chain.
var (
	// ErrNotATable: the path has no _delta_log directory (or no commit in it).
	ErrNotATable = errors.New("delta: not a Delta table")
	// ErrUnsupported: the table needs a reader version or table feature this
	// package does not implement. The message names the feature.
	ErrUnsupported = errors.New("delta: unsupported table feature")
	// ErrCorrupt: a commit or checkpoint cannot be parsed or the log has a hole.
	ErrCorrupt = errors.New("delta: corrupt table log")
	// ErrConflict: a concurrent commit conflicts with ours (not retried).
	ErrConflict = errors.New("delta: conflicting concurrent commit")
	// ErrVersionNotFound: the requested version cannot be reconstructed.
	ErrVersionNotFound = errors.New("delta: version not reconstructible")
	// ErrExists: Create found a table already there.
	ErrExists = errors.New("delta: table already exists")
	// ErrInvalidAction: actions passed to Commit or Create break the
	// protocol (missing or non-relative path, partition values that do not
	// match the partition columns, a remove on an append-only table, ...).
	// Retrying cannot help.
	ErrInvalidAction = errors.New("delta: invalid action")
)

// Protocol is the protocol action.
type Protocol struct {
	MinReaderVersion int      `json:"minReaderVersion"`
	MinWriterVersion int      `json:"minWriterVersion"`
	ReaderFeatures   []string `json:"readerFeatures,omitempty"`
	WriterFeatures   []string `json:"writerFeatures,omitempty"`
}

// Format is the metaData.format field.
type Format struct {
	Provider string            `json:"provider"`
	Options  map[string]string `json:"options"`
}

// Metadata is the metaData action.
type Metadata struct {
	ID               string            `json:"id"`
	Name             *string           `json:"name,omitempty"`
	Description      *string           `json:"description,omitempty"`
	Format           Format            `json:"format"`
	SchemaString     string            `json:"schemaString"`
	PartitionColumns []string          `json:"partitionColumns"`
	Configuration    map[string]string `json:"configuration"`
	CreatedTime      *int64            `json:"createdTime,omitempty"`
}

// Add is the add action. Path is as stored in the log: relative to the table
// root and URI-encoded (or an absolute URI).
type Add struct {
	Path             string            `json:"path"`
	PartitionValues  map[string]string `json:"partitionValues"`
	Size             int64             `json:"size"`
	ModificationTime int64             `json:"modificationTime"`
	DataChange       bool              `json:"dataChange"`
	Stats            string            `json:"stats,omitempty"`
	Tags             map[string]string `json:"tags,omitempty"`
}

// Remove is the remove action.
type Remove struct {
	Path                 string            `json:"path"`
	DeletionTimestamp    *int64            `json:"deletionTimestamp,omitempty"`
	DataChange           bool              `json:"dataChange"`
	ExtendedFileMetadata bool              `json:"extendedFileMetadata,omitempty"`
	PartitionValues      map[string]string `json:"partitionValues,omitempty"`
	Size                 *int64            `json:"size,omitempty"`
}

// Txn is the txn (SetTransaction) action: the latest Version committed by the
// application AppID. A commit carrying a Txn whose version is not newer than
// the table's is a no-op; that is how retried writers stay exactly-once.
type Txn struct {
	AppID       string `json:"appId"`
	Version     int64  `json:"version"`
	LastUpdated *int64 `json:"lastUpdated,omitempty"`
}

// Action is one line of a commit file; exactly one field is set.
type Action struct {
	Add        *Add           `json:"add,omitempty"`
	Remove     *Remove        `json:"remove,omitempty"`
	MetaData   *Metadata      `json:"metaData,omitempty"`
	Protocol   *Protocol      `json:"protocol,omitempty"`
	Txn        *Txn           `json:"txn,omitempty"`
	CommitInfo map[string]any `json:"commitInfo,omitempty"`
}

// Stats is the parsed form of Add.Stats.
type Stats struct {
	NumRecords int64          `json:"numRecords"`
	MinValues  map[string]any `json:"minValues,omitempty"`
	MaxValues  map[string]any `json:"maxValues,omitempty"`
	NullCount  map[string]any `json:"nullCount,omitempty"`
}
