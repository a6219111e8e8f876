package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/certlake/certlake/internal/config"
	"github.com/certlake/certlake/workflows"
)

// runBackfill starts BackfillWorkflow. Staging is the default target
// (--staging-path, else lake.staging_path); --to-main writes straight into
// the main table, the seed's behaviour without --staging-path (AC5.1), which
// is only safe while the live ingester is stopped.
func backfillCommand(c *cli) *cobra.Command {
	cmd, fs := newCommand("backfill", "find the lake's missing ranges and fill them into staging")
	cmd.GroupID = groupWorkflows
	keyFlag(fs, "staging-path", "lake.staging_path", "staging Delta table to fill (default lake.staging_path)")
	toMain := fs.Bool("to-main", false, "write straight into the main table instead of staging")
	from := fs.Uint64("from", 0, "historical mode: plan every missing index from N up (default: catch-up mode, only holes)")
	logs := fs.String("logs", "", "only logs whose description or URL contains one of these comma-separated substrings (case-insensitive)")
	keyFlag(fs, "ceiling", "backfill.ceiling", "where each log's upper bound comes from: state_file or tree_size (default backfill.ceiling)")
	frontier := fs.Bool("include-frontier", false, "also plan [max+1, ceiling-1] per log (only while the live ingester is stopped)")
	mergeAfter := fs.Bool("merge-after", false, "merge staging into main once every log is done")
	chunk := fs.Uint64("chunk-size", 0, "log indices per FetchRange activity (default: the worker's backfill.chunk_size)")
	window := fs.Int("window", 0, "FetchRange activities in flight per log (default: the worker's backfill.window)")
	waitFlag := fs.Bool("wait", false, "wait for the backfill to end and print its result as JSON")
	cancelOnInt := fs.Bool("cancel-on-interrupt", false, "with --wait, cancel the workflow on Ctrl-C without asking")
	progress := progressFlags(c, fs, backfillProgress)
	id := fs.String("id", "", "workflow id (default backfill-<UTC time>)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		if len(args) > 0 {
			return usageError("backfill takes no arguments, got %q", args)
		}
		cfg, err := loadConfig(fs)
		if err != nil {
			return err
		}
		if *toMain && fs.Changed("staging-path") {
			return usageError("--to-main and --staging-path exclude each other")
		}
		if *mergeAfter && *toMain {
			return usageError("--merge-after needs a staging table; drop --to-main")
		}
		in := workflows.BackfillInput{
			Logs:            *logs,
			Ceiling:         cfg.Backfill.Ceiling,
			IncludeFrontier: *frontier,
			MergeAfter:      *mergeAfter,
			ChunkSize:       *chunk,
			Window:          *window,
		}
		if !*toMain {
			if in.StagingPath, err = absPath(cfg.Lake.StagingPath); err != nil {
				return err
			}
			if in.StagingPath == "" {
				return usageError("no staging table: give --staging-path PATH (or set lake.staging_path), or --to-main")
			}
		}
		if fs.Changed("from") {
			in.From = from
		}
		wid := *id
		if wid == "" {
			wid = "backfill-" + time.Now().UTC().Format("20060102T150405Z")
		}

		return startWorkflow(ctx, c, cfg.Temporal, launch{
			verb:     "backfill",
			kind:     "backfill",
			running:  "a backfill with id " + wid,
			workflow: workflows.BackfillWorkflowName,
			opts: client.StartWorkflowOptions{
				ID:                                       wid,
				TaskQueue:                                cfg.Temporal.TaskQueue,
				WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
				WorkflowExecutionErrorWhenAlreadyStarted: true,
				StaticSummary:                            backfillSummary(in),
				StaticDetails:                            backfillDetails(in),
			},
			input:    in,
			result:   &workflows.BackfillResult{},
			wait:     *waitFlag,
			waitOpts: waitOptions{cancelOnInterrupt: *cancelOnInt, progress: progress()},
		})
	}
	return cmd
}

// backfillSummary is the one-line static summary shown in the Web UI's list.
func backfillSummary(in workflows.BackfillInput) string {
	target := "main"
	if in.StagingPath != "" {
		target = in.StagingPath
	}
	logs := in.Logs
	if logs == "" {
		logs = "all"
	}
	s := fmt.Sprintf("backfill into %s (logs: %s", target, logs)
	if in.From != nil {
		s += fmt.Sprintf(", from %d", *in.From)
	}
	return s + ")"
}

// backfillDetails is the static details markdown of the run.
func backfillDetails(in workflows.BackfillInput) string {
	var b strings.Builder
	b.WriteString("| setting | value |\n|---|---|\n")
	row := func(k, v string) { fmt.Fprintf(&b, "| %s | %s |\n", k, v) }
	if in.StagingPath != "" {
		row("target", "staging `"+in.StagingPath+"`")
	} else {
		row("target", "main table")
	}
	mode := "catch-up (holes inside what the lake has)"
	if in.From != nil {
		mode = fmt.Sprintf("historical from %d", *in.From)
	}
	row("mode", mode)
	row("logs", orDefault(in.Logs, "all"))
	row("ceiling", orDefault(in.Ceiling, config.CeilingStateFile))
	row("include frontier", fmt.Sprint(in.IncludeFrontier))
	row("merge after", fmt.Sprint(in.MergeAfter))
	return b.String()
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
