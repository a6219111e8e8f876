package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/certlake/certlake/activities"
	"github.com/certlake/certlake/e2e/devserver"
	"github.com/certlake/certlake/internal/config"
	"github.com/certlake/certlake/workflows"
)

// temporalItem is item 4: the same historical backfill into staging, through
// Temporal and directly.
func (b *bench) temporalItem(ctx context.Context) error {
	if _, err := devserver.CLI(); err != nil {
		b.table.add(row{what: "orchestration overhead", certlake: "skipped", result: "skipped"})
		b.note("orchestration overhead not measured: %v", err)
		return nil
	}
	per := b.size.temporalN / b.size.temporalLog
	var logs []*servedLog
	defer func() {
		for _, l := range logs {
			l.stop()
		}
	}()
	t0 := time.Now()
	for i := range b.size.temporalLog {
		sl, err := b.startLogChild(ctx, "static", fmt.Sprintf("backfill%d", i), per)
		if err != nil {
			return err
		}
		logs = append(logs, sl)
	}
	total := uint64(per * len(logs))
	fmt.Fprintf(os.Stderr, "bench: %d static logs with %d entries each ready in %v\n", len(logs), per, time.Since(t0).Round(time.Second))
	runs := filepath.Join(b.dir, "runs", "temporal")
	os.RemoveAll(runs)
	defer os.RemoveAll(runs)

	// Direct: the fetch/stage code without Temporal.
	var targets []target
	for _, l := range logs {
		targets = append(targets, target{l.log, 0, l.n - 1})
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := devserver.Start(ctx, devserver.Options{})
	if err != nil {
		return err
	}
	defer srv.Stop()
	c := srv.Client()
	queue := fmt.Sprintf("certlake-bench-%d", os.Getpid())
	cfg := config.Defaults()
	cfg.Temporal.TaskQueue = queue
	cfg.Lake.MainPath = filepath.Join(runs, "main") // absent: every log is planned whole
	cfg.Lake.PlanDir = filepath.Join(runs, "plans")
	cfg.CT.LogListURL = ""
	cfg.CT.StateFile = ""
	cfg.CT.RateLimit = -1
	cfg.CT.Concurrency = fetchConfig().DefaultConcurrency
	cfg.CT.BackoffInitial = 50 * time.Millisecond
	cfg.CT.BackoffMax = time.Second
	for _, l := range logs {
		cfg.CT.StaticLogs = append(cfg.CT.StaticLogs, config.Log{Name: l.log.Name, URL: l.log.URL,
			Key: base64.StdEncoding.EncodeToString(l.log.Key), Origin: l.log.Origin})
	}
	cfg.Backfill.ChunkSize = defaultBackfill.chunk
	cfg.Backfill.Window = defaultBackfill.window
	cfg.Backfill.StageBatchRows = defaultBackfill.batchRows
	w := worker.New(c, queue, worker.Options{})
	ba, ma := activities.New(&cfg, quiet, nil, nil)
	w.RegisterWorkflowWithOptions(workflows.BackfillWorkflow, workflow.RegisterOptions{Name: workflows.BackfillWorkflowName})
	w.RegisterWorkflowWithOptions(workflows.LogBackfillWorkflow, workflow.RegisterOptions{Name: workflows.LogBackfillWorkflowName})
	w.RegisterWorkflowWithOptions(workflows.MergeWorkflow, workflow.RegisterOptions{Name: workflows.MergeWorkflowName})
	w.RegisterActivity(ba)
	w.RegisterActivity(ma)
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	defer w.Stop()

	// Direct and Temporal runs alternate, b.size.temporalRuns of each, and
	// the medians are compared: a single pair moved the overhead between
	// +4% and +16% on this shared machine.
	var directs, temporals []time.Duration
	var events, runsN int
	for i := range b.size.temporalRuns {
		directPath := filepath.Join(runs, fmt.Sprintf("staging-direct-%d", i))
		t0 := time.Now()
		if _, err := directBackfill(ctx, b.bufs, directPath, targets, defaultBackfill); err != nil {
			return fmt.Errorf("direct backfill: %w", err)
		}
		directs = append(directs, time.Since(t0))
		if err := checkStaged(ctx, directPath, total); err != nil {
			return err
		}
		os.RemoveAll(directPath)

		stagingPath := filepath.Join(runs, fmt.Sprintf("staging-temporal-%d", i))
		from := uint64(0)
		id := fmt.Sprintf("bench-backfill-%d", time.Now().UnixNano())
		t0 = time.Now()
		run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: queue},
			workflows.BackfillWorkflowName, workflows.BackfillInput{StagingPath: stagingPath, From: &from, Ceiling: workflows.CeilingTreeSize})
		if err != nil {
			return fmt.Errorf("start backfill: %w", err)
		}
		var res workflows.BackfillResult
		if err := run.Get(ctx, &res); err != nil {
			return fmt.Errorf("backfill workflow: %w", err)
		}
		temporals = append(temporals, time.Since(t0))
		if res.RecordsWritten != int64(total) || res.LogsFailed != 0 {
			return fmt.Errorf("%w: backfill workflow wrote %d records (want %d), %d logs failed", errAssertion, res.RecordsWritten, total, res.LogsFailed)
		}
		if err := checkStaged(ctx, stagingPath, total); err != nil {
			return err
		}
		os.RemoveAll(stagingPath)
		if events, runsN, err = historyEvents(ctx, c, id, run.GetRunID()); err != nil {
			return fmt.Errorf("history: %w", err)
		}
	}
	direct, viaTemporal := median(directs), median(temporals)
	overhead := viaTemporal.Seconds()/direct.Seconds() - 1
	b.table.add(row{
		what: fmt.Sprintf("backfill %s entries from %d static logs: Temporal vs direct (%s)",
			count(int64(total)), len(logs), runsNote(directs, temporals)),
		certlake: secs(viaTemporal), reference: secs(direct) + " direct",
		ratio: fmt.Sprintf("%+.1f%%", 100*overhead), target: "overhead <= 10%", result: passIf(overhead <= 0.10),
	})
	b.table.add(row{
		what:      "backfill: entries/s through Temporal",
		certlake:  fmt.Sprintf("%.0f/s", float64(total)/viaTemporal.Seconds()),
		reference: fmt.Sprintf("%.0f/s direct", float64(total)/direct.Seconds()),
	})
	b.table.add(row{
		what:     fmt.Sprintf("backfill: history events per million entries (%d events, %d runs)", events, runsN),
		certlake: fmt.Sprintf("%.0f", float64(events)/float64(total)*1e6),
	})
	return nil
}

// historyEvents sums the history lengths of a backfill: the parent run and
// every run of every child (following continue-as-new).
func historyEvents(ctx context.Context, c client.Client, id, runID string) (events, runs int, err error) {
	type exec struct{ id, run string }
	queue := []exec{{id, runID}}
	for len(queue) > 0 {
		e := queue[0]
		queue = queue[1:]
		runs++
		it := c.GetWorkflowHistory(ctx, e.id, e.run, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				return events, runs, fmt.Errorf("history of %s/%s: %w", e.id, e.run, err)
			}
			events++
			if a := ev.GetChildWorkflowExecutionStartedEventAttributes(); a != nil {
				queue = append(queue, exec{a.GetWorkflowExecution().GetWorkflowId(), a.GetWorkflowExecution().GetRunId()})
			}
			if a := ev.GetWorkflowExecutionContinuedAsNewEventAttributes(); a != nil {
				queue = append(queue, exec{e.id, a.GetNewExecutionRunId()})
			}
		}
	}
	return events, runs, nil
}

// median returns the middle duration (the mean of the two middle ones for
// an even count).
func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// spread renders the range of durations, "8.1-9.4 s".
func spread(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	return fmt.Sprintf("%.1f-%.1f s", slices.Min(ds).Seconds(), slices.Max(ds).Seconds())
}

// runsNote says how the Temporal and direct times were taken.
func runsNote(directs, temporals []time.Duration) string {
	if len(directs) == 1 {
		return "one run each"
	}
	return fmt.Sprintf("median of %d alternating runs each; Temporal %s, direct %s", len(directs), spread(temporals), spread(directs))
}
