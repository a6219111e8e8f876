package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/certlake/certlake/activities"
	"github.com/certlake/certlake/internal/config"
	"github.com/certlake/certlake/internal/scenario"
	"github.com/certlake/certlake/workflows"
)

// TestWaitPrintsProgress runs a real backfill and a real merge with --wait
// and stderr not a terminal: progress comes as plain lines every interval,
// the result as JSON on stdout. The backfill is throttled so that it lasts
// a few seconds; its time is compared with gaps' estimate.
func TestWaitPrintsProgress(t *testing.T) {
	srv := devServer(t)
	dir := t.TempDir()
	sc, err := scenario.Start(t.Context(), scenario.Options{Dir: dir, HoleEvery: 40, Logs: []scenario.LogSpec{
		{Name: "progress static", Static: true, Entries: 3000},
		{Name: "progress rfc6962", Entries: 3000},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sc.Close() })
	var missing uint64
	var logsYAML strings.Builder
	for _, l := range sc.Logs {
		missing += l.MissingCount()
		key := "custom_logs"
		if l.Source.Static {
			key = "static_logs"
		}
		// With their keys (and origin): the worker verifies what it stages.
		cl := l.ConfigLog()
		fmt.Fprintf(&logsYAML, "  %s:\n    - {name: %q, url: %q, key: %q, origin: %q}\n", key, cl.Name, cl.URL, cl.Key, cl.Origin)
	}
	cfgText := fmt.Sprintf(`temporal:
  address: %s
  task_queue: e2e-progress
lake:
  main_path: %s
  plan_dir: %s
ct:
  state_file: %s
  log_list_url: ""
  batch_size: 64
  rate_limit: 12
  burst: 2
%sbackfill:
  chunk_size: 300
  stage_batch_rows: 300
`, srv.FrontendHostPort(), sc.MainPath, sc.PlanDir, sc.StateFile, logsYAML.String())
	cfgPath := filepath.Join(dir, "certlake.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, m := activities.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil, nil)
	wr := worker.New(srv.Client(), "e2e-progress", worker.Options{})
	wr.RegisterWorkflowWithOptions(workflows.BackfillWorkflow, workflow.RegisterOptions{Name: workflows.BackfillWorkflowName})
	wr.RegisterWorkflowWithOptions(workflows.LogBackfillWorkflow, workflow.RegisterOptions{Name: workflows.LogBackfillWorkflowName})
	wr.RegisterWorkflowWithOptions(workflows.MergeWorkflow, workflow.RegisterOptions{Name: workflows.MergeWorkflowName})
	wr.RegisterActivity(b)
	wr.RegisterActivity(m)
	if err := wr.Start(); err != nil {
		t.Fatal(err)
	}
	defer wr.Stop()
	workdir(t, cfgText)

	r := runStarter(t, "gaps", "--json", "--staging-path", sc.StagingPath)
	var plan gapsView
	if err := json.Unmarshal([]byte(r.stdout), &plan); err != nil || plan.TotalEntries != missing {
		t.Fatalf("gaps --json = %d %q: %v; want %d entries planned", r.code, r.stderr, err, missing)
	}

	start := time.Now()
	r = runStarter(t, "backfill", "--staging-path", sc.StagingPath, "--id", "e2e-progress", "--wait", "--progress-interval", "500ms")
	took := time.Since(start)
	if r.code != 0 {
		t.Fatalf("backfill --wait = %d, %q", r.code, r.stderr)
	}
	var res workflows.BackfillResult
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || res.RecordsWritten != int64(missing) {
		t.Fatalf("backfill --wait stdout = %q (%v); want the result JSON with %d records", r.stdout, err, missing)
	}
	t.Logf("backfill of %d entries (%d requests) took %v; gaps estimated %.1fs", missing, plan.TotalRequests, took.Round(time.Millisecond), plan.ETASeconds)
	t.Logf("backfill --wait stderr:\n%s", r.stderr)

	// Plain lines, one summary and one line per log per interval; the
	// fetched counts grow and some line shows the run half way.
	summary := regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d backfill e2e-progress: (\w+), (\d+) logs, fetched (\d+)/(\d+) \(.*\), rows (\d+), failed (\d+)$`)
	lines := summary.FindAllStringSubmatch(r.stderr, -1)
	if len(lines) < 3 {
		t.Fatalf("backfill --wait stderr has %d progress summaries, want several:\n%s", len(lines), r.stderr)
	}
	partial, last := false, int64(-1)
	for _, l := range lines {
		fetched, _ := strconv.ParseInt(l[3], 10, 64)
		planned, _ := strconv.ParseInt(l[4], 10, 64)
		if fetched < last {
			t.Errorf("fetched went back from %d to %d:\n%s", last, fetched, r.stderr)
		}
		last = fetched
		if l[1] == "fetching" && fetched > 0 && fetched < planned {
			partial = true
		}
	}
	if !partial {
		t.Errorf("no progress line shows a partly fetched plan:\n%s", r.stderr)
	}
	if got := lines[len(lines)-1]; got[3] != strconv.FormatUint(missing, 10) || got[4] != got[3] {
		t.Errorf("last progress line = %q, want fetched %d/%d", got[0], missing, missing)
	}
	for _, l := range sc.Logs {
		if !regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d   ` + regexp.QuoteMeta(l.Source.Name) + ` (running|done): fetched \d+/` + strconv.FormatUint(l.MissingCount(), 10) + ` .*, rate (\d+/s|-), ETA \S+$`).MatchString(r.stderr) {
			t.Errorf("stderr lacks a progress line of log %q:\n%s", l.Source.Name, r.stderr)
		}
	}

	r = runStarter(t, "merge", "--staging-path", sc.StagingPath, "--wait", "--progress-interval", "100ms")
	var mres workflows.MergeResult
	if err := json.Unmarshal([]byte(r.stdout), &mres); r.code != 0 || err != nil || mres.TotalInserted != int64(missing) {
		t.Fatalf("merge --wait = %d, stdout %q, stderr %q; want %d inserted", r.code, r.stdout, r.stderr, missing)
	}
	mergeLine := regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d merge merge-\S+: ([a-z ()]+), batches (\d+)/(\d+), staging rows (\d+), inserted (\d+), skipped (\d+)$`)
	ml := mergeLine.FindAllStringSubmatch(r.stderr, -1)
	if len(ml) == 0 {
		t.Fatalf("merge --wait stderr has no progress line:\n%s", r.stderr)
	}
	if got := ml[len(ml)-1]; got[1] != "done" || got[2] != got[3] || got[5] != strconv.FormatUint(missing, 10) {
		t.Errorf("last merge progress line = %q, want done, every batch, %d inserted", got[0], missing)
	}
	t.Logf("merge --wait stderr:\n%s", r.stderr)
}
