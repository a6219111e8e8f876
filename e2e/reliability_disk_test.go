package e2e

// Reliability: the disk holding staging fills up during a backfill.

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/certlake/certlake/internal/scenario"
	"github.com/certlake/certlake/workflows"
)

// mountTmpfs mounts a tmpfs of size at dir, or skips the test.
func mountTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (needs root and CAP_SYS_ADMIN): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
}

// freeBytes returns the free space of the file system holding dir.
func freeBytes(t *testing.T, dir string) int64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

// pendingFailures returns the last failure messages of the pending
// activities of the open runs on the queue, with their attempts.
func pendingFailures(t *testing.T, e *env) (msgs []string, maxAttempt int32) {
	resp, err := e.c.ListWorkflow(t.Context(), &workflowservice.ListWorkflowExecutionsRequest{
		Query: "TaskQueue = '" + e.queue + "' AND ExecutionStatus = 'Running'"})
	if err != nil {
		t.Fatalf("list runs: %v", err)
	}
	for _, ex := range resp.Executions {
		d, err := e.c.DescribeWorkflow(t.Context(), ex.Execution.WorkflowId, ex.Execution.RunId)
		if err != nil {
			continue
		}
		for _, pa := range d.RawResponse.PendingActivities {
			if pa.LastFailure != nil {
				msgs = append(msgs, pa.LastFailure.Message)
				maxAttempt = max(maxAttempt, pa.Attempt)
			}
		}
	}
	return msgs, maxAttempt
}

func TestReliabilityDiskFullWhileStaging(t *testing.T) {
	t.Parallel()
	o := report(t)
	e := newProcEnv(t, scenario.Options{Logs: twoLogs(4000, 3000), HoleEvery: 60})
	guard(t, e.sc.Dir)
	want := missingTotal(e.sc)
	disk := filepath.Join(e.sc.Dir, "small-disk")
	mountTmpfs(t, disk, "4m")
	staging := filepath.Join(disk, "staging")
	// The small disk lies beside the lake: the operator allows it.
	e.cfg.Lake.AllowedLocations = []string{filepath.Dir(e.sc.MainPath), disk}
	e.cfg.Backfill.StageBatchRows = 48
	e.cfg.Backfill.Window = 1
	e.cfg.Backfill.ChunkSize = 300
	e.startWorker()

	// Leave room for a few staging commits only.
	ballast := filepath.Join(disk, "ballast")
	room := int64(160 << 10)
	if err := os.WriteFile(ballast, make([]byte, freeBytes(t, disk)-room), 0o644); err != nil {
		t.Fatalf("ballast: %v", err)
	}
	o.figure("tmpfs of 4 MiB with %d KiB free for a staging of %d rows", freeBytes(t, disk)>>10, want)

	run := e.start("backfill-disk-full", workflows.BackfillWorkflowName, workflows.BackfillInput{StagingPath: staging})
	var msgs []string
	var attempt int32
	waitFor(t, 2*time.Minute, "a FetchRange failing on the full disk and retried", func() bool {
		msgs, attempt = pendingFailures(t, e)
		for _, m := range msgs {
			if strings.Contains(m, "no space left on device") && attempt >= 2 {
				return true
			}
		}
		return false
	})
	o.figure("FetchRange at attempt %d, last failure: %s", attempt, firstLines(msgs[0], 1))
	if !isRunning(t, e.c, run) {
		t.Fatal("the backfill ended on a full disk; it should retry")
	}
	full := e.keys(staging)
	if d := full.Duplicates(); len(d) > 0 {
		t.Fatalf("duplicates in staging on the full disk: %v", d[:1])
	}
	o.check("disk full: activity failed and retried (run open), staging readable with %d committed rows, no duplicate, every listed file present", full.Total())
	if full.Total() >= int(want) {
		t.Fatalf("everything was staged before the disk filled up")
	}

	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	var res workflows.BackfillResult
	if err := run.Get(t.Context(), &res); err != nil {
		t.Fatalf("backfill after space was freed: %v", err)
	}
	o.figure("run completed %.0f s after the space was freed", time.Since(freed).Seconds())
	e.sc.StagingPath = staging
	if err := e.sc.CheckStaging(e.keys(staging)); err != nil {
		t.Fatalf("staging after the disk-full episode: %v", err)
	}
	if res.RecordsWritten != want || res.LogsFailed != 0 {
		t.Errorf("backfill result = %+v, want %d rows, no failure", res, want)
	}
	o.check("after freeing space the run resumed and staged exactly the %d missing keys once each", want)
	var orphans int
	_ = filepath.WalkDir(staging, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".parquet") {
			orphans++
		}
		return nil
	})
	mr := mergeAndCheck(t, e, o, "merge")
	o.figure("merge inserted %d rows; %d Parquet files were in staging before the merge (including any half-written on the full disk)", mr.TotalInserted, orphans)
	if d, err := e.c.DescribeWorkflow(t.Context(), run.GetID(), run.GetRunID()); err == nil &&
		d.RawResponse.WorkflowExecutionInfo.Status != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		t.Errorf("backfill status %s", d.RawResponse.WorkflowExecutionInfo.Status)
	}
}
