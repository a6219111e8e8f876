package e2e

// A workflow input names where the worker writes and deletes: only under
// lake.allowed_locations (issue: "Workflow inputs stay inside the lake").

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	historypb "go.temporal.io/api/history/v1"

	"github.com/certlake/certlake/activities"
	"github.com/certlake/certlake/internal/scenario"
	"github.com/certlake/certlake/workflows"
)

func TestWorkflowInputsStayInsideAllowedLocations(t *testing.T) {
	e := newEnv(t, scenario.Options{Logs: twoLogs(300, 200)})
	lakeDir := filepath.Dir(e.sc.MainPath) // the default allowed location
	if _, err := e.backfill("prepare", workflows.BackfillInput{StagingPath: e.sc.StagingPath}); err != nil {
		t.Fatalf("backfill into the lake's staging: %v", err)
	}
	// A real staging table outside the lake: a merge must neither read nor
	// retire it.
	outside := filepath.Join(e.sc.Dir, "outside")
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	foreign := filepath.Join(outside, "staging")
	if out, err := exec.Command("cp", "-a", e.sc.StagingPath, foreign).CombinedOutput(); err != nil {
		t.Fatalf("copy staging: %v\n%s", err, out)
	}
	if err := os.Symlink(outside, filepath.Join(lakeDir, "link-out")); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, path, msg string
	}{
		{"sibling directory", filepath.Join(e.sc.Dir, "sibling-staging"), "outside the allowed locations"},
		{"existing staging table outside", foreign, "outside the allowed locations"},
		{"filesystem root", "/", "outside the allowed locations"},
		{"dot-dot escape", lakeDir + "/staging/../../outside/staging", `".."`},
		{"symlink pointing out", filepath.Join(lakeDir, "link-out", "staging"), "outside the allowed locations"},
		{"bucket not in the list", "s3://other-bucket/staging", "outside the allowed locations"},
	}
	skip := []string{e.sc.PlanDir, filepath.Join(e.sc.Dir, "logs")}
	for _, c := range cases {
		for _, wf := range []string{workflows.BackfillWorkflowName, workflows.MergeWorkflowName} {
			t.Run(strings.ReplaceAll(c.name+" "+wf, " ", "_"), func(t *testing.T) {
				var in any = workflows.BackfillInput{StagingPath: c.path}
				if wf == workflows.MergeWorkflowName {
					in = workflows.MergeInput{StagingPath: c.path}
				}
				before := treeHashes(t, e.sc.Dir, skip)
				begin := time.Now()
				_, err := e.run(c.name+"-"+wf, wf, in)
				took := time.Since(begin)
				appErr := findAppErr(err, activities.ErrTypeNotAllowed)
				if appErr == nil || !appErr.NonRetryable() || !strings.Contains(err.Error(), c.msg) {
					t.Fatalf("%s(staging_path %s) = %v, want non-retryable %s saying %q", wf, c.path, err, activities.ErrTypeNotAllowed, c.msg)
				}
				if c.msg != `".."` && !strings.Contains(appErr.Message(), "lake.allowed_locations") {
					t.Errorf("error %q does not name the setting to change", appErr.Message())
				}
				if took > failFast {
					t.Errorf("refused after %s, want < %s", took.Round(time.Millisecond), failFast)
				}
				if changed := diffTrees(before, treeHashes(t, e.sc.Dir, skip)); len(changed) > 0 {
					t.Errorf("refused run changed files: %v", changed)
				}
			})
		}
	}
	if _, err := os.Stat(filepath.Join(e.sc.Dir, "sibling-staging")); !os.IsNotExist(err) {
		t.Errorf("sibling-staging exists after the refusals (stat: %v)", err)
	}
	if _, err := os.Stat(filepath.Join(outside, "staging", "_delta_log")); err != nil {
		t.Errorf("the foreign staging table was touched: %v", err)
	}
	// The defaults keep the usual layout working: the lake's own staging
	// merges.
	if _, err := e.merge("merge-inside", workflows.MergeInput{StagingPath: e.sc.StagingPath}); err != nil {
		t.Fatalf("merge of the lake's own staging: %v", err)
	}
	if err := e.sc.CheckComplete(e.keys(e.sc.MainPath)); err != nil {
		t.Fatal(err)
	}
}

// Credentials stay in the worker's configuration: no workflow input, result
// or history event holds them.
func TestSecretsNeverInHistories(t *testing.T) {
	e := newWorld(t, scenario.Options{Logs: twoLogs(200, 100)}, "certlake-secrets")
	const keyID, secret, token = "AKIACERTLAKESECRETTEST", "wJalrXUtnFEMI-certlake-secret-value", "certlake-session-token-value"
	e.cfg.Storage.S3.AccessKeyID = keyID
	e.cfg.Storage.S3.SecretAccessKey = secret
	e.cfg.Storage.S3.SessionToken = token
	e.startWorker()
	brun := e.start("backfill", workflows.BackfillWorkflowName, workflows.BackfillInput{StagingPath: e.sc.StagingPath})
	if err := brun.Get(t.Context(), nil); err != nil {
		t.Fatalf("backfill: %v", err)
	}
	mrun := e.start("merge", workflows.MergeWorkflowName, workflows.MergeInput{StagingPath: e.sc.StagingPath})
	if err := mrun.Get(t.Context(), nil); err != nil {
		t.Fatalf("merge: %v", err)
	}
	ids := [][2]string{{brun.GetID(), brun.GetRunID()}, {mrun.GetID(), mrun.GetRunID()}}
	events := 0
	for i := 0; i < len(ids); i++ {
		it := e.c.GetWorkflowHistory(t.Context(), ids[i][0], ids[i][1], false, 0)
		for it.HasNext() {
			ev, err := it.Next()
			if err != nil {
				t.Fatalf("history of %s: %v", ids[i][0], err)
			}
			events++
			b, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range []string{keyID, secret, token} {
				if strings.Contains(string(b), s) {
					t.Errorf("history of %s, event %d (%s), holds a credential", ids[i][0], ev.GetEventId(), ev.GetEventType())
				}
			}
			if a := ev.GetChildWorkflowExecutionStartedEventAttributes(); a != nil {
				ids = append(ids, [2]string{a.GetWorkflowExecution().GetWorkflowId(), a.GetWorkflowExecution().GetRunId()})
			}
			followContinueAsNew(ev, &ids, ids[i][0])
		}
	}
	if len(ids) < 4 || events < 50 {
		t.Fatalf("read %d histories, %d events: too few to prove anything", len(ids), events)
	}
}

// followContinueAsNew adds the next run of a workflow that continued as new.
func followContinueAsNew(ev *historypb.HistoryEvent, ids *[][2]string, id string) {
	if a := ev.GetWorkflowExecutionContinuedAsNewEventAttributes(); a != nil {
		*ids = append(*ids, [2]string{id, a.GetNewExecutionRunId()})
	}
}
