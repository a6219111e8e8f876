package merge

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	_ "github.com/duckdb/duckdb-go/v2" // registers the "duckdb" driver
)

// DBOptions bound the DuckDB instance a merge step opens. The zero value
// means DuckDB's defaults except MemoryLimit.
type DBOptions struct {
	// MemoryLimit is DuckDB's memory_limit, e.g. "1GB"; "" means "1GB".
	// Past it DuckDB spills joins and sorts to TempDir, so a batch's memory
	// does not grow with its rows.
	MemoryLimit string
	// Threads is DuckDB's thread count; 0 means one per core.
	Threads int
	// TempDir is where DuckDB spills; "" means DuckDB's default (a
	// .tmp directory in the working directory for in-memory databases).
	TempDir string
}

// openDB opens a private in-memory DuckDB with the limits of o. One
// connection only: temp tables live on a connection.
func openDB(ctx context.Context, o DBOptions) (*sql.DB, error) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return nil, fmt.Errorf("open duckdb: %w", err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	mem := o.MemoryLimit
	if mem == "" {
		mem = "1GB"
	}
	stmts := []string{
		"SET memory_limit = " + sqlString(mem),
		// Insertion order is not needed anywhere; dropping it lets DuckDB
		// stream and parallelise more.
		"SET preserve_insertion_order = false",
	}
	if o.Threads > 0 {
		stmts = append(stmts, fmt.Sprintf("SET threads = %d", o.Threads))
	}
	if o.TempDir != "" {
		stmts = append(stmts, "SET temp_directory = "+sqlString(o.TempDir))
	}
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			db.Close()
			return nil, fmt.Errorf("configure duckdb (%s): %w", s, err)
		}
	}
	return db, nil
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
