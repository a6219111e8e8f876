// Package stage fetches one range of a CT log and stages its entries into a
// Delta table, exactly once: this is where a backfill range is fetched,
// turned into rows and committed.
//
// The contract of [Run]:
//
//   - Every commit carries a Delta txn whose appId ([Range.AppID]) names the
//     run and the range, and whose version is the next index to fetch. The
//     table's txn version is therefore the authoritative resume point: a
//     retry (after a crash, a timeout or a failed commit) starts there, so it
//     never writes a row twice and never skips one, even if the caller's last
//     progress report was lost.
//   - Rows are committed every [Options.BatchRows] rows or
//     [Options.FlushInterval], whichever comes first, and once at the end.
//   - Before each commit the txn watermark is compared with what this
//     attempt last committed (compare and swap); the commit itself checks
//     the winning commits for the same appId. If another attempt of the
//     range (a zombie after a heartbeat timeout) moved it, Run stops with
//     [delta.ErrConflict] and the retry resumes from the table.
//   - A failure while fetching keeps what was fetched before it (one last
//     commit), unless ctx is done.
//   - [Result.Rows] counts every row of the range once across attempts: rows
//     committed by earlier attempts are counted from the table (DuckDB).
//   - Entries that cannot be parsed are skipped, counted and sampled in the
//     Result; they never stop the range.
package stage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/certlake/certlake/internal/config"
	"github.com/certlake/certlake/internal/ctlog"
	"github.com/certlake/certlake/internal/delta"
	"github.com/certlake/certlake/internal/lake"
	"github.com/certlake/certlake/internal/record"
)

// Range is one range of one log to stage.
type Range struct {
	// AppID is the Delta txn appId of the range: the same for every attempt
	// of this range in this run, different for any other range or run.
	// See [AppID].
	AppID  string
	Source record.Source // the identity rows carry (URL, name, kind)
	Start  uint64        // first index, inclusive
	End    uint64        // last index, inclusive
}

// AppID is the Delta txn appId of range [start, end] of log in the run
// runKey.
func AppID(runKey, log string, start, end uint64) string {
	return fmt.Sprintf("certlake-fetch:%s:%s:%d-%d", runKey, log, start, end)
}

// Options tune [Run]. Zero fields take the documented defaults.
type Options struct {
	// BatchRows is the number of rows per commit. Default: the
	// configuration's backfill.stage_batch_rows default.
	BatchRows int
	// FlushInterval is the longest time between commits while entries
	// arrive. Default: the configuration's backfill.flush_interval default.
	FlushInterval time.Duration
	// Writer sets the codecs of the files written.
	Writer lake.WriterOptions
	// DB bounds the DuckDB that counts rows committed by earlier attempts.
	DB lake.DBOptions
	// Builder turns entries into rows; share one to share its chain cache.
	// Default: a Builder of the call's own.
	Builder *record.Builder
	// Progress, if set, is called once before fetching, after each commit
	// and after each batch of entries: everything below NextIndex is in the
	// table. It is not called when the range was already complete.
	Progress func(Progress)
	// Metrics, if set, counts entries, rows and bad entries.
	Metrics Metrics
	// Logger receives the resume, commit-before-retry, bad-entry,
	// verification and done lines. Default: none.
	Logger Logger
}

// Progress is what is committed of a range so far.
type Progress struct {
	NextIndex     uint64 // everything below is in the table
	RowsCommitted int64  // rows of the range in the table
}

// Metrics is told what Run stages. log is the log's URL.
type Metrics interface {
	EntriesFetched(log string, n int)
	RowsStaged(log string, n int64)
	BadEntries(log string, n int)
}

// Logger is the part of a structured logger Run uses (*slog.Logger and
// Temporal's activity logger both have it).
type Logger interface {
	Info(msg string, keyvals ...any)
	Warn(msg string, keyvals ...any)
	Error(msg string, keyvals ...any)
}

// MaxBadSample caps the bad entries a Result carries.
const MaxBadSample = 20

// BadEntry is an entry that could not be parsed into a row.
type BadEntry struct {
	Index uint64
	Err   error
}

// Result reports a staged range, also when Run fails: Rows then counts
// what is committed so far.
type Result struct {
	Rows       int64      // rows of the range in the table, from all attempts
	Entries    uint64     // indices covered (rows + bad); set only on success
	BadEntries int64      // entries of this attempt that could not be parsed
	BadSample  []BadEntry // the first MaxBadSample of them
}

func (r *Result) addBad(index uint64, err error) {
	r.BadEntries++
	if len(r.BadSample) < MaxBadSample {
		r.BadSample = append(r.BadSample, BadEntry{Index: index, Err: err})
	}
}

// Run fetches rg from reader and stages it into t under the contract of the
// package comment. Errors are returned as they are (wrapped with context):
// the caller decides what is retried.
func Run(ctx context.Context, t *lake.Table, reader ctlog.Reader, rg Range, opts Options) (Result, error) {
	s := &stager{t: t, rg: rg, opts: opts.withDefaults()}
	next, done, err := s.resume(ctx)
	if err != nil || done {
		return s.res, err
	}
	s.progress(next)
	err = s.fetch(ctx, reader, next)
	return s.res, s.finish(ctx, err)
}

func (o Options) withDefaults() Options {
	def := config.Defaults().Backfill
	if o.BatchRows <= 0 {
		o.BatchRows = def.StageBatchRows
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = def.FlushInterval
	}
	if o.Builder == nil {
		o.Builder = &record.Builder{}
	}
	if o.Metrics == nil {
		o.Metrics = nopMetrics{}
	}
	if o.Logger == nil {
		o.Logger = nopLogger{}
	}
	return o
}

// stager is the state of one Run.
type stager struct {
	t    *lake.Table
	rg   Range
	opts Options
	res  Result

	w         *lake.Writer
	committed uint64 // everything below is in the table
	covered   uint64 // everything below has been written to w (or was bad)
	pending   int    // rows in w
	lastFlush time.Time
}

// resume finds where this attempt starts: the range's txn version in the
// table. It counts the rows earlier attempts committed, and reports done
// when they committed the whole range.
func (s *stager) resume(ctx context.Context) (next uint64, done bool, err error) {
	snap, err := s.t.Snapshot(ctx)
	if err != nil {
		return 0, false, err
	}
	next = s.rg.Start
	if v, ok := snap.Txns[s.rg.AppID]; ok && uint64(v) > next {
		next = uint64(v)
	}
	if next > s.rg.Start {
		// Earlier attempts committed [Start, next-1]; count their rows from
		// the table (a heartbeat may not have reached the server before a
		// crash), so the result counts every row of the range once.
		n, err := countRows(ctx, s.t, snap, s.opts.DB, s.rg.Source.URL, s.rg.Start, next-1)
		if err != nil {
			return 0, false, err
		}
		s.res.Rows = n
	}
	if next > s.rg.End {
		s.res.Entries = s.rg.End - s.rg.Start + 1
		return next, true, nil
	}
	if next > s.rg.Start {
		s.opts.Logger.Info("resuming range", "log", s.rg.Source.URL, "start", s.rg.Start, "end", s.rg.End, "next", next)
	}
	return next, false, nil
}

func (s *stager) progress(next uint64) {
	if s.opts.Progress != nil {
		s.opts.Progress(Progress{NextIndex: next, RowsCommitted: s.res.Rows})
	}
}

// fetch reads [next, End] and writes its rows, committing on the way.
func (s *stager) fetch(ctx context.Context, reader ctlog.Reader, next uint64) error {
	s.w = s.t.NewWriter(s.opts.Writer)
	defer func() { s.w.Abort() }()
	s.committed, s.covered, s.lastFlush = next, next, time.Now()
	err := reader.Entries(ctx, next, s.rg.End, func(bt ctlog.Batch) error {
		for _, e := range bt.Entries {
			row, err := s.opts.Builder.Build(e, s.rg.Source)
			if err != nil {
				s.res.addBad(e.Index, err)
				continue
			}
			if err := s.w.Write(row); err != nil {
				return fmt.Errorf("stage entry %d: %w", e.Index, err)
			}
			s.pending++
		}
		for _, bad := range bt.Bad {
			s.res.addBad(bad.Index, bad.Err)
		}
		s.opts.Metrics.EntriesFetched(s.rg.Source.URL, len(bt.Entries)+len(bt.Bad))
		s.covered = bt.End + 1
		if s.pending >= s.opts.BatchRows || time.Since(s.lastFlush) >= s.opts.FlushInterval {
			return s.flush(ctx)
		}
		s.progress(s.committed)
		return nil
	})
	if err == nil {
		return s.flush(ctx)
	}
	if ctx.Err() == nil {
		// Keep what was fetched before the failure: the retry starts after it.
		if ferr := s.flush(ctx); ferr != nil {
			s.opts.Logger.Warn("commit before retry", "log", s.rg.Source.URL, "err", ferr)
		}
	}
	return err
}

// flush commits the rows written since the last commit, after checking that
// no other attempt moved the range's watermark.
func (s *stager) flush(ctx context.Context) error {
	if s.covered == s.committed {
		return nil
	}
	appID := s.rg.AppID
	// Compare and swap on the txn watermark: if another attempt of this
	// range (a zombie after a heartbeat timeout) moved it, stop and let
	// the retry resume from the table.
	snap, err := s.t.Snapshot(ctx)
	if err != nil {
		return fmt.Errorf("snapshot before commit: %w", err)
	}
	if v, ok := snap.Txns[appID]; (ok && uint64(v) != s.committed) || (!ok && s.committed != s.rg.Start) {
		return fmt.Errorf("%w: range %s was advanced by another attempt to %d", delta.ErrConflict, appID, v)
	}
	readVersion := snap.Version
	cr, err := s.w.Commit(ctx, lake.CommitOptions{
		Operation:   "WRITE",
		ReadVersion: &readVersion, // commits after the CAS check reach Check
		Txn:         &delta.Txn{AppID: appID, Version: int64(s.covered)},
		Check: func(winning []delta.Action) error {
			for _, a := range winning {
				if a.Txn != nil && a.Txn.AppID == appID {
					return fmt.Errorf("%w: another attempt committed range %s meanwhile", delta.ErrConflict, appID)
				}
			}
			return nil
		},
	})
	what := fmt.Sprintf("commit [%d, %d] of %s to %s", s.committed, s.covered-1, s.rg.Source.URL, s.t.Path())
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if cr.Skipped {
		return fmt.Errorf("%s: %w: already committed by another attempt", what, delta.ErrConflict)
	}
	s.res.Rows += cr.Rows
	s.opts.Metrics.RowsStaged(s.rg.Source.URL, cr.Rows)
	s.committed, s.pending, s.lastFlush = s.covered, 0, time.Now()
	s.w = s.t.NewWriter(s.opts.Writer)
	s.progress(s.committed)
	return nil
}

// finish reports bad entries and the outcome of the fetch.
func (s *stager) finish(ctx context.Context, err error) error {
	rg, log := s.rg, s.opts.Logger
	if len(s.res.BadSample) > 0 {
		s.opts.Metrics.BadEntries(rg.Source.URL, int(s.res.BadEntries))
		log.Warn("entries could not be parsed", "log", rg.Source.URL, "start", rg.Start, "end", rg.End,
			"bad", s.res.BadEntries, "first_index", s.res.BadSample[0].Index, "first_err", s.res.BadSample[0].Err.Error())
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, ctlog.ErrVerification) {
			log.Error("range failed verification", "log", rg.Source.URL, "start", rg.Start, "end", rg.End,
				"rows", s.res.Rows, "err", err)
		}
		return err
	}
	s.res.Entries = rg.End - rg.Start + 1
	log.Info("range staged", "log", rg.Source.URL, "start", rg.Start, "end", rg.End, "rows", s.res.Rows, "bad", s.res.BadEntries)
	return nil
}

// countRows counts the table's rows of one log in [start, end], reading only
// the files whose stats can hold them.
func countRows(ctx context.Context, t *lake.Table, snap *delta.Snapshot, db lake.DBOptions, url string, start, end uint64) (int64, error) {
	files := lake.Prune(t.Files(snap), url, start, end)
	if len(files) == 0 {
		return 0, nil
	}
	release, err := t.Localize(ctx, files)
	if err != nil {
		return 0, err
	}
	defer release()
	keys, err := lake.KeysSQL(files)
	if err != nil {
		return 0, err
	}
	conn, err := lake.OpenDB(ctx, db)
	if err != nil {
		return 0, fmt.Errorf("open duckdb: %w", err)
	}
	defer conn.Close()
	var n int64
	err = conn.QueryRowContext(ctx, "SELECT count(*) FROM "+keys+" WHERE source_url = ? AND cert_index BETWEEN ? AND ?",
		url, int64(start), int64(end)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count committed rows of %s [%d, %d]: %w", url, start, end, err)
	}
	return n, nil
}

type nopMetrics struct{}

func (nopMetrics) EntriesFetched(string, int) {}
func (nopMetrics) RowsStaged(string, int64)   {}
func (nopMetrics) BadEntries(string, int)     {}

type nopLogger struct{}

func (nopLogger) Info(string, ...any)  {}
func (nopLogger) Warn(string, ...any)  {}
func (nopLogger) Error(string, ...any) {}
