package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/certlake/certlake/workflows"
)

// errMergeNeedsStaging is the seed's message for a merge without a staging
// table (AC4.5, HV4), printed as "Error: merge requires --staging-path <PATH>".
var errMergeNeedsStaging = errors.New("merge requires --staging-path <PATH>")

// runMerge starts MergeWorkflow for one staging table. The staging path is
// never taken from the config: a merge retires staging, so it must be named.
func mergeCommand(c *cli) *cobra.Command {
	cmd, fs := newCommand("merge", "merge a staging table into the main table")
	cmd.GroupID = groupWorkflows
	staging := fs.String("staging-path", "", "staging Delta table to merge into the main table (required)")
	waitFlag := fs.Bool("wait", false, "wait for the merge to end and print its result as JSON")
	cancelOnInt := fs.Bool("cancel-on-interrupt", false, "with --wait, cancel the workflow on Ctrl-C without asking")
	progress := progressFlags(c, fs, mergeProgress)
	batchRows := fs.Int64("batch-rows", 0, "staging rows per MergeBatch activity (default: the worker's merge.batch_rows)")
	window := fs.Int("window", 0, "MergeBatch activities in flight (default: the worker's merge.window)")
	adopt := fs.Bool("adopt-staging", false, "merge a staging table without certlake's marker (certstream-server-rust --staging-path): the worker checks it is not main, then marks it")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		if len(args) > 0 {
			return usageError("merge takes no arguments, got %q", args)
		}
		if *staging == "" {
			return errMergeNeedsStaging
		}
		cfg, err := loadConfig(fs)
		if err != nil {
			return err
		}
		path, id, err := mergeTarget(*staging)
		if err != nil {
			return err
		}
		in := workflows.MergeInput{StagingPath: path, BatchRows: *batchRows, Window: *window, AdoptStaging: *adopt}

		return startWorkflow(ctx, c, cfg.Temporal, launch{
			verb:     "merge",
			kind:     "merge of " + path,
			running:  "a merge of " + path,
			workflow: workflows.MergeWorkflowName,
			opts: client.StartWorkflowOptions{
				ID:        id,
				TaskQueue: cfg.Temporal.TaskQueue,
				// One merge per staging table: a second start while one runs is
				// refused, a later one is a new run.
				WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
				WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
				WorkflowExecutionErrorWhenAlreadyStarted: true,
				StaticSummary:                            "merge " + path + " into main",
				StaticDetails:                            mergeDetails(path, id),
			},
			input:    in,
			result:   &workflows.MergeResult{},
			wait:     *waitFlag,
			waitOpts: waitOptions{cancelOnInterrupt: *cancelOnInt, progress: progress()},
		})
	}
	return cmd
}

// mergeDetails is the static details markdown shown on the run's page.
func mergeDetails(staging, id string) string {
	return fmt.Sprintf("Merge of staging table `%s` into the main table (the worker's `lake.main_path`).\n\n"+
		"Workflow id `%s` is derived from the staging path: one merge per staging table at a time. "+
		"Staging is retired only when every batch succeeded.", staging, id)
}
