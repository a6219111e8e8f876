package activities

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/certlake/certlake/internal/ctlog"
	"github.com/certlake/certlake/internal/delta"
	"github.com/certlake/certlake/internal/gaps"
	"github.com/certlake/certlake/internal/lake"
	"github.com/certlake/certlake/internal/plandir"
	"github.com/certlake/certlake/internal/planning"
	"github.com/certlake/certlake/internal/record"
)

// ResolveLogs lists the logs of a backfill (log list, custom and static logs,
// filtered) with each one's exclusive ceiling, from the live ingester's state
// file or from the log's tree size (internal/planning, as `starter gaps`
// previews it). Logs without a ceiling are skipped with a reason that names
// them.
func (b *Backfill) ResolveLogs(ctx context.Context, in ResolveLogsInput) (ResolveLogsResult, error) {
	res := ResolveLogsResult{ChunkSize: b.Defaults.ChunkSize, Window: b.Defaults.Window,
		HeartbeatTimeoutSeconds: int(b.Defaults.HeartbeatTimeout.Seconds()), FetchAttempts: b.Defaults.FetchAttempts}
	mode := cmp.Or(in.Ceiling, b.Defaults.Ceiling, planning.CeilingStateFile)
	catalog, err := b.Logs.Catalog(ctx, planning.CatalogOptions{})
	if err != nil {
		return res, toTemporal(fatal(ErrTypeLogList, err))
	}
	resolved, err := b.Logs.Resolve(ctx, catalog, planning.Request{Filter: in.Logs, Ceiling: mode},
		func(ctx context.Context, l ctlog.Log) (uint64, error) { return b.reader(l).TreeSize(ctx) })
	switch {
	case errors.Is(err, planning.ErrNoLogMatches):
		return res, toTemporal(fatal(ErrTypeUnknownLog, err))
	case errors.Is(err, planning.ErrCeilingMode):
		return res, toTemporal(fatal(ErrTypeInvalidInput, err))
	case err != nil:
		return res, toTemporal(classify(err))
	}
	for _, l := range resolved.Logs {
		res.Logs = append(res.Logs, LogTarget{URL: l.URL, Name: l.Name, Static: l.Static, Ceiling: l.Ceiling, Window: l.Window})
	}
	for _, s := range resolved.Skipped {
		res.Skipped = append(res.Skipped, SkippedLog{SourceURL: s.URL, Reason: s.Reason})
		activity.GetLogger(ctx).Warn("log skipped", "log", s.URL, "reason", s.Reason)
	}
	if in.From != nil && len(resolved.Logs) > 0 && planning.AllAtOrAbove(*in.From, resolved.Logs) {
		return res, toTemporal(fatal(ErrTypeInvalidInput, gaps.CheckFrom(*in.From, planning.Ceilings(resolved.Logs))))
	}
	return res, nil
}

// DetectGaps plans the missing ranges of the given logs over main UNION ALL
// staging (main only while staging does not exist), writes one plan file per
// log under the plan directory and returns the plan by reference.
func (b *Backfill) DetectGaps(ctx context.Context, in DetectGapsInput) (DetectGapsResult, error) {
	var res DetectGapsResult
	if in.PlanKey == "" {
		return res, toTemporal(fatalf(ErrTypeInvalidInput, "detect gaps: empty plan_key"))
	}
	if err := checkTableDir(b.Lake.MainPath, "main table path"); err != nil {
		return res, toTemporal(err)
	}
	if in.StagingPath != "" {
		if err := b.Lake.checkStaging(in.StagingPath, ErrTypeInvalidInput); err != nil {
			return res, toTemporal(err)
		}
		if err := checkTableDir(in.StagingPath, "staging path"); err != nil {
			return res, toTemporal(err)
		}
	}
	var logs []gaps.LogCeiling
	for _, l := range in.Logs {
		logs = append(logs, gaps.LogCeiling{URL: l.URL, Ceiling: l.Ceiling})
	}
	// Main's keys come from its key index, extended here with the files
	// it lacks (each read once): heartbeat meanwhile.
	hb := startHeartbeat(ctx, heartbeatInterval(ctx), res)
	d, err := planning.Detect(ctx, planning.Tables{MainPath: b.Lake.MainPath, StagingPath: in.StagingPath,
		Workers: b.Lake.DB.Threads, Logger: b.Logger, Storage: b.Lake.opener(), Scratch: b.Lake.Scratch}, logs, gaps.Options{From: in.From, IncludeFrontier: in.IncludeFrontier})
	hb.Stop()
	if err != nil {
		return res, toTemporal(classify(fmt.Errorf("detect gaps: %w", err)))
	}
	if res, err = b.writePlan(ctx, in, d.Ranges); err != nil {
		return res, toTemporal(classify(err))
	}
	st := d.Stats
	activity.GetLogger(ctx).Info("gaps detected", "logs", len(in.Logs), "ranges", res.Ranges,
		"entries", res.Entries, "main_files", st.MainFiles, "main_files_indexed", st.Indexed,
		"main_rows_read", st.MainRowsRead, "staging_files", st.StagingFiles, "plan_dir", res.PlanDir)
	return res, nil
}

// writePlan writes one plan file per log with ranges under the run's plan
// directory.
func (b *Backfill) writePlan(ctx context.Context, in DetectGapsInput, ranges []gaps.Range) (DetectGapsResult, error) {
	var res DetectGapsResult
	plans, planLoc, err := b.Lake.planStore(ctx, in.PlanKey)
	if err != nil {
		return res, err
	}
	res.PlanDir = planLoc.String()
	byLog := map[string][]gaps.Range{}
	for _, r := range ranges {
		byLog[r.SourceURL] = append(byLog[r.SourceURL], r)
	}
	for i, l := range in.Logs {
		lp := LogPlan{URL: l.URL}
		rs := byLog[l.URL]
		if len(rs) > 0 {
			name := fmt.Sprintf("log-%03d.jsonl", i)
			lp.PlanFile = planLoc.Child(name).String()
			if err := gaps.WritePlan(ctx, plans, name, rs); err != nil {
				return res, fmt.Errorf("write plan of %s: %w", l.URL, err)
			}
		}
		for _, r := range rs {
			lp.Entries += r.Len()
		}
		lp.Ranges = len(rs)
		res.Ranges += lp.Ranges
		res.Entries += lp.Entries
		res.Logs = append(res.Logs, lp)
	}
	return res, nil
}

// ReadPlan returns one page of a log's plan.
func (b *Backfill) ReadPlan(ctx context.Context, in ReadPlanInput) (ReadPlanResult, error) {
	var res ReadPlanResult
	if in.Limit <= 0 || in.Offset < 0 {
		return res, toTemporal(fatalf(ErrTypeInvalidInput, "read plan: offset %d, limit %d", in.Offset, in.Limit))
	}
	if err := b.Lake.checkPlanFile(in.PlanFile); err != nil {
		return res, toTemporal(err)
	}
	all, err := b.plan(ctx, in.PlanFile)
	if err != nil {
		return res, toTemporal(planError(err))
	}
	start := min(in.Offset, len(all))
	end := min(start+in.Limit, len(all))
	more := end < len(all)
	for _, r := range all[start:end] {
		res.Ranges = append(res.Ranges, Range{Start: r.Start, End: r.End})
	}
	res.More = more
	return res, nil
}

// plan reads a plan file, keeping the recent ones: each log's workflow pages
// through its file many times.
func (b *Backfill) plan(ctx context.Context, path string) ([]gaps.Range, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if rs, ok := b.plans[path]; ok {
		return rs, nil
	}
	s, key, err := b.Lake.opener().OpenObject(ctx, "plan_file", path)
	if err != nil {
		return nil, err
	}
	rs, err := gaps.ReadPlan(ctx, s, key)
	if err != nil {
		return nil, err
	}
	if b.plans == nil || len(b.plans) >= 32 {
		b.plans = map[string][]gaps.Range{}
	}
	b.plans[path] = rs
	return rs, nil
}

// FetchRange fetches [Start, End] of one log, parses the entries into rows
// and commits them to the table every StageBatchRows rows or FlushInterval.
//
// Exactly-once: every commit carries a Delta txn whose appId names this run
// and range and whose version is the next index to fetch. The table's txn
// version is therefore the authoritative resume point: a retry (after a
// crash, a timeout or a failed commit) starts there, so it never writes a
// row twice and never skips one, even if the last heartbeat was lost.
func (b *Backfill) FetchRange(ctx context.Context, in FetchRangeInput) (FetchRangeResult, error) {
	var res FetchRangeResult
	logger := activity.GetLogger(ctx)
	if in.End < in.Start || in.Log.URL == "" || in.RunKey == "" {
		return res, toTemporal(fatalf(ErrTypeInvalidInput, "fetch range: bad input (log %q, [%d, %d], run key %q)",
			in.Log.URL, in.Start, in.End, in.RunKey))
	}
	path, role := b.Lake.MainPath, lake.RoleMain
	if in.Staging {
		path, role = in.TablePath, lake.RoleStaging
		if err := b.Lake.checkStaging(path, ErrTypeInvalidInput); err != nil {
			return res, toTemporal(err)
		}
	}
	if err := checkTableDir(path, string(role)+" table path"); err != nil {
		return res, toTemporal(err)
	}
	// A staging table another tool wrote (no marker) is written to as is:
	// writing deletes nothing; only a merge, which retires staging, needs
	// it adopted.
	t, err := b.tables.openOrCreate(ctx, path, b.Lake.tableOptions(lake.Options{Role: role, AcceptUnmarked: role == lake.RoleStaging,
		AsDERBinary: b.Lake.AsDERBinary, CheckpointInterval: b.Lake.CheckpointInterval, Logger: b.Logger, Buffers: b.Lake.Buffers}))
	if err != nil {
		return res, toTemporal(classify(err))
	}
	appID := fetchAppID(in)
	snap, err := t.Snapshot(ctx)
	if err != nil {
		return res, toTemporal(classify(err))
	}
	next := in.Start
	if v, ok := snap.Txns[appID]; ok && uint64(v) > next {
		next = uint64(v)
	}
	if next > in.Start {
		// Earlier attempts committed [Start, next-1]; count their rows from
		// the table (a heartbeat may not have reached the server before a
		// crash), so the result counts every row of the range once.
		n, err := b.countRows(ctx, t, snap, in.Log.URL, in.Start, next-1)
		if err != nil {
			return res, toTemporal(classify(err))
		}
		res.Rows = n
	}
	if next > in.End {
		res.Entries = in.End - in.Start + 1
		return res, nil
	}
	if next > in.Start {
		logger.Info("resuming range", "log", in.Log.URL, "start", in.Start, "end", in.End, "next", next)
	}

	src := record.Source{URL: in.Log.URL, Name: in.Log.Name, Static: in.Log.Static}
	reader := b.reader(b.lookup(ctx, in.Log))
	batchRows := b.Defaults.StageBatchRows
	if batchRows <= 0 {
		batchRows = 50000
	}
	flushEvery := b.Defaults.FlushInterval
	if flushEvery <= 0 {
		flushEvery = 30 * time.Second
	}

	// A staging table's files get the table's default codecs (fast), or
	// main's with lake.compact_staging; a backfill into main always gets
	// main's.
	var wopts lake.WriterOptions
	if in.Staging && b.Lake.CompactStaging {
		wopts.Compression = lake.CompressionSpec
	}
	hb := startHeartbeat(ctx, heartbeatInterval(ctx), FetchProgress{NextIndex: next, RowsCommitted: res.Rows})
	defer hb.Stop()
	w := t.NewWriter(wopts)
	defer func() { w.Abort() }()
	committed := next // everything below is in the table
	covered := next   // everything below has been written to w (or was bad)
	pending := 0
	lastFlush := time.Now()
	flush := func() error {
		if covered == committed {
			return nil
		}
		// Compare and swap on the txn watermark: if another attempt of this
		// range (a zombie after a heartbeat timeout) moved it, stop and let
		// the retry resume from the table.
		snap, err := t.Snapshot(ctx)
		if err != nil {
			return fmt.Errorf("snapshot before commit: %w", err)
		}
		if v, ok := snap.Txns[appID]; (ok && uint64(v) != committed) || (!ok && committed != in.Start) {
			return fmt.Errorf("%w: range %s was advanced by another attempt to %d", delta.ErrConflict, appID, v)
		}
		readVersion := snap.Version
		cr, err := w.Commit(ctx, lake.CommitOptions{
			Operation:   "WRITE",
			ReadVersion: &readVersion, // commits after the CAS check reach Check
			Txn:         &delta.Txn{AppID: appID, Version: int64(covered)},
			Check: func(winning []delta.Action) error {
				for _, a := range winning {
					if a.Txn != nil && a.Txn.AppID == appID {
						return fmt.Errorf("%w: another attempt committed range %s meanwhile", delta.ErrConflict, appID)
					}
				}
				return nil
			},
		})
		if err != nil {
			return fmt.Errorf("commit [%d, %d] of %s to %s: %w", committed, covered-1, in.Log.URL, path, err)
		}
		if cr.Skipped {
			return fmt.Errorf("commit [%d, %d] of %s to %s: %w: already committed by another attempt", committed, covered-1, in.Log.URL, path, delta.ErrConflict)
		}
		res.Rows += cr.Rows
		b.metrics().RowsStaged(in.Log.URL, cr.Rows)
		committed = covered
		pending = 0
		lastFlush = time.Now()
		w = t.NewWriter(wopts)
		hb.Set(ctx, FetchProgress{NextIndex: committed, RowsCommitted: res.Rows})
		return nil
	}

	err = reader.Entries(ctx, next, in.End, func(bt ctlog.Batch) error {
		for _, e := range bt.Entries {
			row, err := b.builder.Build(e, src)
			if err != nil {
				res.addBad(e.Index, err)
				continue
			}
			if err := w.Write(row); err != nil {
				return fmt.Errorf("stage entry %d: %w", e.Index, err)
			}
			pending++
		}
		for _, bad := range bt.Bad {
			res.addBad(bad.Index, bad.Err)
		}
		b.metrics().EntriesFetched(in.Log.URL, len(bt.Entries)+len(bt.Bad))
		covered = bt.End + 1
		if pending >= batchRows || time.Since(lastFlush) >= flushEvery {
			return flush()
		}
		hb.Set(ctx, FetchProgress{NextIndex: committed, RowsCommitted: res.Rows})
		return nil
	})
	if err == nil {
		err = flush()
	} else if ctx.Err() == nil {
		// Keep what was fetched before the failure: the retry starts after it.
		if ferr := flush(); ferr != nil {
			logger.Warn("commit before retry", "log", in.Log.URL, "err", ferr)
		}
	}
	if len(res.BadSample) > 0 {
		b.metrics().BadEntries(in.Log.URL, int(res.BadEntries))
		logger.Warn("entries could not be parsed", "log", in.Log.URL, "start", in.Start, "end", in.End,
			"bad", res.BadEntries, "first_index", res.BadSample[0].Index, "first_err", res.BadSample[0].Error)
	}
	if err != nil {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		if errors.Is(err, ctlog.ErrVerification) {
			logger.Error("range failed verification", "log", in.Log.URL, "start", in.Start, "end", in.End,
				"rows", res.Rows, "err", err)
		}
		return res, toTemporal(classify(err))
	}
	res.Entries = in.End - in.Start + 1
	logger.Info("range staged", "log", in.Log.URL, "start", in.Start, "end", in.End, "rows", res.Rows, "bad", res.BadEntries)
	return res, nil
}

// countRows counts the table's rows of one log in [start, end], reading only
// the files whose stats can hold them.
func (b *Backfill) countRows(ctx context.Context, t *lake.Table, snap *delta.Snapshot, url string, start, end uint64) (int64, error) {
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
	db, err := lake.OpenDB(ctx, b.Lake.DB)
	if err != nil {
		return 0, fmt.Errorf("open duckdb: %w", err)
	}
	defer db.Close()
	var n int64
	err = db.QueryRowContext(ctx, "SELECT count(*) FROM "+keys+" WHERE source_url = ? AND cert_index BETWEEN ? AND ?",
		url, int64(start), int64(end)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count committed rows of %s [%d, %d]: %w", url, start, end, err)
	}
	return n, nil
}

// maxBadSample caps the bad entries a result carries.
const maxBadSample = 20

func (r *FetchRangeResult) addBad(index uint64, err error) {
	r.BadEntries++
	if len(r.BadSample) < maxBadSample {
		r.BadSample = append(r.BadSample, BadEntry{Index: index, Error: err.Error()})
	}
}

// fetchAppID is the Delta txn appId of one range of one run.
func fetchAppID(in FetchRangeInput) string {
	return fmt.Sprintf("certlake-fetch:%s:%s:%d-%d", in.RunKey, in.Log.URL, in.Start, in.End)
}

// catalog returns every known log, overrides applied, sorted by URL.
func (b *Backfill) catalog(ctx context.Context) ([]ctlog.Log, error) {
	return b.Logs.Catalog(ctx, planning.CatalogOptions{})
}

// lookup finds a target's catalog entry (operator, limits), so that a
// worker that did not resolve the logs itself reads with the same limits.
// The catalog is cached; a log it does not know is read with the defaults.
func (b *Backfill) lookup(ctx context.Context, t LogTarget) ctlog.Log {
	b.mu.Lock()
	stale := time.Since(b.catalogAt) > 10*time.Minute
	cached := b.cachedCatalog
	b.mu.Unlock()
	if stale {
		if logs, err := b.catalog(ctx); err == nil {
			b.mu.Lock()
			b.cachedCatalog, b.catalogAt = logs, time.Now()
			b.mu.Unlock()
			cached = logs
		}
	}
	for _, l := range cached {
		if l.URL == t.URL {
			return l
		}
	}
	return ctlog.Log{URL: t.URL, Name: t.Name, Static: t.Static, Unverified: !b.Logs.Verify}
}

// reader returns the shared reader of a log, so that its rate limit and
// issuer cache hold across all activities of this worker.
func (b *Backfill) reader(l ctlog.Log) ctlog.Reader {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.readers == nil {
		b.readers = map[string]ctlog.Reader{}
	}
	if r, ok := b.readers[l.URL]; ok {
		return r
	}
	if o, ok := b.Logs.Override(l.URL); ok {
		l = o.Apply(l)
	}
	r := ctlog.New(l, b.Logs.Client)
	b.readers[l.URL] = r
	return r
}

func (b *Backfill) metrics() Metrics {
	if b.Metrics == nil {
		return NopMetrics{}
	}
	return b.Metrics
}

// safeName turns a workflow ID into a directory name.
func safeName(s string) string { return plandir.SafeName(s) }
