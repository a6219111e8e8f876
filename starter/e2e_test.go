package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/certlake/certlake/activities"
	"github.com/certlake/certlake/e2e/devserver"
	"github.com/certlake/certlake/internal/config"
	"github.com/certlake/certlake/workflows"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// devServer starts the Temporal CLI's dev server for the test, or skips
// when the CLI is not installed (.ci/run installs it).
func devServer(t *testing.T) *testsuite.DevServer {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a Temporal dev server")
	}
	srv, err := devserver.Start(t.Context(), devserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })
	return srv
}

// blockingMerge stands in for MergeWorkflow where the test needs a run that
// lasts until it is canceled: it ends Canceled, as the real one does.
func blockingMerge(ctx workflow.Context, in workflows.MergeInput) (workflows.MergeResult, error) {
	err := workflow.Await(ctx, func() bool { return false })
	return workflows.MergeResult{}, err
}

// TestStarterAgainstTemporal runs merge, backfill and schedule against a
// real dev server: the real workflows and activities on one task queue, a
// merge that waits for cancellation on another.
func TestStarterAgainstTemporal(t *testing.T) {
	srv := devServer(t)
	c := srv.Client()
	dir := t.TempDir()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	// The real worker, configured as the worker binary would be.
	realCfg := fmt.Sprintf("temporal:\n  address: %s\n  task_queue: e2e-real\nlake:\n  main_path: %s\nct:\n  state_file: %s\n  log_list_url: %s\n",
		srv.FrontendHostPort(), filepath.Join(dir, "main"), filepath.Join(dir, "state.json"), filepath.Join(dir, "no-list.json"))
	cfgPath := filepath.Join(dir, "real.yaml")
	if err := os.WriteFile(cfgPath, []byte(realCfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, m := activities.New(cfg, quiet, nil, nil)
	wr := worker.New(c, "e2e-real", worker.Options{})
	wr.RegisterWorkflowWithOptions(workflows.BackfillWorkflow, workflow.RegisterOptions{Name: workflows.BackfillWorkflowName})
	wr.RegisterWorkflowWithOptions(workflows.LogBackfillWorkflow, workflow.RegisterOptions{Name: workflows.LogBackfillWorkflowName})
	wr.RegisterWorkflowWithOptions(workflows.MergeWorkflow, workflow.RegisterOptions{Name: workflows.MergeWorkflowName})
	wr.RegisterActivity(b)
	wr.RegisterActivity(m)
	if err := wr.Start(); err != nil {
		t.Fatal(err)
	}
	defer wr.Stop()

	wb := worker.New(c, "e2e-block", worker.Options{})
	wb.RegisterWorkflowWithOptions(blockingMerge, workflow.RegisterOptions{Name: workflows.MergeWorkflowName})
	if err := wb.Start(); err != nil {
		t.Fatal(err)
	}
	defer wb.Stop()

	blockCfg := fmt.Sprintf("temporal:\n  address: %s\n  task_queue: e2e-block\n", srv.FrontendHostPort())
	blockPath := filepath.Join(dir, "block.yaml")
	if err := os.WriteFile(blockPath, []byte(blockCfg), 0o644); err != nil {
		t.Fatal(err)
	}
	workdir(t, realCfg) // ./certlake.yaml: the real queue

	t.Run("MergeWaitEmptyStaging", func(t *testing.T) {
		staging := filepath.Join(dir, "staging-none")
		r := runStarter(t, "merge", "--staging-path", staging, "--wait")
		if r.code != 0 {
			t.Fatalf("merge --wait = %d, %q", r.code, r.stderr)
		}
		var res workflows.MergeResult
		if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
			t.Fatalf("merge --wait stdout %q: %v", r.stdout, err)
		}
		if res.TotalStagingRows != 0 || res.TotalInserted != 0 {
			t.Errorf("merge of a missing staging = %+v, want zero counts (AC4.1)", res)
		}
		id, _ := mergeWorkflowID(staging)
		for _, want := range []string{"workflow id: " + id, "http://localhost:8233/namespaces/default/workflows/" + id + "/"} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("merge --wait stderr lacks %q:\n%s", want, r.stderr)
			}
		}
	})

	t.Run("SecondMergeOfOneStagingRefused", func(t *testing.T) {
		staging := filepath.Join(dir, "staging-busy")
		r := runStarter(t, "merge", "--config", blockPath, "--staging-path", staging)
		if r.code != 0 || !strings.Contains(r.stdout, "run id:") {
			t.Fatalf("first merge = %d, %q, %q", r.code, r.stdout, r.stderr)
		}
		r2 := runStarter(t, "merge", "--config", blockPath, "--staging-path", staging)
		if r2.code != 1 || !strings.Contains(r2.stderr, "already running") {
			t.Errorf("second merge of %s = %d, %q; want 1 and already running", staging, r2.code, r2.stderr)
		}
		id, _ := mergeWorkflowID(staging)
		if err := c.CancelWorkflow(t.Context(), id, ""); err != nil {
			t.Fatal(err)
		}
	})

	for _, tc := range []struct {
		name  string
		args  []string
		stdin string
		tty   bool
	}{
		{name: "CancelOnInterrupt", args: []string{"--cancel-on-interrupt"}},
		{name: "CancelAfterPrompt", stdin: "y\n", tty: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			staging := filepath.Join(dir, "staging-"+tc.name)
			id, _ := mergeWorkflowID(staging)
			sigs := make(chan os.Signal, 1)
			var stdout, stderr syncBuffer
			cl := &cli{stdin: strings.NewReader(tc.stdin), stdout: &stdout, stderr: &stderr, interrupts: sigs, stdinTerminal: tc.tty}
			done := make(chan int, 1)
			go func() {
				done <- run(t.Context(), cl, append([]string{"merge", "--config", blockPath, "--staging-path", staging, "--wait"}, tc.args...))
			}()
			waitRunning(t, c, id)
			sigs <- os.Interrupt
			select {
			case code := <-done:
				if code != 1 || !strings.Contains(stderr.String(), "workflow "+id+" canceled") {
					t.Errorf("merge --wait interrupted = %d, %q; want 1 and canceled", code, stderr.String())
				}
			case <-time.After(30 * time.Second):
				t.Fatal("merge --wait did not end after the interrupt")
			}
			if tc.tty && !strings.Contains(stderr.String(), "cancel workflow "+id+"? [y/N]") {
				t.Errorf("stderr lacks the prompt: %q", stderr.String())
			}
			desc, err := c.DescribeWorkflow(t.Context(), id, "")
			if err != nil {
				t.Fatal(err)
			}
			if st := desc.RawResponse.WorkflowExecutionInfo.Status; st != enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED {
				t.Errorf("workflow %s status = %s, want Canceled", id, st)
			}
		})
	}

	t.Run("Schedule", func(t *testing.T) {
		staging := filepath.Join(dir, "staging-nightly")
		r := runStarter(t, "schedule", "create", "--staging-path", staging, "--id", "e2e-nightly", "--cron", "0 2 * * *", "--jitter", "1m")
		if r.code != 0 || !strings.Contains(r.stdout, "created schedule e2e-nightly") {
			t.Fatalf("schedule create = %d, %q, %q", r.code, r.stdout, r.stderr)
		}
		if r := runStarter(t, "schedule", "create", "--staging-path", staging, "--id", "e2e-nightly"); r.code != 1 || !strings.Contains(r.stderr, "already exists") {
			t.Errorf("second schedule create = %d, %q; want 1 and already exists", r.code, r.stderr)
		}
		r = runStarter(t, "schedule", "describe", "--id", "e2e-nightly", "--json")
		var v scheduleView
		if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
			t.Fatalf("schedule describe --json = %d %q %q: %v", r.code, r.stdout, r.stderr, err)
		}
		checkStoredCron(t, c, "e2e-nightly", 2, 0)
		if v.Overlap != enumspb.SCHEDULE_OVERLAP_POLICY_SKIP.String() || v.WorkflowType != workflows.MergeWorkflowName || v.Paused || len(v.NextActionTimes) == 0 {
			t.Errorf("schedule describe = %+v; want overlap skip, MergeWorkflow, active, next times", v)
		}
		if r := runStarter(t, "schedule", "trigger", "--id", "e2e-nightly"); r.code != 0 {
			t.Fatalf("schedule trigger = %d, %q", r.code, r.stderr)
		}
		// The triggered run merges an empty staging and ends green.
		deadline := time.Now().Add(60 * time.Second)
		for {
			r = runStarter(t, "schedule", "describe", "--id", "e2e-nightly", "--json")
			v = scheduleView{}
			_ = json.Unmarshal([]byte(r.stdout), &v)
			if len(v.Recent) > 0 && len(v.Running) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("triggered run did not finish: %+v", v)
			}
			time.Sleep(300 * time.Millisecond)
		}
		desc, err := c.DescribeWorkflow(t.Context(), v.Recent[0].WorkflowID, "")
		if err != nil {
			t.Fatal(err)
		}
		if st := desc.RawResponse.WorkflowExecutionInfo.Status; st != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
			t.Errorf("scheduled merge %s status = %s, want Completed", v.Recent[0].WorkflowID, st)
		}
		checkScheduledMerge(t, c, v.Recent[0].WorkflowID, staging)
		for _, op := range []string{"pause", "unpause", "delete"} {
			if r := runStarter(t, "schedule", op, "--id", "e2e-nightly"); r.code != 0 {
				t.Errorf("schedule %s = %d, %q", op, r.code, r.stderr)
			}
		}
		if r := runStarter(t, "schedule", "describe", "--id", "e2e-nightly"); r.code != 1 || !strings.Contains(r.stderr, "no such schedule") {
			t.Errorf("describe after delete = %d, %q; want 1 and no such schedule", r.code, r.stderr)
		}
	})

	t.Run("BackfillStartPrintsRun", func(t *testing.T) {
		// No state file: the workflow fails in ResolveLogs, but the start
		// itself succeeds and is watchable.
		r := runStarter(t, "backfill", "--staging-path", filepath.Join(dir, "staging-bf"), "--id", "e2e-backfill", "--logs", "example")
		if r.code != 0 || !strings.Contains(r.stdout, "workflow id: e2e-backfill") || !strings.Contains(r.stdout, "/workflows/e2e-backfill/") {
			t.Fatalf("backfill = %d, %q, %q", r.code, r.stdout, r.stderr)
		}
		desc, err := c.DescribeWorkflow(t.Context(), "e2e-backfill", "")
		if err != nil {
			t.Fatal(err)
		}
		if got := desc.RawResponse.WorkflowExecutionInfo.Type.GetName(); got != workflows.BackfillWorkflowName {
			t.Errorf("started workflow type = %s, want %s", got, workflows.BackfillWorkflowName)
		}
		r = runStarter(t, "backfill", "--id", "e2e-backfill-wait", "--to-main", "--wait")
		if r.code != 1 || !strings.Contains(r.stderr, "workflow e2e-backfill-wait failed") {
			t.Errorf("backfill --wait without a state file = %d, %q; want 1 and the failure", r.code, r.stderr)
		}
	})
}

// checkStoredCron checks that the server stored the schedule's cron as
// "minute hour * * *" (it may keep the string or turn it into a calendar).
func checkStoredCron(t *testing.T, c client.Client, id string, hour, minute int) {
	t.Helper()
	d, err := c.ScheduleClient().GetHandle(t.Context(), id).Describe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	spec := d.Schedule.Spec
	want := fmt.Sprintf("%d %d * * *", minute, hour)
	if len(spec.CronExpressions) == 1 && spec.CronExpressions[0] == want {
		return
	}
	if len(spec.Calendars) == 1 {
		cal := spec.Calendars[0]
		if len(cal.Hour) == 1 && cal.Hour[0].Start == hour && len(cal.Minute) == 1 && cal.Minute[0].Start == minute &&
			len(cal.DayOfMonth) == 1 && cal.DayOfMonth[0].Start == 1 && cal.DayOfMonth[0].End == 31 {
			return
		}
	}
	t.Errorf("schedule %s spec = cron %q, calendars %+v; want %q", id, spec.CronExpressions, spec.Calendars, want)
}

// checkScheduledMerge checks that a schedule's run merged the right staging
// table, under that table's merge workflow id.
func checkScheduledMerge(t *testing.T, c client.Client, runID, staging string) {
	t.Helper()
	var res workflows.MergeResult
	if err := c.GetWorkflow(t.Context(), runID, "").Get(t.Context(), &res); err != nil || res.Skipped != "" {
		t.Fatalf("scheduled run %s = %+v, %v", runID, res, err)
	}
	id, _ := mergeWorkflowID(staging)
	hist := c.GetWorkflowHistory(t.Context(), id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	ev, err := hist.Next()
	if err != nil {
		t.Fatalf("history of %s: %v", id, err)
	}
	attrs := ev.GetWorkflowExecutionStartedEventAttributes()
	var in workflows.MergeInput
	if err := converter.GetDefaultDataConverter().FromPayloads(attrs.GetInput(), &in); err != nil {
		t.Fatal(err)
	}
	if in.StagingPath != staging || attrs.GetParentWorkflowExecution().GetWorkflowId() != runID {
		t.Errorf("merge %s: staging %q, parent %q; want %q started by %s", id, in.StagingPath,
			attrs.GetParentWorkflowExecution().GetWorkflowId(), staging, runID)
	}
}

// waitRunning waits until the workflow id has started running.
func waitRunning(t *testing.T, c client.Client, id string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		d, err := c.DescribeWorkflow(t.Context(), id, "")
		if err == nil && d.RawResponse.WorkflowExecutionInfo.Status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("workflow %s did not start", id)
}
