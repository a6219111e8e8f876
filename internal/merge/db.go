package merge

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"

	"github.com/certlake/certlake/internal/lake"
)

// DBOptions bound the DuckDB instance a merge step opens: memory_limit
// (past it DuckDB spills joins and sorts to TempDir, so a batch's memory
// does not grow with its rows), threads and the spill directory. An empty
// MemoryLimit means DefaultMemoryLimit here.
type DBOptions = lake.DBOptions

// DefaultMemoryLimit is DuckDB's memory_limit for merge steps when
// DBOptions.MemoryLimit is empty.
const DefaultMemoryLimit = "1GB"

// duck is a private in-memory DuckDB on one connection (the temp tables of
// a batch live on a connection) with its own spill directory.
type duck struct {
	*sql.DB
	tempDir string // the spill directory (removed by Close), for the caller's scratch files too
}

// Close closes the database and removes its spill directory.
func (d *duck) Close() error {
	err := d.DB.Close()
	os.RemoveAll(d.tempDir)
	return err
}

// spillPrefix names the spill directories of merge steps.
const spillPrefix = "certlake-merge-duckdb-"

// openDB opens a duck with the limits of o. It spills to a fresh directory
// under o.TempDir (the worker passes its worker.scratch_dir; "" = the OS
// temp dir), removed by Close: DuckDB's default for an in-memory database
// is the working directory, which a worker may not own, and two databases
// (a worker runs several merge batches at once) must not share spill files.
func openDB(ctx context.Context, o DBOptions) (*duck, error) {
	if o.MemoryLimit == "" {
		o.MemoryLimit = DefaultMemoryLimit
	}
	if o.TempDir != "" {
		if err := os.MkdirAll(o.TempDir, 0o755); err != nil {
			return nil, fmt.Errorf("duckdb spill directory: %w", err)
		}
	}
	tmp, err := os.MkdirTemp(o.TempDir, spillPrefix)
	if err != nil {
		return nil, fmt.Errorf("duckdb spill directory: %w", err)
	}
	d := &duck{tempDir: tmp}
	o.TempDir = tmp
	db, err := lake.OpenDB(ctx, o)
	if err != nil {
		os.RemoveAll(d.tempDir)
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	d.DB = db
	return d, nil
}

// checkPaths refuses file paths holding a glob character: DuckDB's
// read_parquet would expand it and read other files.
func checkPaths(paths []string) error {
	for _, p := range paths {
		if strings.ContainsAny(p, "*?[") {
			return fmt.Errorf("data file path %q holds a glob character DuckDB would expand", p)
		}
	}
	return nil
}

// sqlList renders paths as a DuckDB list literal of strings.
func sqlList(paths []string) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, p := range paths {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(lake.QuoteSQL(p))
	}
	b.WriteByte(']')
	return b.String()
}
