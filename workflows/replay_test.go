package workflows

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// Every recorded history (testdata/histories, written by the e2e test
// TestRecordWorkflowHistories against a real dev server and worker) must
// replay on the current workflow code: a change that would break runs in
// flight at deploy time fails here instead. Such a change goes behind
// workflow.GetVersion (README, "Deploying a new worker version").
func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob("testdata/histories/*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 8 {
		t.Fatalf("%d recorded histories, want the 8 of TestRecordWorkflowHistories", len(files))
	}
	logger := sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler))
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(BackfillWorkflow, workflow.RegisterOptions{Name: BackfillWorkflowName})
			r.RegisterWorkflowWithOptions(LogBackfillWorkflow, workflow.RegisterOptions{Name: LogBackfillWorkflowName})
			r.RegisterWorkflowWithOptions(MergeWorkflow, workflow.RegisterOptions{Name: MergeWorkflowName})
			h, err := client.HistoryFromJSON(mustOpen(t, f), client.HistoryJSONOptions{})
			if err != nil {
				t.Fatal(err)
			}
			// The recorded run's own id: MergeWorkflow's commands depend on
			// it (a run under another id merges as a child).
			started := h.Events[0].GetWorkflowExecutionStartedEventAttributes()
			exec := workflow.Execution{ID: started.GetWorkflowId(), RunID: started.GetOriginalExecutionRunId()}
			if exec.ID == "" {
				t.Fatalf("%s: no workflow id in the started event", f)
			}
			if err := r.ReplayWorkflowHistoryWithOptions(logger, h, worker.ReplayWorkflowHistoryOptions{OriginalExecution: exec}); err != nil {
				t.Fatalf("replay %s: %v", f, err)
			}
		})
	}
}

func mustOpen(t *testing.T, path string) *bytes.Reader {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(b)
}
