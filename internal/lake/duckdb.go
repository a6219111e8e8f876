package lake

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"strings"

	"github.com/duckdb/duckdb-go/v2"
)

// DBOptions tune the in-memory DuckDB of OpenDB. Zero values keep DuckDB's
// defaults.
type DBOptions struct {
	MemoryLimit string // e.g. "2GB"
	Threads     int
	TempDir     string // where DuckDB spills when over MemoryLimit
}

// OpenDB opens an in-memory DuckDB for queries over table files. Insertion
// order is not preserved (certlake queries never rely on it, and keeping
// it costs memory on large scans). Close the DB when done.
func OpenDB(ctx context.Context, opts DBOptions) (*sql.DB, error) {
	settings := []string{"SET preserve_insertion_order = false"}
	if opts.MemoryLimit != "" {
		settings = append(settings, "SET memory_limit = "+QuoteSQL(opts.MemoryLimit))
	}
	if opts.Threads > 0 {
		settings = append(settings, fmt.Sprintf("SET threads = %d", opts.Threads))
	}
	if opts.TempDir != "" {
		settings = append(settings, "SET temp_directory = "+QuoteSQL(opts.TempDir))
	}
	c, err := duckdb.NewConnector("", func(e driver.ExecerContext) error {
		for _, s := range settings {
			if _, err := e.ExecContext(context.WithoutCancel(ctx), s, nil); err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("open duckdb: %w", err)
	}
	db := sql.OpenDB(c)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open duckdb: %w", err)
	}
	return db, nil
}

// QuoteSQL renders s as a SQL string literal: certlake's one quoting
// helper for the paths and values it cannot pass as query parameters
// (DuckDB takes no parameters in SET, COPY ... TO or read_parquet lists).
func QuoteSQL(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// ParquetListSQL renders the files' local paths as a DuckDB list literal for
// read_parquet. DuckDB expands glob characters in paths, so a path holding
// one of `*?[` is refused rather than matched against other files.
func ParquetListSQL(files []FileInfo) (string, error) {
	var b strings.Builder
	b.WriteByte('[')
	for i, f := range files {
		if strings.ContainsAny(f.LocalPath, "*?[") {
			return "", fmt.Errorf("data file path %q holds a glob character DuckDB would expand", f.LocalPath)
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(QuoteSQL(f.LocalPath))
	}
	b.WriteByte(']')
	return b.String(), nil
}

// KeysSQL returns a parenthesized SQL relation of (source_url VARCHAR,
// cert_index BIGINT) over files, for use in FROM. No files gives an empty
// relation of the same shape.
func KeysSQL(files []FileInfo) (string, error) {
	if len(files) == 0 {
		return "(SELECT CAST(NULL AS VARCHAR) AS source_url, CAST(NULL AS BIGINT) AS cert_index WHERE false)", nil
	}
	list, err := ParquetListSQL(files)
	if err != nil {
		return "", err
	}
	return "(SELECT source_url, CAST(cert_index AS BIGINT) AS cert_index FROM read_parquet(" + list + ", hive_partitioning = false))", nil
}

// UnionKeysSQL is KeysSQL over main UNION ALL staging: one relation of the
// keys of both tables (duplicates kept).
func UnionKeysSQL(main, staging []FileInfo) (string, error) {
	m, err := KeysSQL(main)
	if err != nil {
		return "", fmt.Errorf("main: %w", err)
	}
	s, err := KeysSQL(staging)
	if err != nil {
		return "", fmt.Errorf("staging: %w", err)
	}
	return "(SELECT * FROM " + m + " UNION ALL SELECT * FROM " + s + ")", nil
}

// Prune keeps the files whose stats allow a row of log sourceURL with
// cert_index in [start, end]. Files without key stats are always kept.
// A max source_url that is a prefix of sourceURL is treated as truncated
// (some writers cut long string stats) and kept.
func Prune(files []FileInfo, sourceURL string, start, end uint64) []FileInfo {
	var out []FileInfo
	for _, f := range files {
		if !f.HasKeyStats || keep(f, sourceURL, start, end) {
			out = append(out, f)
		}
	}
	return out
}

func keep(f FileInfo, sourceURL string, start, end uint64) bool {
	if sourceURL < f.MinSourceURL {
		return false
	}
	if sourceURL > f.MaxSourceURL && !strings.HasPrefix(sourceURL, f.MaxSourceURL) {
		return false
	}
	return f.MinCertIndex <= end && f.MaxCertIndex >= start
}

// PruneRange keeps the files whose cert_index stats overlap [start, end],
// whatever their source_url. Files without key stats are always kept.
func PruneRange(files []FileInfo, start, end uint64) []FileInfo {
	var out []FileInfo
	for _, f := range files {
		if !f.HasKeyStats || f.MinCertIndex <= end && f.MaxCertIndex >= start {
			out = append(out, f)
		}
	}
	return out
}
