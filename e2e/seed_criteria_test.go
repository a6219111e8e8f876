package e2e

// The acceptance criteria of the staging backfill (spec/seed-staging-backfill-
// test-requirements.md), each as a named test against the real system: the
// workflows on the dev server, or the DetectGaps activity in Temporal's
// activity test environment, over real Delta tables filled from real
// in-process CT logs.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/certlake/certlake/activities"
	"github.com/certlake/certlake/internal/keyindex"
	"github.com/certlake/certlake/internal/lake"
	"github.com/certlake/certlake/internal/scenario"
	"github.com/certlake/certlake/workflows"
)

// seedEnv is one log of 30 real entries, no main table yet, state file
// ceiling 30.
func seedEnv(t *testing.T) *env {
	return newEnv(t, scenario.Options{Logs: []scenario.LogSpec{{Name: "Seed Log", Static: true, Entries: 30}}, NoMain: true})
}

func (e *env) write(path string, role lake.Role, indices ...uint64) {
	e.t.Helper()
	if err := e.sc.WriteIndices(e.t.Context(), path, role, e.sc.Logs[0], indices...); err != nil {
		e.t.Fatalf("write %v to %s: %v", indices, path, err)
	}
}

// indices lists the keys of the scenario's log in a table, sorted, and
// fails on a duplicate.
func (e *env) indices(path string) []uint64 {
	e.t.Helper()
	m := e.keys(path)[e.sc.Logs[0].Source.URL]
	var out []uint64
	for i := uint64(0); i < 64; i++ {
		switch m[i] {
		case 0:
		case 1:
			out = append(out, i)
		default:
			e.t.Fatalf("%s holds key %d %d times", path, i, m[i])
		}
	}
	return out
}

func span(a, b uint64) []uint64 {
	var out []uint64
	for i := a; i <= b; i++ {
		out = append(out, i)
	}
	return out
}

func cat(xs ...[]uint64) []uint64 {
	var out []uint64
	for _, x := range xs {
		out = append(out, x...)
	}
	return out
}

// AC1.1: a backfill with staging_path creates a Delta table there with the
// 20-column certstream schema, partitioned by seen_date, marked as staging.
func TestStagingAC11CreatesTableAtStagingPath(t *testing.T) {
	e := seedEnv(t)
	e.write(e.sc.MainPath, lake.RoleMain, 10, 11, 15, 16)
	if _, err := e.backfill("ac11", workflows.BackfillInput{StagingPath: e.sc.StagingPath}); err != nil {
		t.Fatalf("backfill: %v", err)
	}
	tb, err := lake.Open(t.Context(), e.sc.StagingPath, lake.Options{Role: lake.RoleStaging})
	if err != nil {
		t.Fatalf("open staging as a staging table: %v", err)
	}
	snap, err := tb.Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range snap.Schema.Fields {
		names = append(names, f.Name)
	}
	want := []string{"cert_index", "update_type", "seen", "seen_date", "source_name", "source_url", "cert_link",
		"serial_number", "fingerprint", "sha256", "sha1", "not_before", "not_after", "is_ca", "signature_algorithm",
		"subject_aggregated", "issuer_aggregated", "all_domains", "as_der", "chain"}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("staging columns = %v, want the 20 certstream columns %v", names, want)
	}
	if got := snap.Metadata.PartitionColumns; !reflect.DeepEqual(got, []string{"seen_date"}) {
		t.Fatalf("partition columns = %v, want [seen_date]", got)
	}
}

// AC1.2: fetched records go to staging, and main is left as it was.
func TestStagingAC12RecordsInStagingNotMain(t *testing.T) {
	e := seedEnv(t)
	e.write(e.sc.MainPath, lake.RoleMain, 10, 11, 15, 16)
	before := e.indices(e.sc.MainPath)
	res, err := e.backfill("ac12", workflows.BackfillInput{StagingPath: e.sc.StagingPath})
	if err != nil {
		t.Fatalf("backfill: %v", err)
	}
	if got := e.indices(e.sc.StagingPath); !reflect.DeepEqual(got, span(12, 14)) || res.RecordsWritten != 3 {
		t.Fatalf("staging = %v (%d written), want [12 13 14]", got, res.RecordsWritten)
	}
	if after := e.indices(e.sc.MainPath); !reflect.DeepEqual(after, before) {
		t.Fatalf("main changed: %v, want %v", after, before)
	}
}

// AC1.3: the staging backfill works in catch-up and in historical mode.
func TestStagingAC13WorksInBothModes(t *testing.T) {
	e := seedEnv(t)
	e.write(e.sc.MainPath, lake.RoleMain, 10, 11, 15, 16)
	if _, err := e.backfill("ac13-catchup", workflows.BackfillInput{StagingPath: e.sc.StagingPath}); err != nil {
		t.Fatalf("catch-up backfill: %v", err)
	}
	if got := e.indices(e.sc.StagingPath); !reflect.DeepEqual(got, span(12, 14)) {
		t.Fatalf("staging after catch-up = %v, want [12 13 14]", got)
	}
	from := uint64(2)
	res, err := e.backfill("ac13-historical", workflows.BackfillInput{StagingPath: e.sc.StagingPath, From: &from})
	if err != nil {
		t.Fatalf("historical backfill: %v", err)
	}
	if got, want := e.indices(e.sc.StagingPath), cat(span(2, 9), span(12, 14)); !reflect.DeepEqual(got, want) || res.RecordsWritten != 8 {
		t.Fatalf("staging after historical = %v (%d written), want %v", got, res.RecordsWritten, want)
	}
}

// AC5.1 is TestBackfillWithoutStagingWritesMain (backfill_test.go).

// detectGaps runs the DetectGaps activity of the worker's configuration in
// Temporal's activity test environment, over the real tables.
func (e *env) detectGaps(staging string, ceiling uint64, from *uint64) []activities.Range {
	e.t.Helper()
	var s testsuite.WorkflowTestSuite
	aenv := s.NewTestActivityEnvironment()
	b, _ := activities.New(e.cfg, quietLogger(), nil, nil)
	aenv.RegisterActivity(b)
	url := e.sc.Logs[0].Source.URL
	v, err := aenv.ExecuteActivity(b.DetectGaps, activities.DetectGapsInput{
		StagingPath: staging, From: from, PlanKey: fmt.Sprintf("gaps-%d", time.Now().UnixNano()),
		Logs: []activities.LogCeiling{{URL: url, Ceiling: ceiling}},
	})
	if err != nil {
		e.t.Fatalf("DetectGaps: %v", err)
	}
	var res activities.DetectGapsResult
	if err := v.Get(&res); err != nil {
		e.t.Fatal(err)
	}
	var out []activities.Range
	for _, lp := range res.Logs {
		if lp.PlanFile == "" {
			continue
		}
		pv, err := aenv.ExecuteActivity(b.ReadPlan, activities.ReadPlanInput{PlanFile: lp.PlanFile, Limit: 1000})
		if err != nil {
			e.t.Fatalf("ReadPlan: %v", err)
		}
		var page activities.ReadPlanResult
		if err := pv.Get(&page); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, page.Ranges...)
	}
	return out
}

func ranges(rs ...activities.Range) []activities.Range { return rs }

func r(a, b uint64) activities.Range { return activities.Range{Start: a, End: b} }

// AC2.1: entries present in either main or staging are not gaps.
func TestGapsAC21UnionExcludesEntriesInEitherTable(t *testing.T) {
	e := seedEnv(t)
	e.write(e.sc.MainPath, lake.RoleMain, 10, 11, 15, 16)
	e.write(e.sc.StagingPath, lake.RoleStaging, 12, 13)
	if got := e.detectGaps(e.sc.StagingPath, 20, nil); !reflect.DeepEqual(got, ranges(r(14, 14))) {
		t.Fatalf("gaps = %v, want [14, 14]", got)
	}
}

// AC2.2: a second run, after staging received some entries, plans a strict
// subset of the first.
func TestGapsAC22SecondRunFewerWorkItems(t *testing.T) {
	e := seedEnv(t)
	e.write(e.sc.MainPath, lake.RoleMain, 10, 15)
	first := e.detectGaps(e.sc.StagingPath, 20, nil)
	if !reflect.DeepEqual(first, ranges(r(11, 14))) {
		t.Fatalf("first run gaps = %v, want [11, 14]", first)
	}
	e.write(e.sc.StagingPath, lake.RoleStaging, 11, 12)
	if second := e.detectGaps(e.sc.StagingPath, 20, nil); !reflect.DeepEqual(second, ranges(r(13, 14))) {
		t.Fatalf("second run gaps = %v, want [13, 14]", second)
	}
}

// AC2.3: the per-log maximum is capped at the ceiling: nothing at or above
// it is planned, and since staging holds a key beyond it (25), the holes run
// up to the ceiling (the seed's rule plans [15, 19]).
func TestGapsAC23CeilingCapsMaxIndex(t *testing.T) {
	e := seedEnv(t)
	e.write(e.sc.MainPath, lake.RoleMain, 10, 11, 12)
	e.write(e.sc.StagingPath, lake.RoleStaging, 13, 14, 25)
	got := e.detectGaps(e.sc.StagingPath, 20, nil)
	if !reflect.DeepEqual(got, ranges(r(15, 19))) {
		t.Fatalf("gaps = %v, want [15, 19] (MAX 25 capped at the ceiling 20)", got)
	}
}

// AC2.4: without a staging table (first run), main alone is used, with the
// same result as no staging path at all.
func TestGapsAC24MissingStagingFallsBackToMain(t *testing.T) {
	e := seedEnv(t)
	e.write(e.sc.MainPath, lake.RoleMain, 10, 11, 15)
	missing := filepath.Join(filepath.Dir(e.sc.MainPath), "nonexistent_staging") // inside the lake (lake.allowed_locations)
	with := e.detectGaps(missing, 20, nil)
	without := e.detectGaps("", 20, nil)
	if !reflect.DeepEqual(with, ranges(r(12, 14))) || !reflect.DeepEqual(with, without) {
		t.Fatalf("gaps with missing staging = %v, without staging = %v, want both [12, 14]", with, without)
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("gap detection created the staging path")
	}
}

// The original's historical-mode miss (quirk Q5): when index `from` itself
// is absent, the hole from it to the next present index is planned.
func TestGapsHistoricalFindsHoleStartingAtFrom(t *testing.T) {
	e := seedEnv(t)
	e.write(e.sc.MainPath, lake.RoleMain, 10, 11, 15, 16)
	from := uint64(12)
	if got := e.detectGaps("", 20, &from); !reflect.DeepEqual(got, ranges(r(12, 14))) {
		t.Fatalf("gaps from 12 = %v, want [12, 14] (the original planned nothing)", got)
	}
	from = 3
	if got := e.detectGaps("", 20, &from); !reflect.DeepEqual(got, ranges(r(3, 9), r(12, 14))) {
		t.Fatalf("gaps from 3 = %v, want [3, 9] and [12, 14]", got)
	}
}

// --- merge: AC3 and AC4 ---

// AC3.1: staging rows not in main are inserted.
func TestMergeAC31InsertsNonDuplicateRecords(t *testing.T) {
	e := seedEnv(t)
	e.write(e.sc.MainPath, lake.RoleMain, 10, 11, 12)
	e.write(e.sc.StagingPath, lake.RoleStaging, 13, 14, 15)
	res, err := e.merge("ac31", workflows.MergeInput{StagingPath: e.sc.StagingPath})
	if err != nil {
		t.Fatalf("merge: %v", err)
	}
	if got := e.indices(e.sc.MainPath); !reflect.DeepEqual(got, span(10, 15)) || res.TotalInserted != 3 {
		t.Fatalf("main = %v (inserted %d), want [10..15]", got, res.TotalInserted)
	}
}

// AC3.2: staging rows already in main are skipped.
func TestMergeAC32SkipsExistingRecords(t *testing.T) {
	e := seedEnv(t)
	e.write(e.sc.MainPath, lake.RoleMain, 10, 11, 12)
	e.write(e.sc.StagingPath, lake.RoleStaging, 11, 12, 13)
	res, err := e.merge("ac32", workflows.MergeInput{StagingPath: e.sc.StagingPath})
	if err != nil {
		t.Fatalf("merge: %v", err)
	}
	if got := e.indices(e.sc.MainPath); !reflect.DeepEqual(got, span(10, 13)) || res.TotalInserted != 1 || res.TotalSkipped != 2 {
		t.Fatalf("main = %v, result %+v; want [10..13], 1 inserted, 2 skipped", got, res)
	}
}

// AC3.3: merging the same staging data twice leaves main as after once.
func TestMergeAC33Idempotent(t *testing.T) {
	e := seedEnv(t)
	e.write(e.sc.MainPath, lake.RoleMain, 10, 11)
	for i := range 2 {
		e.write(e.sc.StagingPath, lake.RoleStaging, 12, 13)
		if _, err := e.merge(fmt.Sprintf("ac33-%d", i), workflows.MergeInput{StagingPath: e.sc.StagingPath}); err != nil {
			t.Fatalf("merge %d: %v", i, err)
		}
		if got := e.indices(e.sc.MainPath); !reflect.DeepEqual(got, span(10, 13)) {
			t.Fatalf("main after merge %d = %v, want [10..13]", i, got)
		}
	}
	// Each merge's IndexMain step indexed the main files it found: the
	// second one found the first's file too.
	mt, err := lake.Open(t.Context(), e.sc.MainPath, lake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := mt.Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ix, err := keyindex.Load(t.Context(), keyindex.TableStore(e.sc.MainPath), snap.Metadata.ID)
	if err != nil || ix.Len() != 2 || len(snap.Files) != 2 {
		t.Fatalf("main's key index holds %d of %d files (%v), want 2 of 2", ix.Len(), len(snap.Files), err)
	}
}

// AC3.4: the staging directory is deleted after a successful merge.
func TestMergeAC34StagingDeletedOnSuccess(t *testing.T) {
	e := seedEnv(t)
	e.write(e.sc.MainPath, lake.RoleMain, 10)
	e.write(e.sc.StagingPath, lake.RoleStaging, 11, 12)
	res, err := e.merge("ac34", workflows.MergeInput{StagingPath: e.sc.StagingPath})
	if err != nil || !res.StagingRetired {
		t.Fatalf("merge = %+v, %v; want staging retired", res, err)
	}
	if _, err := os.Stat(e.sc.StagingPath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("staging directory still there (stat: %v)", err)
	}
}

// syncBuffer is a bytes.Buffer safe for the worker's goroutines.
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

// AC3.5 and HV1: the merge logs "merge complete" with total_inserted,
// total_skipped and total_staging_rows, consistent with each other and with
// the result.
func TestMergeAC35LogsMetrics(t *testing.T) {
	e := seedEnv(t)
	e.write(e.sc.MainPath, lake.RoleMain, 10, 11, 12)
	e.write(e.sc.StagingPath, lake.RoleStaging, 11, 12, 13, 14)
	// A worker whose client logs JSON into a buffer, on its own queue.
	var buf syncBuffer
	c, err := client.Dial(client.Options{HostPort: devServer.FrontendHostPort(), Namespace: "default",
		Logger: sdklog.NewStructuredLogger(slog.New(slog.NewJSONHandler(&buf, nil)))})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	e.c = c
	e.queue += "-logged"
	e.cfg.Temporal.TaskQueue = e.queue
	e.startWorker()
	res, err := e.merge("ac35", workflows.MergeInput{StagingPath: e.sc.StagingPath})
	if err != nil {
		t.Fatalf("merge: %v", err)
	}
	var line map[string]any
	sc := bufio.NewScanner(strings.NewReader(buf.String()))
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == "merge complete" {
			line = m
		}
	}
	if line == nil {
		t.Fatalf("no \"merge complete\" log line; log:\n%s", buf.String())
	}
	ins, skip, total := line["total_inserted"], line["total_skipped"], line["total_staging_rows"]
	if ins != float64(2) || skip != float64(2) || total != float64(4) {
		t.Fatalf("merge complete: total_inserted=%v total_skipped=%v total_staging_rows=%v, want 2, 2, 4", ins, skip, total)
	}
	if res.TotalInserted+res.TotalSkipped != res.TotalStagingRows || res.TotalStagingRows != 4 {
		t.Fatalf("result %+v: inserted + skipped != staging rows", res)
	}
}

// AC4.1: an empty staging table (schema, no rows) is a successful no-op.
func TestMergeAC41EmptyStagingSucceeds(t *testing.T) {
	e := seedEnv(t)
	e.write(e.sc.MainPath, lake.RoleMain, 10)
	if _, err := lake.OpenOrCreate(t.Context(), e.sc.StagingPath, lake.Options{Role: lake.RoleStaging}); err != nil {
		t.Fatal(err)
	}
	res, err := e.merge("ac41", workflows.MergeInput{StagingPath: e.sc.StagingPath})
	if err != nil || res.TotalStagingRows != 0 || res.TotalInserted != 0 {
		t.Fatalf("merge of empty staging = %+v, %v; want zero counts, no error", res, err)
	}
	if got := e.indices(e.sc.MainPath); !reflect.DeepEqual(got, []uint64{10}) {
		t.Fatalf("main = %v, want [10]", got)
	}
}

// AC4.2: a missing main table is created, then the merge is pure inserts.
func TestMergeAC42MissingMainAutoCreated(t *testing.T) {
	e := seedEnv(t)
	e.write(e.sc.StagingPath, lake.RoleStaging, 10, 11, 12)
	res, err := e.merge("ac42", workflows.MergeInput{StagingPath: e.sc.StagingPath})
	if err != nil {
		t.Fatalf("merge: %v", err)
	}
	if got := e.indices(e.sc.MainPath); !reflect.DeepEqual(got, span(10, 12)) || res.TotalInserted != 3 {
		t.Fatalf("main = %v (inserted %d), want [10 11 12]", got, res.TotalInserted)
	}
}

// AC4.3: a batch that fails for real (main's log is corrupt) fails the
// workflow naming the batch, and staging stays intact for a retry.
func TestMergeAC43BatchFailureKeepsStaging(t *testing.T) {
	e := seedEnv(t)
	e.write(e.sc.MainPath, lake.RoleMain, 10)
	e.write(e.sc.StagingPath, lake.RoleStaging, 11, 12)
	// A half-written commit after version 0: main cannot be read.
	bad := filepath.Join(e.sc.MainPath, "_delta_log", "00000000000000000002.json")
	if err := os.WriteFile(bad, []byte("{\"add\": {\"path\": "), 0o644); err != nil {
		t.Fatal(err)
	}
	before := e.indices(e.sc.StagingPath)
	_, err := e.merge("ac43", workflows.MergeInput{StagingPath: e.sc.StagingPath})
	if err == nil || !strings.Contains(err.Error(), "merge batch 1 of 1") {
		t.Fatalf("merge with a corrupt main: err = %v, want a failure naming batch 1 of 1", err)
	}
	if after := e.indices(e.sc.StagingPath); !reflect.DeepEqual(after, before) {
		t.Fatalf("staging after failed merge = %v, want %v", after, before)
	}
}

// AC4.4: a cancel ends the merge Canceled and keeps staging.
func TestMergeAC44CancelPreservesStaging(t *testing.T) {
	e := seedEnv(t)
	e.write(e.sc.StagingPath, lake.RoleStaging, 11, 12)
	run := e.start("ac44", workflows.MergeWorkflowName, workflows.MergeInput{StagingPath: e.sc.StagingPath})
	if err := e.c.CancelWorkflow(t.Context(), run.GetID(), run.GetRunID()); err != nil {
		t.Fatal(err)
	}
	err := run.Get(t.Context(), nil)
	var canceled *temporal.CanceledError
	if !errors.As(err, &canceled) {
		// The merge may have won the race; then staging was retired.
		t.Fatalf("merge after cancel: err = %v, want Canceled", err)
	}
	if got := e.indices(e.sc.StagingPath); !reflect.DeepEqual(got, []uint64{11, 12}) {
		t.Fatalf("staging after cancel = %v, want [11 12]", got)
	}
}

// AC4.5 and HV4 are TestMergeRequiresStagingPath here (the workflow) and in
// starter/main_test.go (the CLI's exact message and exit code).
