package merge

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/duckdb/duckdb-go/v2"
	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"github.com/certlake/certlake/internal/delta"
	"github.com/certlake/certlake/internal/lake"
	"github.com/certlake/certlake/internal/record"
	"github.com/certlake/certlake/internal/storage"
)

// The fast write path: DuckDB reads the new rows of a batch from staging
// and writes them as main's Parquet files itself (COPY ... TO), so no row
// passes through Go. Files are written into a scratch directory inside
// main (same file system, so moving them is a rename), moved under
// seen_date=YYYY-MM-DD/ with the lake writer's names, synced, and
// committed in one Delta commit with add stats built from COPY's
// RETURN_STATS in the lake writer's format. Files of an attempt that does
// not commit are removed; a crash leaves at most uncommitted files, which
// Delta readers never see.

// scratchPrefix names the scratch directories of fast-path writes inside
// main. The leading underscore keeps them out of Delta's data paths.
// delta.Vacuum knows it too: it removes old scratch directories a crash
// left behind.
const scratchPrefix = delta.ScratchDirPrefix

// copiedFiles are the data files one attempt wrote into main, moved into
// their partition directories but not committed yet.
type copiedFiles struct {
	root  string
	store storage.Store // main's; files are uploaded to it when remote
	files []copiedFile
	rows  int64
}

func (c *copiedFiles) remote() bool {
	_, local := storage.LocalPath(c.store, "x")
	return c.store != nil && !local
}

// copiedFile is one data file in main, relative path slash separated and
// not escaped.
type copiedFile struct {
	rel      string
	date     string
	rows     int64
	size     int64
	modified int64
	stats    string
}

// remove deletes the files (the commit did not land). Partition
// directories stay: a concurrent writer may be creating a file there.
func (c *copiedFiles) remove() {
	if c == nil {
		return
	}
	for _, f := range c.files {
		if c.remote() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			_ = c.store.Delete(ctx, f.rel) // best effort: an orphan is invisible, vacuum reclaims it
			cancel()
			continue
		}
		_ = os.Remove(filepath.Join(c.root, filepath.FromSlash(f.rel)))
	}
	c.files = nil
}

// newRowsColumns selects the 19 data columns of the new rows from staging
// (alias s) cast to the exact types of main's files (spec 2.1): cert_index
// BIGINT, seen TIMESTAMPTZ (TIMESTAMP(MICROS, isAdjustedToUTC=true)),
// strings VARCHAR, lists VARCHAR[], as_der converted between base64 text
// and raw bytes when staging and main store it differently.
func newRowsColumns(stagingDERType string, mainDERBinary bool) (string, error) {
	cols := make([]string, 0, len(record.Columns))
	for _, c := range record.Columns {
		var e string
		switch c {
		case "seen_date":
			continue
		case "cert_index", "not_before", "not_after":
			e = "s." + c + "::BIGINT"
		case "seen":
			e = "s.seen::TIMESTAMPTZ"
		case "is_ca":
			e = "s.is_ca::BOOLEAN"
		case "all_domains", "chain":
			e = "s." + c + "::VARCHAR[]"
		case "as_der":
			switch {
			case stagingDERType == "BLOB" && mainDERBinary, stagingDERType == "VARCHAR" && !mainDERBinary:
				e = "s.as_der"
			case stagingDERType == "VARCHAR":
				e = "from_base64(s.as_der)"
			case stagingDERType == "BLOB":
				e = "to_base64(s.as_der)"
			default:
				return "", fmt.Errorf("staging as_der has type %s, want VARCHAR or BLOB", stagingDERType)
			}
		default:
			e = "s." + c + "::VARCHAR"
		}
		cols = append(cols, e+" AS "+c)
	}
	return strings.Join(cols, ", "), nil
}

// copyNewRows has DuckDB write the rows of newkeys into main, one COPY per
// chunk of about CopyChunkRows new rows of one seen_date (reading only the
// staging files holding them), each sorted by key so the files get tight
// key stats for later pruning.
// On error nothing is left in main.
func (m *batchRun) copyNewRows(ctx context.Context, toWrite int64) (_ *copiedFiles, err error) {
	m.progress("write", 0, toWrite)
	out := &copiedFiles{root: m.main.Path(), store: m.main.Store()}
	if toWrite == 0 {
		return out, nil
	}
	defer func() {
		if err != nil {
			out.remove()
		}
	}()
	// New rows per (day, staging file), in key order of the files.
	type dayFile struct {
		day  string
		fi   int
		rows int64
	}
	var per []dayFile
	rs, err := m.db.QueryContext(ctx, `SELECT strftime(day, '%Y-%m-%d'), fi, count(*) FROM newkeys GROUP BY day, fi ORDER BY day, fi`)
	if err != nil {
		return nil, fmt.Errorf("list days and staging files of new rows: %w", err)
	}
	for rs.Next() {
		var f dayFile
		if err := rs.Scan(&f.day, &f.fi, &f.rows); err != nil {
			rs.Close()
			return nil, fmt.Errorf("list days and staging files of new rows: %w", err)
		}
		if f.fi < 0 || f.fi >= len(m.stagingPaths) {
			rs.Close()
			return nil, fmt.Errorf("staging file index %d out of range", f.fi)
		}
		per = append(per, f)
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("list days and staging files of new rows: %w", err)
	}

	// DuckDB writes locally: inside main for a local table (the files are
	// then renamed into place), in this worker's scratch for a remote one
	// (the files are then uploaded).
	scratchRoot := m.main.Path()
	if out.remote() {
		scratchRoot = m.main.TempDir()
		if err := os.MkdirAll(scratchRoot, 0o755); err != nil {
			return nil, fmt.Errorf("worker scratch: %w", err)
		}
	}
	scratch, err := os.MkdirTemp(scratchRoot, scratchPrefix)
	if err != nil {
		return nil, fmt.Errorf("scratch directory for the merge's files: %w", err)
	}
	defer os.RemoveAll(scratch)
	// COPY keeps the ORDER BY across the files it rotates through only
	// when insertion order is preserved.
	for _, s := range []string{"SET preserve_insertion_order = true", "SET TimeZone = 'UTC'"} {
		if _, err := m.db.ExecContext(ctx, s); err != nil {
			return nil, fmt.Errorf("configure duckdb: %s: %w", s, err)
		}
	}
	wo := m.opts.Writer
	rgRows := int64(wo.RowGroupRows)
	if rgRows <= 0 {
		rgRows = 1 << 16
	}
	fileRows := int64(wo.TargetFileRows)
	if fileRows <= 0 {
		fileRows = 1 << 18
	}
	level := wo.CompressionLevel
	if level == 0 {
		level = 1
	}
	// One COPY per chunk of about a file's rows of one day (whole staging
	// files, in key order): the sort and the Parquet writer's buffers
	// then hold one chunk, so memory is bounded by the writer options,
	// not by the batch (a COPY of a whole batch held about 2 KB per new
	// row before spilling, past DuckDB's memory limit in untracked
	// buffers).
	chunkRows := m.opts.CopyChunkRows
	if chunkRows <= 0 {
		chunkRows = copyChunkRows(m.opts.CopyChunkBytes, m.stagingBytesPerRow, fileRows)
	}
	seq := 0
	for k, start := 0, 0; start < len(per); k++ {
		date := per[start].day
		end, rows := start, int64(0)
		for end < len(per) && per[end].day == date && (end == start || rows+per[end].rows <= chunkRows) {
			rows += per[end].rows
			end++
		}
		paths := make([]string, 0, end-start)
		fis := make([]string, 0, end-start)
		for _, f := range per[start:end] {
			paths = append(paths, m.stagingPaths[f.fi])
			fis = append(fis, strconv.Itoa(f.fi))
		}
		src := `read_parquet(` + sqlList(paths) + `, file_row_number = true, union_by_name = true, hive_partitioning = false)`
		// Staging's as_der type is the table's, but a file written by
		// another writer may differ: it is asked per COPY's files.
		var derType string
		if err := m.db.QueryRowContext(ctx, `SELECT typeof(as_der) FROM `+src+` LIMIT 1`).Scan(&derType); err != nil {
			return nil, fmt.Errorf("type of staging as_der: %w", err)
		}
		cols, err := newRowsColumns(derType, m.main.AsDERBinary())
		if err != nil {
			return nil, err
		}
		dir := filepath.Join(scratch, fmt.Sprintf("c%d", k))
		q := `COPY (
			SELECT ` + cols + `
			FROM ` + src + ` s
			SEMI JOIN (SELECT fi, r FROM newkeys WHERE day = ` + lake.QuoteSQL(date) + `::DATE AND fi BETWEEN ` +
			strconv.Itoa(per[start].fi) + ` AND ` + strconv.Itoa(per[end-1].fi) + `) n
			  ON n.fi = ([` + strings.Join(fis, ",") + `])[s.file_index::BIGINT + 1] AND n.r = s.file_row_number
			ORDER BY source_url, cert_index
		) TO ` + lake.QuoteSQL(dir) + ` (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL ` + strconv.Itoa(level) +
			`, ROW_GROUP_SIZE ` + strconv.FormatInt(rgRows, 10) +
			`, ROW_GROUPS_PER_FILE ` + strconv.FormatInt(max((fileRows+rgRows-1)/rgRows, 1), 10) +
			`, FILENAME_PATTERN 'part-{i}', RETURN_STATS)`
		written, err := m.copyDay(ctx, q, date, &seq, out)
		if err != nil {
			return nil, fmt.Errorf("write new rows of %s from %d staging files: %w", date, len(paths), err)
		}
		if written != rows {
			return nil, fmt.Errorf("wrote %d new rows of %s, want %d (staging files changed?)", written, date, rows)
		}
		m.progress("write", out.rows, toWrite)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		start = end
	}
	if out.rows != toWrite {
		return nil, fmt.Errorf("wrote %d new rows, want %d", out.rows, toWrite)
	}
	if err := syncFiles(ctx, out); err != nil {
		return nil, err
	}
	return out, nil
}

// copyChunkRows is the rows of a COPY of about budget bytes (0 means
// DefaultCopyChunkBytes) of rows taking bytesPerRow staging file bytes (0:
// unknown, assumed 1 KB), between MinCopyChunkRows and fileRows.
func copyChunkRows(budget, bytesPerRow, fileRows int64) int64 {
	if budget <= 0 {
		budget = DefaultCopyChunkBytes
	}
	if bytesPerRow <= 0 {
		bytesPerRow = 1 << 10
	}
	return min(max(budget/(2*bytesPerRow), MinCopyChunkRows), max(fileRows, MinCopyChunkRows))
}

// copyDay runs one COPY ... RETURN_STATS and moves each file it wrote into
// main's partition directory for date, appending it to out.
func (m *batchRun) copyDay(ctx context.Context, q, date string, seq *int, out *copiedFiles) (int64, error) {
	type written struct {
		path  string
		rows  int64
		stats duckdb.OrderedMap
	}
	var ws []written
	rs, err := m.db.QueryContext(ctx, q)
	if err != nil {
		return 0, err
	}
	cols, err := rs.Columns()
	if err != nil {
		rs.Close()
		return 0, err
	}
	for rs.Next() {
		var w written
		dest := make([]any, len(cols))
		for i, c := range cols {
			switch c {
			case "filename":
				dest[i] = &w.path
			case "count":
				dest[i] = &w.rows
			case "column_statistics":
				dest[i] = &w.stats
			default:
				dest[i] = new(any)
			}
		}
		if err := rs.Scan(dest...); err != nil {
			rs.Close()
			return 0, fmt.Errorf("read COPY result: %w", err)
		}
		ws = append(ws, w)
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		return 0, err
	}
	// DuckDB lists files in no set order; name them in key order.
	var n int64
	for _, w := range ws {
		if w.rows == 0 {
			_ = os.Remove(w.path)
			continue
		}
		st, err := statsFromCopy(w.rows, w.stats)
		if err != nil {
			// A column without usable statistics: compute them.
			if st, err = m.statsFromFile(ctx, w.path); err != nil {
				return n, fmt.Errorf("stats of %s: %w", w.path, err)
			}
		}
		w.rows = st.n
		stats, err := st.json()
		if err != nil {
			return n, err
		}
		rel := fmt.Sprintf("%s=%s/part-%05d-%s-c000.zstd.parquet", lake.PartitionColumn, date, *seq, uuid.NewString())
		*seq++
		local := filepath.Join(out.root, filepath.FromSlash(rel))
		if out.remote() {
			local = w.path
		} else {
			if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
				return n, fmt.Errorf("create partition directory: %w", err)
			}
			if err := os.Rename(w.path, local); err != nil {
				return n, fmt.Errorf("move data file into main: %w", err)
			}
		}
		fi, err := os.Stat(local)
		if err != nil {
			return n, err
		}
		if out.remote() {
			if err := uploadFile(ctx, out.store, rel, local, fi.Size()); err != nil {
				return n, err
			}
		}
		f := copiedFile{rel: rel, date: date, rows: w.rows, stats: stats}
		out.files = append(out.files, f)
		out.files[len(out.files)-1].size = fi.Size()
		out.files[len(out.files)-1].modified = fi.ModTime().UnixMilli()
		out.rows += w.rows
		n += w.rows
	}
	return n, nil
}

// syncFiles makes the files and their partition directories durable, as
// they must be before the commit that references them lands.
func syncFiles(ctx context.Context, c *copiedFiles) error {
	if c.remote() {
		return nil // an object store's PUT is durable when it returns
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	dirs := map[string]bool{}
	for _, f := range c.files {
		local := filepath.Join(c.root, filepath.FromSlash(f.rel))
		dirs[filepath.Dir(local)] = true
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			return syncPath(local)
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for d := range dirs {
		if err := syncPath(d); err != nil {
			return err
		}
	}
	return nil
}

// uploadFile puts the local file p (size bytes) at key of a remote main and
// removes the local copy.
func uploadFile(ctx context.Context, s storage.Store, key, p string, size int64) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer os.Remove(p)
	defer f.Close()
	if err := s.Put(ctx, key, f, size); err != nil {
		return fmt.Errorf("upload data file into main: %w", err)
	}
	return nil
}

func syncPath(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("sync %s: %w", p, err)
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", p, err)
	}
	return nil
}

// commitFiles commits c with the batch's txn; see commit for the checks
// against concurrent writers. The commit reads the same snapshot the log
// was checked up to, so every later commit reaches Check: no window is
// left in which a concurrent commit goes unchecked.
func (m *batchRun) commitFiles(ctx context.Context, c *copiedFiles, readVersion int64) (res lake.CommitResult, err error) {
	defer func() {
		// Only an error that may mean the commit landed keeps the files.
		if res.Skipped || (err != nil && !errors.Is(err, errCommitUnknown)) {
			c.remove()
		}
	}()
	snap, err := m.main.Snapshot(ctx)
	if err != nil {
		return lake.CommitResult{}, err
	}
	if snap.Txns[m.appID] >= txnVersion {
		return lake.CommitResult{Skipped: true, Version: snap.Version}, nil
	}
	adds, err := addsBetween(ctx, m.main, readVersion, snap.Version)
	if err != nil {
		return lake.CommitResult{}, err
	}
	if n, err := m.takenKeys(ctx, snap, adds); err != nil || n > 0 {
		return lake.CommitResult{}, fmt.Errorf("%w (%d keys, versions %d-%d): %v", errKeysTaken, n, readVersion+1, snap.Version, err)
	}
	if bin, ok := derBinary(snap.Schema); !ok || bin != m.main.AsDERBinary() {
		return lake.CommitResult{}, fmt.Errorf("%w: main's as_der type changed since it was opened", delta.ErrConflict)
	}
	actions := make([]delta.Action, 0, len(c.files))
	for _, f := range c.files {
		actions = append(actions, delta.Action{Add: &delta.Add{
			Path:             delta.EncodePath(f.rel),
			PartitionValues:  map[string]string{lake.PartitionColumn: f.date},
			Size:             f.size,
			ModificationTime: f.modified,
			DataChange:       true,
			Stats:            f.stats,
		}})
	}
	schemaString, partCols := snap.Metadata.SchemaString, snap.Metadata.PartitionColumns
	check := func(winning []delta.Action) error {
		var wadds []delta.Add
		for _, a := range winning {
			if a.MetaData != nil && (a.MetaData.SchemaString != schemaString || !slices.Equal(a.MetaData.PartitionColumns, partCols)) {
				return fmt.Errorf("%w: a concurrent commit changed main's schema", delta.ErrConflict)
			}
			if a.Add != nil {
				wadds = append(wadds, *a.Add)
			}
		}
		n, err := m.takenKeys(ctx, snap, wadds)
		if err != nil || n > 0 {
			return fmt.Errorf("%w (%d keys): %v", errKeysTaken, n, err)
		}
		return nil
	}
	cr, err := m.main.Delta().Commit(ctx, snap.Version, actions, delta.CommitOptions{
		Operation: "MERGE",
		Txn:       &delta.Txn{AppID: m.appID, Version: txnVersion},
		Check:     check,
	})
	if err != nil {
		if errors.Is(err, errKeysTaken) {
			return lake.CommitResult{}, errKeysTaken
		}
		if errors.Is(err, delta.ErrConflict) {
			return lake.CommitResult{}, fmt.Errorf("commit to main: %w", err)
		}
		return lake.CommitResult{}, fmt.Errorf("commit to main: %w: %w", errCommitUnknown, err)
	}
	if cr.Skipped {
		return lake.CommitResult{Version: cr.Version, Skipped: true}, nil
	}
	return lake.CommitResult{Version: cr.Version, Files: len(c.files), Rows: c.rows}, nil
}

// errCommitUnknown marks a commit error after which the commit may have
// landed: its files are kept (uncommitted ones are invisible orphans).
var errCommitUnknown = errors.New("commit outcome unknown")

// derBinary reports whether a table schema stores as_der as binary.
func derBinary(s delta.StructType) (binary, ok bool) {
	for _, f := range s.Fields {
		if f.Name == "as_der" {
			switch f.Type.Primitive {
			case "binary":
				return true, true
			case "string":
				return false, true
			}
			return false, false
		}
	}
	return false, false
}
