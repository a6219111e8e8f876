package activities

import (
	"cmp"
	"context"
	"errors"
	"fmt"

	"go.temporal.io/sdk/activity"

	"github.com/certlake/certlake/internal/ctlog"
	"github.com/certlake/certlake/internal/gaps"
	"github.com/certlake/certlake/internal/lake"
	"github.com/certlake/certlake/internal/plandir"
	"github.com/certlake/certlake/internal/planning"
	"github.com/certlake/certlake/internal/record"
	"github.com/certlake/certlake/internal/stage"
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
	catalog, err := b.Logs.List(ctx, ctlog.CatalogOptions{})
	if err != nil {
		return res, toTemporal(fatal(ErrTypeLogList, err))
	}
	resolved, err := b.Logs.Resolve(ctx, catalog, planning.Request{Filter: in.Logs, Ceiling: mode},
		func(ctx context.Context, l ctlog.Log) (uint64, error) { return b.Logs.Reader(l).TreeSize(ctx) })
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

// FetchRange stages [Start, End] of one log into the main or a staging
// table, exactly once across retries: the engine is internal/stage (its
// package comment is the contract); this adapter checks the input, opens
// the table, heartbeats the stage's progress and classifies its errors.
func (b *Backfill) FetchRange(ctx context.Context, in FetchRangeInput) (FetchRangeResult, error) {
	if in.End < in.Start || in.Log.URL == "" || in.RunKey == "" {
		return FetchRangeResult{}, toTemporal(fatalf(ErrTypeInvalidInput, "fetch range: bad input (log %q, [%d, %d], run key %q)",
			in.Log.URL, in.Start, in.End, in.RunKey))
	}
	t, err := b.fetchTable(ctx, in)
	if err != nil {
		return FetchRangeResult{}, toTemporal(err)
	}
	var hb *heartbeater
	opts := stage.Options{BatchRows: b.Defaults.StageBatchRows, FlushInterval: b.Defaults.FlushInterval,
		DB: b.Lake.DB, Builder: &b.builder, Metrics: b.metrics(), Logger: activity.GetLogger(ctx),
		Progress: func(p stage.Progress) {
			fp := FetchProgress{NextIndex: p.NextIndex, RowsCommitted: p.RowsCommitted}
			if hb == nil {
				hb = startHeartbeat(ctx, heartbeatInterval(ctx), fp)
				return
			}
			hb.Set(ctx, fp)
		}}
	// A staging table's files get the table's default codecs (fast), or
	// main's with lake.compact_staging; a backfill into main always gets
	// main's.
	if in.Staging && b.Lake.CompactStaging {
		opts.Writer.Compression = lake.CompressionSpec
	}
	rg := stage.Range{AppID: stage.AppID(in.RunKey, in.Log.URL, in.Start, in.End), Start: in.Start, End: in.End,
		Source: record.Source{URL: in.Log.URL, Name: in.Log.Name, Static: in.Log.Static}}
	sr, err := stage.Run(ctx, t, b.Logs.Reader(b.lookup(ctx, in.Log)), rg, opts)
	if hb != nil {
		hb.Stop()
	}
	res := FetchRangeResult{Rows: sr.Rows, Entries: sr.Entries, BadEntries: sr.BadEntries}
	for _, bad := range sr.BadSample {
		res.BadSample = append(res.BadSample, BadEntry{Index: bad.Index, Error: bad.Err.Error()})
	}
	if err != nil && ctx.Err() == nil {
		err = toTemporal(classify(err))
	}
	return res, err
}

// fetchTable checks and opens (or creates) the table a FetchRange writes.
func (b *Backfill) fetchTable(ctx context.Context, in FetchRangeInput) (*lake.Table, error) {
	path, role := b.Lake.MainPath, lake.RoleMain
	if in.Staging {
		path, role = in.TablePath, lake.RoleStaging
		if err := b.Lake.checkStaging(path, ErrTypeInvalidInput); err != nil {
			return nil, err
		}
	}
	if err := checkTableDir(path, string(role)+" table path"); err != nil {
		return nil, err
	}
	// A staging table another tool wrote (no marker) is written to as is:
	// writing deletes nothing; only a merge, which retires staging, needs
	// it adopted.
	t, err := b.tables.openOrCreate(ctx, path, b.Lake.tableOptions(lake.Options{Role: role, AcceptUnmarked: role == lake.RoleStaging,
		AsDERBinary: b.Lake.AsDERBinary, CheckpointInterval: b.Lake.CheckpointInterval, Logger: b.Logger, Buffers: b.Lake.Buffers}))
	if err != nil {
		return nil, classify(err)
	}
	return t, nil
}

// lookup finds a target's catalog entry (operator, limits), so that a
// worker that did not resolve the logs itself reads with the same limits;
// a log the catalog does not know is read with the defaults.
func (b *Backfill) lookup(ctx context.Context, t LogTarget) ctlog.Log {
	if l, ok := b.Logs.Lookup(ctx, t.URL); ok {
		return l
	}
	return b.Logs.Tune(ctlog.Log{URL: t.URL, Name: t.Name, Static: t.Static})
}

func (b *Backfill) metrics() Metrics {
	if b.Metrics == nil {
		return NopMetrics{}
	}
	return b.Metrics
}

// safeName turns a workflow ID into a directory name.
func safeName(s string) string { return plandir.SafeName(s) }
