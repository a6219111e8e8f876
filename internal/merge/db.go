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
	tmp     string // removed by Close; "" when the caller chose TempDir
	tempDir string // the spill directory, for the caller's scratch files too
}

// Close closes the database and removes its spill directory.
func (d *duck) Close() error {
	err := d.DB.Close()
	if d.tmp != "" {
		os.RemoveAll(d.tmp)
	}
	return err
}

// openDB opens a duck with the limits of o. Without a TempDir it spills to
// a fresh directory under os.TempDir (DuckDB's default for an in-memory
// database is the working directory, which a worker may not own, and two
// databases must not share spill files).
func openDB(ctx context.Context, o DBOptions) (*duck, error) {
	if o.MemoryLimit == "" {
		o.MemoryLimit = DefaultMemoryLimit
	}
	d := &duck{}
	if o.TempDir == "" {
		tmp, err := os.MkdirTemp("", "certlake-merge-duckdb-")
		if err != nil {
			return nil, fmt.Errorf("duckdb spill directory: %w", err)
		}
		d.tmp, o.TempDir = tmp, tmp
	}
	db, err := lake.OpenDB(ctx, o)
	if err != nil {
		if d.tmp != "" {
			os.RemoveAll(d.tmp)
		}
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	d.DB = db
	d.tempDir = o.TempDir
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

// sqlString quotes s as a SQL string literal.
func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// sqlList renders paths as a DuckDB list literal of strings.
func sqlList(paths []string) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, p := range paths {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(sqlString(p))
	}
	b.WriteByte(']')
	return b.String()
}
