package merge

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/RoaringBitmap/roaring/v2/roaring64"

	"github.com/certlake/certlake/internal/delta"
	"github.com/certlake/certlake/internal/keyindex"
	"github.com/certlake/certlake/internal/lake"
)

// txnVersion is the txn version a batch commits. A batch is written once;
// its appId names the staging table, snapshot and batch, so the version
// never needs to grow.
const txnVersion = 1

// DefaultCopyChunkBytes is BatchOptions.CopyChunkBytes when zero: with
// real rows (about 1 KB of staging file per row) a COPY takes 32k rows, so
// the default 1 GB memory limit holds; with narrow rows it takes a whole
// main file's rows.
const DefaultCopyChunkBytes = 64 << 20

// MinCopyChunkRows is the fewest rows a COPY sized by bytes takes.
const MinCopyChunkRows = 4096

// DefaultMaxAttempts bounds how often MergeBatch redoes a batch whose new
// keys a concurrent writer committed first.
const DefaultMaxAttempts = 5

// TxnAppID is the Delta txn appId of batch id of a plan. It is
// "certlake-merge-<staging table id>-v<staging version>-b<batch id>": a
// staging table recreated at the same path has a new table id, so its
// batches are never mistaken for an earlier merge's.
func TxnAppID(ref PlanRef, batchID int) string {
	return fmt.Sprintf("certlake-merge-%s-v%d-b%d", ref.StagingTableID, ref.StagingVersion, batchID)
}

// BatchOptions tune MergeBatch.
type BatchOptions struct {
	// DB bounds the DuckDB instance of the batch (memory limit, threads,
	// spill directory).
	DB DBOptions
	// Writer tunes the Parquet files written to main.
	Writer lake.WriterOptions
	// MaxAttempts bounds redoes after a concurrent writer committed some
	// of the batch's new keys; 0 means DefaultMaxAttempts.
	MaxAttempts int
	// Progress, when set, is called at each phase and every ProgressRows
	// rows written (an activity heartbeats from it). It runs on the
	// merging goroutine: keep it short.
	Progress func(Progress)
	// ProgressRows is the row interval of Progress calls; 0 means 65536.
	ProgressRows int64
	// CopyChunkRows bounds the new rows one COPY sorts and writes to main
	// (whole staging files of one seen_date at a time) on the DuckDB write
	// path; 0 sizes the COPYs by CopyChunkBytes.
	CopyChunkRows int64
	// CopyChunkBytes bounds the memory of one COPY when CopyChunkRows is
	// 0: a COPY's sort and Parquet buffers hold about twice the staging
	// file bytes of its rows outside DuckDB's memory accounting, so a
	// COPY takes CopyChunkBytes / (2 * staging bytes per row) rows,
	// between MinCopyChunkRows and a main file's rows. 0 means
	// DefaultCopyChunkBytes. Larger COPYs read and write in parallel;
	// smaller ones keep wide rows (real certificates, a few KB each)
	// within the memory limit.
	CopyChunkBytes int64
	// Logger receives debug and info logs; nil discards.
	Logger *slog.Logger
}

// Progress reports where a batch is.
type Progress struct {
	Batch       int    // Batch.ID
	Attempt     int    // 1-based
	Phase       string // "dedupe", "anti-join", "write", "commit"
	RowsWritten int64  // new rows written to main so far in this attempt
	RowsToWrite int64  // new rows this attempt writes (known from "write" on)
}

// BatchResult counts what a batch did. Inserted + Skipped == StagingRows;
// Skipped counts both the duplicates inside staging and the keys main
// already held.
type BatchResult struct {
	BatchID             int   `json:"batch_id"`
	StagingRows         int64 `json:"staging_rows"`
	Inserted            int64 `json:"inserted"`
	Skipped             int64 `json:"skipped"`
	DuplicatesInStaging int64 `json:"duplicates_in_staging"` // part of Skipped; 0 when AlreadyCommitted
	MainVersion         int64 `json:"main_version"`          // the version holding the batch's commit
	AlreadyCommitted    bool  `json:"already_committed"`     // an earlier attempt's commit had landed
	Attempts            int   `json:"attempts"`              // reads of main (1 unless redone)
	MainFilesRead       int   `json:"main_files_read"`       // main files the last anti-join read (not in the key index)
	MainFilesIndexed    int   `json:"main_files_indexed"`    // main files whose keys the last anti-join took from the key index
	MainFiles           int   `json:"main_files"`            // live main files at the last read
}

// MergeBatch merges one batch of a plan into main:
//
//  1. If main already holds the batch's txn, it returns the counts of that
//     commit (AlreadyCommitted) without reading staging: a retried activity
//     is a no-op.
//  2. DuckDB reads the batch's staging files (of snapshot
//     ref.StagingVersion) and keeps one row per (source_url, cert_index):
//     the earliest seen, ties broken by file (in key order, then path),
//     then row position.
//  3. It anti-joins those keys against main's keys: from main's key index
//     (package keyindex; exact key sets, no Parquet read) for the files
//     it holds, and by reading the others whose stats can hold the
//     batch's keys (files without stats are always read).
//  4. DuckDB writes the new rows as main's Parquet files itself, one COPY
//     per seen_date sorted by key, in the lake writer's format (see
//     copy.go), and they are committed with the batch's txn (TxnAppID,
//     version 1). If a concurrent writer committed a file holding any of
//     the new keys after step 3, the commit is abandoned, its files
//     removed, and steps 3-4 are redone on a fresh snapshot, at most
//     MaxAttempts times.
//
// Memory is bounded by DBOptions.MemoryLimit (DuckDB spills its joins and
// sorts), not by the batch size: no row passes through Go. Errors name
// the batch.
func MergeBatch(ctx context.Context, main, staging *lake.Table, ref PlanRef, b Batch, opts BatchOptions) (BatchResult, error) {
	appID := TxnAppID(ref, b.ID)
	m := &batchRun{
		main: main, staging: staging, ref: ref, b: b, opts: opts, appID: appID,
		keys: newKeySet(b.Keys), log: opts.Logger,
		res: BatchResult{BatchID: b.ID},
	}
	if m.log == nil {
		m.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	m.log = m.log.With("batch", b.ID, "txn", appID)
	if m.opts.MaxAttempts <= 0 {
		m.opts.MaxAttempts = DefaultMaxAttempts
	}
	if m.opts.ProgressRows <= 0 {
		m.opts.ProgressRows = 1 << 16
	}
	res, err := m.run(ctx)
	if err != nil {
		return res, fmt.Errorf("merge batch %d (%s): %w", b.ID, appID, err)
	}
	return res, nil
}

// batchRun is the state of one MergeBatch call.
type batchRun struct {
	main, staging *lake.Table
	ref           PlanRef
	b             Batch
	opts          BatchOptions
	appID         string
	keys          keySet
	log           *slog.Logger
	db            *duck
	index         *keyindex.Index // main's key index; nil when unreadable
	// staged are the batch's chosen keys per log, once read (see
	// stagingSets).
	staged       map[string]*roaring64.Bitmap
	stagingPaths []string // the batch's staging files; fi indexes it
	// stagingBytesPerRow is the batch's staging file bytes per row (0 when
	// the stats do not say); it sizes the write COPYs.
	stagingBytesPerRow int64
	res                BatchResult
	attempt            int
	phase              string    // current phase, for timing logs
	phaseStart         time.Time // when it began
}

func (m *batchRun) progress(phase string, written, total int64) {
	if phase != m.phase {
		now := time.Now()
		if m.phase != "" {
			m.log.Debug("merge batch phase done", "phase", m.phase, "attempt", m.attempt, "seconds", now.Sub(m.phaseStart).Seconds())
		}
		m.phase, m.phaseStart = phase, now
	}
	if m.opts.Progress != nil {
		m.opts.Progress(Progress{Batch: m.b.ID, Attempt: m.attempt, Phase: phase, RowsWritten: written, RowsToWrite: total})
	}
}

func (m *batchRun) run(ctx context.Context) (BatchResult, error) {
	snap, err := m.main.Snapshot(ctx)
	if err != nil {
		return m.res, err
	}
	if snap.Txns[m.appID] >= txnVersion {
		return m.recovered(ctx, snap.Version)
	}
	if m.index, err = keyindex.Load(ctx, keyindex.FromStorage(m.main.Store()), snap.Metadata.ID); err != nil {
		m.log.WarnContext(ctx, "main's key index not loaded; reading main files by their stats alone", "err", err)
	}
	stSnap, err := m.staging.SnapshotAt(ctx, m.ref.StagingVersion)
	if err != nil {
		return m.res, fmt.Errorf("read staging: %w", err)
	}
	if stSnap.Metadata.ID != m.ref.StagingTableID {
		return m.res, fmt.Errorf("%w: staging table id is %s, the plan's is %s (the table was recreated)", ErrNotStaging, stSnap.Metadata.ID, m.ref.StagingTableID)
	}
	live := make(map[string]delta.Add, len(stSnap.Files))
	for _, a := range stSnap.Files {
		live[a.Path] = a
	}
	adds := make([]delta.Add, 0, len(m.b.Files))
	for _, p := range m.b.Files {
		a, ok := live[p]
		if !ok {
			return m.res, fmt.Errorf("staging file %s is not in staging version %d", p, m.ref.StagingVersion)
		}
		adds = append(adds, a)
	}
	// Key order (files without key stats last), so rows stream out in
	// nearly key order; the path breaks ties.
	slices.SortStableFunc(adds, func(a, b delta.Add) int {
		x, y := statsBox(a), statsBox(b)
		if x.ok != y.ok {
			if x.ok {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(x.URLMin, y.URLMin), cmp.Compare(x.IdxMin, y.IdxMin), cmp.Compare(a.Path, b.Path))
	})
	stagingPaths, release, err := m.staging.LocalPaths(ctx, adds)
	if err != nil {
		return m.res, err
	}
	defer release()
	var bytes, rows int64
	for _, a := range adds {
		if n := statsBox(a).Rows; n > 0 {
			bytes, rows = bytes+a.Size, rows+n
		}
	}
	if rows > 0 {
		m.stagingBytesPerRow = max(bytes/rows, 1)
	}

	if err := checkPaths(stagingPaths); err != nil {
		return m.res, err
	}
	m.db, err = openDB(ctx, m.opts.DB)
	if err != nil {
		return m.res, err
	}
	defer m.db.Close()
	m.attempt = 1
	m.progress("dedupe", 0, 0)
	m.stagingPaths = stagingPaths
	if err := m.dedupe(ctx, stagingPaths); err != nil {
		return m.res, err
	}
	for ; ; m.attempt++ {
		m.res.Attempts = m.attempt
		if m.attempt > 1 {
			if snap, err = m.main.Snapshot(ctx); err != nil {
				return m.res, err
			}
			if snap.Txns[m.appID] >= txnVersion {
				return m.recovered(ctx, snap.Version)
			}
		}
		err := m.attempt1(ctx, snap)
		if err == nil {
			return m.res, nil
		}
		if errors.Is(err, errAlreadyCommitted) {
			latest, serr := m.main.Snapshot(ctx)
			if serr != nil {
				return m.res, serr
			}
			return m.recovered(ctx, latest.Version)
		}
		if !errors.Is(err, errKeysTaken) || m.attempt >= m.opts.MaxAttempts {
			return m.res, fmt.Errorf("attempt %d: %w", m.attempt, err)
		}
		m.log.InfoContext(ctx, "redoing merge batch: a concurrent commit took some of its keys", "attempt", m.attempt, "err", err)
	}
}

var (
	// errKeysTaken: a concurrent commit holds some of the new keys.
	errKeysTaken = fmt.Errorf("%w: a concurrent commit added keys of this batch", delta.ErrConflict)
	// errAlreadyCommitted: the writer found the batch's txn committed.
	errAlreadyCommitted = errors.New("batch already committed")
)

// recovered builds the result of a batch whose commit had already landed,
// counting what that commit added.
func (m *batchRun) recovered(ctx context.Context, latest int64) (BatchResult, error) {
	res := BatchResult{BatchID: m.b.ID, StagingRows: m.b.Rows, AlreadyCommitted: true, MainVersion: latest, Attempts: m.res.Attempts}
	c, found, err := findTxnCommit(ctx, m.main.Store(), m.appID, latest)
	if err != nil {
		return res, err
	}
	if found && c.exact {
		res.MainVersion = c.version
		res.Inserted = min(c.rows, res.StagingRows)
	} else {
		m.log.Warn("commit of an already merged batch not found in the log; counting its rows as skipped", "found", found)
	}
	res.Skipped = res.StagingRows - res.Inserted
	return res, nil
}

// dedupe reads the batch's staging keys and keeps the row to insert for
// each: table chosen(source_url, cert_index, fi, r, n), fi indexing sfiles
// (the staging files in key order), r the row's position in its file, n the
// key's staging rows.
func (m *batchRun) dedupe(ctx context.Context, paths []string) error {
	stmts := []string{
		"CREATE TEMP TABLE sfiles (fi INTEGER, path VARCHAR)",
		"INSERT INTO sfiles SELECT i::INTEGER - 1, p FROM unnest(" + sqlList(paths) + ") WITH ORDINALITY AS t(p, i)",
		// The earliest seen wins; file order and row position make ties
		// deterministic. The three are packed into one HUGEINT
		// (seen µs << 64 | fi << 40 | r) so the aggregate is a plain min.
		// Only keys, seen and positions are read here; the wide columns
		// are read once, for the winners, by write.
		// file_index is the file's position in the list, so fi needs no
		// join on file names. day is the winner's seen_date.
		`CREATE TEMP TABLE chosen AS
		SELECT source_url, cert_index,
		       ((pick >> 40) & 16777215)::BIGINT AS fi, (pick & 1099511627775)::BIGINT AS r, n,
		       make_timestamp((pick >> 64)::BIGINT)::DATE AS day
		FROM (
			SELECT s.source_url, s.cert_index,
			       min((epoch_us(s.seen)::HUGEINT << 64) + (s.file_index::HUGEINT << 40) + s.file_row_number) AS pick,
			       count(*) AS n
			FROM read_parquet(` + sqlList(paths) + `, file_row_number = true, union_by_name = true, hive_partitioning = false) s
			GROUP BY s.source_url, s.cert_index
		)`,
	}
	for _, s := range stmts {
		if _, err := m.db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("dedupe staging rows: %w", err)
		}
	}
	var total, unique sql.NullInt64
	if err := m.db.QueryRowContext(ctx, "SELECT sum(n), count(*) FROM chosen").Scan(&total, &unique); err != nil {
		return fmt.Errorf("count staging rows: %w", err)
	}
	m.res.StagingRows = total.Int64
	m.res.DuplicatesInStaging = total.Int64 - unique.Int64
	return nil
}

// mayHold reports whether main file a may hold a key of the batch by its
// stats.
func (m *batchRun) mayHold(a delta.Add) bool {
	b := statsBox(a)
	return b.Rows != 0 && b.mayHold(m.keys)
}

// attempt1 is one read-write-commit of the batch against main snapshot
// snap.
func (m *batchRun) attempt1(ctx context.Context, snap *delta.Snapshot) error {
	m.progress("anti-join", 0, 0)
	// Main files in the key index answer from their exact key sets; the
	// others (added since IndexMain, or unreadable to it) are read.
	var (
		mainAdds []delta.Add
		indexed  []keyindex.File
	)
	for _, a := range snap.Files {
		if !m.mayHold(a) {
			continue
		}
		if m.index != nil {
			if f, ok := m.index.Lookup(a.Path, a.Size); ok {
				if m.keys.mayBeIn(f) {
					indexed = append(indexed, f)
				}
				continue
			}
		}
		mainAdds = append(mainAdds, a)
	}
	mainPaths, release, err := m.main.LocalPaths(ctx, mainAdds)
	if err != nil {
		return err
	}
	defer release()
	if err := checkPaths(mainPaths); err != nil {
		return err
	}
	m.res.MainFiles = len(snap.Files)
	m.res.MainFilesRead = len(mainPaths)
	m.res.MainFilesIndexed = len(indexed)
	candidates := `SELECT c.source_url, c.cert_index, c.fi, c.r, c.day FROM chosen c`
	if len(indexed) > 0 {
		n, err := m.loadPresent(ctx, indexed)
		if err != nil {
			return err
		}
		if n > 0 {
			candidates = `SELECT c.source_url, c.cert_index, c.fi, c.r, c.day FROM chosen c
			LEFT JOIN present_words p ON p.u = c.source_url AND p.w = c.cert_index::UBIGINT >> 6
			WHERE p.m IS NULL OR (p.m >> (c.cert_index::UBIGINT & 63::UBIGINT)) & 1::UBIGINT = 0::UBIGINT`
		}
	}
	newKeys := `CREATE OR REPLACE TEMP TABLE newkeys AS ` + candidates
	if len(mainPaths) > 0 {
		lo, hi := m.keys.indexHull()
		// An inner join lets DuckDB build its hash table on the smaller
		// side (the batch) and probe main, pushing the batch's key bounds
		// into the main scan; main keys are unique, so it finds each
		// present key once.
		newKeys = `CREATE OR REPLACE TEMP TABLE newkeys AS
		WITH cand AS (` + candidates + `),
		present AS (
			SELECT c.source_url, c.cert_index
			FROM read_parquet(` + sqlList(mainPaths) + `, union_by_name = true, hive_partitioning = false) mk
			JOIN cand c ON mk.source_url = c.source_url AND mk.cert_index = c.cert_index
			WHERE mk.cert_index BETWEEN ` + fmt.Sprint(lo) + ` AND ` + fmt.Sprint(hi) + `
		)
		SELECT c.source_url, c.cert_index, c.fi, c.r, c.day
		FROM cand c ANTI JOIN present p ON c.source_url = p.source_url AND c.cert_index = p.cert_index`
	}
	if _, err := m.db.ExecContext(ctx, newKeys); err != nil {
		return fmt.Errorf("anti-join against %d main files: %w", len(mainPaths), err)
	}
	var toWrite int64
	if err := m.db.QueryRowContext(ctx, "SELECT count(*) FROM newkeys").Scan(&toWrite); err != nil {
		return fmt.Errorf("count new rows: %w", err)
	}

	files, err := m.copyNewRows(ctx, toWrite)
	if err != nil {
		return err
	}
	written := files.rows
	m.progress("commit", written, toWrite)
	res, err := m.commitFiles(ctx, files, snap.Version)
	if err != nil {
		return err
	}
	if res.Skipped {
		return errAlreadyCommitted
	}
	m.res.Inserted = written
	m.res.Skipped = m.res.StagingRows - written
	m.res.MainVersion = res.Version
	m.progress("done", written, toWrite)
	m.log.DebugContext(ctx, "merged batch", "version", res.Version, "inserted", written, "skipped", m.res.Skipped, "attempt", m.attempt)
	return nil
}

// takenKeys counts the batch's new keys held by main files among adds.
// Files whose stats rule the batch's keys out are not read. A file that
// cannot be read (removed by a compaction meanwhile) counts as taking keys:
// the batch is then redone against a fresh snapshot.
func (m *batchRun) takenKeys(ctx context.Context, snap *delta.Snapshot, adds []delta.Add) (int64, error) {
	var read []delta.Add
	for _, a := range adds {
		if b := statsBox(a); b.Rows != 0 && b.mayHold(m.keys) {
			read = append(read, a)
		}
	}
	if len(read) == 0 {
		return 0, nil
	}
	paths, release, err := m.main.LocalPaths(ctx, read)
	if err != nil {
		return 1, err
	}
	defer release()
	if err := checkPaths(paths); err != nil {
		return 1, err
	}
	var n int64
	q := `SELECT count(*) FROM read_parquet(` + sqlList(paths) + `, union_by_name = true, hive_partitioning = false) w
		JOIN newkeys k ON w.source_url = k.source_url AND w.cert_index = k.cert_index`
	if err := m.db.QueryRowContext(ctx, q).Scan(&n); err != nil {
		return 1, fmt.Errorf("check %d concurrent files: %w", len(paths), err)
	}
	return n, nil
}

// addsBetween returns the add actions of main's commits in (from, to],
// read from the JSON commit files.
func addsBetween(ctx context.Context, main *lake.Table, from, to int64) ([]delta.Add, error) {
	var out []delta.Add
	for v := from + 1; v <= to; v++ {
		as, err := readCommitAdds(ctx, main.Store(), v)
		if err != nil {
			return nil, fmt.Errorf("read commit %d of %s: %w", v, main.Path(), err)
		}
		out = append(out, as...)
	}
	return out, nil
}
