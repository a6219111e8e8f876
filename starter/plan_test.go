package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.temporal.io/sdk/testsuite"

	"github.com/certlake/certlake/activities"
	"github.com/certlake/certlake/internal/config"
	"github.com/certlake/certlake/internal/gaps"
	"github.com/certlake/certlake/internal/lake"
	"github.com/certlake/certlake/internal/record"
)

// TestGapsPreviewIsPlan runs `starter gaps` and the backfill's ResolveLogs
// and DetectGaps activities (the worker's code, in Temporal's activity test
// environment) on the same configuration and lake, and wants the same logs,
// ceilings, skipped logs and ranges: both ceiling modes, catch-up,
// historical and frontier, a filter, and a per-log override (ct.logs) that
// turns verification off for a log that signs nothing, whose twin
// (configured with a key, as a verified log must be) cannot answer its tree
// size.
func TestGapsPreviewIsPlan(t *testing.T) {
	srvA, _ := rfc6962Log(t, fourEntries(t), 4, nil) // tree size 4, unsigned: only unverified reads work
	srvB, _ := rfc6962Log(t, fourEntries(t), 4, nil)
	a, b := record.NormalizeURL(srvA.URL), record.NormalizeURL(srvB.URL)
	const c = "https://state-only.example/log" // in the state file only
	dir := t.TempDir()
	state := filepath.Join(dir, "state.json")
	// a's ceiling 3 cuts its key 3 (the seed's rule); b has no entry.
	body := fmt.Sprintf(`{"version": 1, "logs": {%q: {"current_index": 3, "tree_size": 4, "last_success": 1},
  %q: {"current_index": 50, "tree_size": 60, "last_success": 1}}}`, a, c)
	if err := os.WriteFile(state, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	main, staging := filepath.Join(dir, "lake", "main"), filepath.Join(dir, "lake", "staging")
	appendRows(t, main, lake.RoleMain, a, [2]uint64{0, 0}, [2]uint64{3, 3})
	appendRows(t, main, lake.RoleMain, b, [2]uint64{1, 1})
	appendRows(t, main, lake.RoleMain, c, [2]uint64{10, 19}, [2]uint64{30, 39})
	appendRows(t, staging, lake.RoleStaging, c, [2]uint64{20, 22})
	workdir(t, fmt.Sprintf(`lake:
  main_path: %s
  staging_path: %s
  plan_dir: %s
ct:
  log_list_url: ""
  state_file: %s
  rate_limit: 0
  verify: true
  custom_logs:
    - {name: Log A, url: %s}
    - {name: Log B, url: %s, key: %s}
  logs:
    %q: {verify: false, window: 3}
`, main, staging, filepath.Join(dir, "lake", "plans"), state, srvA.URL, srvB.URL, logKey(t), srvA.URL))
	cfg, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	var suite testsuite.WorkflowTestSuite
	aenv := suite.NewTestActivityEnvironment()
	bf, _ := activities.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil, nil)
	aenv.RegisterActivity(bf)

	zero := uint64(0)
	for _, ceiling := range []string{"state_file", "tree_size"} {
		for _, tc := range []struct {
			name     string
			args     []string
			from     *uint64
			frontier bool
			filter   string
		}{
			{name: "CatchUp"},
			{name: "Historical", args: []string{"--from", "0"}, from: &zero},
			{name: "Frontier", args: []string{"--include-frontier"}, frontier: true},
			{name: "Filter", args: []string{"--logs", "log a,state-only", "--from", "0"}, from: &zero, filter: "log a,state-only"},
		} {
			t.Run(ceiling+"/"+tc.name, func(t *testing.T) {
				r := runStarter(t, append([]string{"gaps", "--json", "--ceiling", ceiling, "--probe=false"}, tc.args...)...)
				var v gapsView
				if err := json.Unmarshal([]byte(r.stdout), &v); r.code != 0 || err != nil {
					t.Fatalf("gaps = %d, %q, %q: %v", r.code, r.stdout, r.stderr, err)
				}
				res := resolveAndDetect(t, aenv, bf, activities.ResolveLogsInput{Logs: tc.filter, Ceiling: ceiling, From: tc.from},
					staging, tc.frontier)
				var gotLogs, wantLogs, gotSkipped, wantSkipped []string
				for _, l := range v.Logs {
					gotLogs = append(gotLogs, fmt.Sprintf("%s<%d", l.SourceURL, l.Ceiling))
				}
				for _, l := range res.logs {
					wantLogs = append(wantLogs, fmt.Sprintf("%s<%d", l.URL, l.Ceiling))
				}
				for _, s := range v.Skipped {
					gotSkipped = append(gotSkipped, s.SourceURL)
				}
				for _, s := range res.skipped {
					wantSkipped = append(wantSkipped, s.SourceURL)
				}
				if !slices.Equal(gotLogs, wantLogs) || !slices.Equal(gotSkipped, wantSkipped) {
					t.Errorf("starter gaps logs %v, skipped %v; the workflow's %v, skipped %v", gotLogs, gotSkipped, wantLogs, wantSkipped)
				}
				if !reflect.DeepEqual(v.Items, res.ranges) {
					t.Errorf("starter gaps ranges %+v; DetectGaps' %+v", v.Items, res.ranges)
				}
				if len(res.ranges) == 0 {
					t.Errorf("no ranges planned: the case proves nothing")
				}
			})
		}
	}
}

type activityPlan struct {
	logs    []activities.LogTarget
	skipped []activities.SkippedLog
	ranges  []gaps.Range
}

// resolveAndDetect plans as BackfillWorkflow does: ResolveLogs, then
// DetectGaps over its logs, then every plan file read back with ReadPlan.
func resolveAndDetect(t *testing.T, aenv *testsuite.TestActivityEnvironment, bf *activities.Backfill, in activities.ResolveLogsInput, staging string, frontier bool) activityPlan {
	t.Helper()
	var out activityPlan
	var resolved activities.ResolveLogsResult
	execute(t, aenv, bf.ResolveLogs, in, &resolved)
	out.logs, out.skipped = resolved.Logs, resolved.Skipped
	gin := activities.DetectGapsInput{StagingPath: staging, From: in.From, IncludeFrontier: frontier,
		PlanKey: strings.ReplaceAll(t.Name(), "/", "-")} // a plan file per case: ReadPlan caches by path
	for _, l := range resolved.Logs {
		gin.Logs = append(gin.Logs, activities.LogCeiling{URL: l.URL, Ceiling: l.Ceiling})
	}
	var plan activities.DetectGapsResult
	execute(t, aenv, bf.DetectGaps, gin, &plan)
	out.ranges = []gaps.Range{}
	for _, lp := range plan.Logs {
		if lp.PlanFile == "" {
			continue
		}
		var page activities.ReadPlanResult
		execute(t, aenv, bf.ReadPlan, activities.ReadPlanInput{PlanFile: lp.PlanFile, Limit: 1000}, &page)
		for _, r := range page.Ranges {
			out.ranges = append(out.ranges, gaps.Range{SourceURL: lp.URL, Start: r.Start, End: r.End})
		}
	}
	return out
}

func execute(t *testing.T, aenv *testsuite.TestActivityEnvironment, fn, in, out any) {
	t.Helper()
	v, err := aenv.ExecuteActivity(fn, in)
	if err != nil {
		t.Fatalf("activity %T(%+v): %v", fn, in, err)
	}
	if err := v.Get(out); err != nil {
		t.Fatal(err)
	}
}
