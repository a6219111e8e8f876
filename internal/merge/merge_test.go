package merge

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certlake/certlake/internal/lake"
	"github.com/certlake/certlake/internal/record"
)

// TestMergeSeedCriteria covers AC3.1, AC3.2, AC3.4 and AC3.5.
func TestMergeSeedCriteria(t *testing.T) {
	tests := []struct {
		name                      string
		main, staging             []uint64
		want                      []uint64
		inserted, skipped, staged int64
	}{
		{"AC3.1 inserts records not in main", []uint64{10, 11, 12}, []uint64{13, 14, 15}, span(10, 15), 3, 0, 3},
		{"AC3.2 skips records already in main", []uint64{10, 11, 12}, []uint64{11, 12, 13}, span(10, 13), 1, 2, 3},
		{"AC3.5 all already in main", []uint64{10, 11, 12}, []uint64{10, 11, 12}, span(10, 12), 0, 3, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mainPath, stagingPath := paths(t)
			appendTable(t, mainPath, lake.RoleMain, rows(logA, day0, tc.main...))
			appendTable(t, stagingPath, lake.RoleStaging, rows(logA, day0.Add(time.Hour), tc.staging...))
			var logs bytes.Buffer
			res, err := Merge(t.Context(), mainPath, stagingPath, Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
			if err != nil {
				t.Fatalf("Merge = %v", err)
			}
			if got, want := tableKeys(t, mainPath), keysOf(logA, tc.want...); !slices.Equal(got, want) {
				t.Errorf("main keys = %v, want %v", got, want)
			}
			if res.Inserted != tc.inserted || res.Skipped != tc.skipped || res.StagingRows != tc.staged {
				t.Errorf("Merge totals = %+v, want inserted %d skipped %d staging %d", res.Totals, tc.inserted, tc.skipped, tc.staged)
			}
			if res.Inserted+res.Skipped != res.StagingRows {
				t.Errorf("inserted %d + skipped %d != staging rows %d", res.Inserted, res.Skipped, res.StagingRows)
			}
			// AC3.4: the staging directory is gone.
			if exists(stagingPath) {
				t.Errorf("staging %s exists after a successful merge", stagingPath)
			}
			if !res.StagingRetired || !res.Retire.DirectoryDeleted {
				t.Errorf("Merge result = %+v, want staging retired and deleted", res)
			}
			// HV1: one structured line with the three totals.
			line := logs.String()
			for _, want := range []string{`"msg":"merge complete"`, `"total_inserted":` + itoa(tc.inserted), `"total_skipped":` + itoa(tc.skipped), `"total_staging_rows":` + itoa(tc.staged)} {
				if !strings.Contains(line, want) {
					t.Errorf("logs = %s, want %s", line, want)
				}
			}
		})
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestMergeIdempotent covers AC3.3: merging the same staging data twice
// leaves main identical.
func TestMergeIdempotent(t *testing.T) {
	mainPath, stagingPath := paths(t)
	appendTable(t, mainPath, lake.RoleMain, rows(logA, day0, 10, 11))
	staged := rows(logA, day0.Add(time.Hour), 12, 13)
	appendTable(t, stagingPath, lake.RoleStaging, staged)
	first, err := Merge(t.Context(), mainPath, stagingPath, Options{})
	if err != nil {
		t.Fatalf("first Merge = %v", err)
	}
	after1 := tableRows(t, mainPath)
	appendTable(t, stagingPath, lake.RoleStaging, staged)
	second, err := Merge(t.Context(), mainPath, stagingPath, Options{})
	if err != nil {
		t.Fatalf("second Merge = %v", err)
	}
	after2 := tableRows(t, mainPath)
	if got, want := tableKeys(t, mainPath), keysOf(logA, 10, 11, 12, 13); !slices.Equal(got, want) {
		t.Errorf("main keys = %v, want %v", got, want)
	}
	if !rowsEqual(after1, after2) {
		t.Errorf("main changed on the second merge: %d rows, then %d", len(after1), len(after2))
	}
	if first.Inserted != 2 || second.Inserted != 0 || second.Skipped != 2 {
		t.Errorf("totals = %+v then %+v, want 2 inserted then 0 inserted 2 skipped", first.Totals, second.Totals)
	}
}

func rowsEqual(a, b []record.Row) bool {
	return slices.EqualFunc(a, b, func(x, y record.Row) bool {
		return x.SourceURL == y.SourceURL && x.CertIndex == y.CertIndex && x.SHA256 == y.SHA256 &&
			x.Seen.Equal(y.Seen) && bytes.Equal(x.AsDER, y.AsDER) && slices.Equal(x.Chain, y.Chain) &&
			slices.Equal(x.AllDomains, y.AllDomains) && x.SeenDate == y.SeenDate
	})
}

// TestMergeNothingStaged covers AC4.1: a missing or empty staging table is
// a success with zero counts.
func TestMergeNothingStaged(t *testing.T) {
	tests := []struct {
		name   string
		create bool
	}{
		{"missing staging", false},
		{"empty staging", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mainPath, stagingPath := paths(t)
			appendTable(t, mainPath, lake.RoleMain, rows(logA, day0, 10))
			if tc.create {
				appendTable(t, stagingPath, lake.RoleStaging)
			}
			res, err := Merge(t.Context(), mainPath, stagingPath, Options{})
			if err != nil {
				t.Fatalf("Merge = %v, want nil", err)
			}
			if res.Totals != (Totals{}) || res.Batches != 0 {
				t.Errorf("Merge = %+v, want zero counts", res)
			}
			if got := tableKeys(t, mainPath); !slices.Equal(got, keysOf(logA, 10)) {
				t.Errorf("main keys = %v, want [10]", got)
			}
		})
	}
}

// TestMergeCreatesMain covers AC4.2.
func TestMergeCreatesMain(t *testing.T) {
	mainPath, stagingPath := paths(t)
	appendTable(t, stagingPath, lake.RoleStaging, rows(logA, day0, 10, 11, 12))
	res, err := Merge(t.Context(), mainPath, stagingPath, Options{})
	if err != nil {
		t.Fatalf("Merge = %v", err)
	}
	if got, want := tableKeys(t, mainPath), keysOf(logA, 10, 11, 12); !slices.Equal(got, want) {
		t.Errorf("main keys = %v, want %v", got, want)
	}
	if res.Inserted != 3 || res.Skipped != 0 {
		t.Errorf("totals = %+v, want 3 inserted", res.Totals)
	}
	mt, err := lake.Open(t.Context(), mainPath, lake.Options{Role: lake.RoleMain})
	if err != nil || mt.Role() != lake.RoleMain {
		t.Errorf("Open(main) = %v, %v; want an unmarked main table", mt, err)
	}
}

// TestMergeBatchFailureKeepsStaging covers AC4.3 with a real failure that
// holds even for root: main's partition directory is a regular file, so no
// data file can be created in it.
func TestMergeBatchFailureKeepsStaging(t *testing.T) {
	mainPath, stagingPath := paths(t)
	appendTable(t, mainPath, lake.RoleMain, rows(logA, day0, 10))
	appendTable(t, stagingPath, lake.RoleStaging, rows(logA, day0.Add(24*time.Hour), 11, 12))
	blocker := filepath.Join(mainPath, "seen_date="+day0.Add(24*time.Hour).Format(time.DateOnly))
	if err := os.WriteFile(blocker, []byte("not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := tableRows(t, stagingPath)
	_, err := Merge(t.Context(), mainPath, stagingPath, Options{})
	if err == nil {
		t.Fatal("Merge = nil, want a batch error")
	}
	t.Logf("Merge = %v", err)
	if !strings.Contains(err.Error(), "merge batch 0") {
		t.Errorf("Merge = %v, want the batch named", err)
	}
	if !exists(stagingPath) || !rowsEqual(tableRows(t, stagingPath), before) {
		t.Errorf("staging changed after a failed merge")
	}
	if got := tableKeys(t, mainPath); !slices.Equal(got, keysOf(logA, 10)) {
		t.Errorf("main keys = %v, want [10]", got)
	}
	if stray := strayFiles(t, mainPath); len(stray) > 0 {
		t.Errorf("failed merge left %v in main", stray)
	}
	// Fixed, the rerun completes.
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	if _, err := Merge(t.Context(), mainPath, stagingPath, Options{}); err != nil {
		t.Fatalf("rerun Merge = %v", err)
	}
	if got, want := tableKeys(t, mainPath), keysOf(logA, 10, 11, 12); !slices.Equal(got, want) {
		t.Errorf("main keys after rerun = %v, want %v", got, want)
	}
}

// TestMergeDuplicatesInsideStaging: the same key in two staging files ends
// up once in main, as the earliest seen row (fixes Q8).
func TestMergeDuplicatesInsideStaging(t *testing.T) {
	// CopyChunkRows 1 writes each staging file's new rows with its own COPY.
	for _, chunk := range []int64{0, 1} {
		t.Run(fmt.Sprintf("CopyChunkRows%d", chunk), func(t *testing.T) {
			testMergeDuplicatesInsideStaging(t, chunk)
		})
	}
}

func testMergeDuplicatesInsideStaging(t *testing.T, chunk int64) {
	mainPath, stagingPath := paths(t)
	early, late := day0, day0.Add(2*time.Hour)
	appendTable(t, stagingPath, lake.RoleStaging,
		rows(logA, late, 10, 11, 12),
		rows(logA, early, 11, 12, 13),
		rows(logA, late, 12))
	res, err := Merge(t.Context(), mainPath, stagingPath, Options{BatchRows: 1, CopyChunkRows: chunk})
	if err != nil {
		t.Fatalf("Merge = %v", err)
	}
	got := tableRows(t, mainPath)
	if keys := tableKeys(t, mainPath); !slices.Equal(keys, keysOf(logA, 10, 11, 12, 13)) {
		t.Fatalf("main keys = %v, want [10 11 12 13]", keys)
	}
	for _, r := range got {
		want := early
		if r.CertIndex == 10 {
			want = late
		}
		if !r.Seen.Equal(want) {
			t.Errorf("row %d seen = %v, want %v (the earliest)", r.CertIndex, r.Seen, want)
		}
	}
	if res.StagingRows != 7 || res.Inserted != 4 || res.Skipped != 3 || res.Batches != 1 {
		t.Errorf("Merge = %+v (batches %d), want 7 staged, 4 inserted, 3 skipped, 1 batch", res.Totals, res.Batches)
	}
}

// TestMergeBatchRetryIsNoop: a batch run again after its commit landed
// commits nothing and reports the same counts.
func TestMergeBatchRetryIsNoop(t *testing.T) {
	ctx := t.Context()
	mainPath, stagingPath := paths(t)
	appendTable(t, mainPath, lake.RoleMain, rows(logA, day0, 10, 11))
	appendTable(t, stagingPath, lake.RoleStaging, rows(logA, day0, 11, 12, 13), rows(logA, day0, 13))
	mt, st := openPair(t, mainPath, stagingPath)
	plan, err := PlanMerge(ctx, st, PlanOptions{MainPath: mainPath})
	if err != nil || len(plan.Batches) != 1 {
		t.Fatalf("PlanMerge = %+v, %v; want one batch", plan, err)
	}
	// One-row COPYs: every staging file is written on its own. The retry
	// takes the fast path: the txn, not the chunking, makes it a no-op.
	first, err := MergeBatch(ctx, mt, st, plan.Ref(), plan.Batches[0], BatchOptions{CopyChunkRows: 1})
	if err != nil {
		t.Fatalf("MergeBatch = %v", err)
	}
	snap1, _ := mt.Snapshot(ctx)
	second, err := MergeBatch(ctx, mt, st, plan.Ref(), plan.Batches[0], BatchOptions{})
	if err != nil {
		t.Fatalf("retried MergeBatch = %v", err)
	}
	snap2, _ := mt.Snapshot(ctx)
	if first.AlreadyCommitted || !second.AlreadyCommitted {
		t.Errorf("AlreadyCommitted = %v then %v, want false then true", first.AlreadyCommitted, second.AlreadyCommitted)
	}
	if first.Inserted != 2 || first.Skipped != 2 || first.StagingRows != 4 || first.DuplicatesInStaging != 1 {
		t.Errorf("first = %+v, want 4 staged, 2 inserted, 2 skipped, 1 duplicate", first)
	}
	if second.Inserted != first.Inserted || second.Skipped != first.Skipped || second.StagingRows != first.StagingRows || second.MainVersion != first.MainVersion {
		t.Errorf("retry = %+v, want the counts and version of %+v", second, first)
	}
	if snap2.Version != snap1.Version {
		t.Errorf("main version %d -> %d after a retry, want no commit", snap1.Version, snap2.Version)
	}
	if got := tableKeys(t, mainPath); !slices.Equal(got, keysOf(logA, 10, 11, 12, 13)) {
		t.Errorf("main keys = %v", got)
	}
}

// TestMergeBatchConcurrentAppend: a live writer appending to main while a
// batch runs makes the batch redo its read only when the append holds
// some of the batch's new keys; main never holds a key twice.
func TestMergeBatchConcurrentAppend(t *testing.T) {
	tests := []struct {
		name         string
		live         []record.Row
		wantAttempts int
		wantInserted int64
	}{
		{"overlapping keys", rows(logA, day0, 12, 13), 2, 1},
		{"other log", rows(logB, day0, 12, 13), 1, 3},
		{"same log, other range", rows(logA, day0, 500, 501), 1, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			mainPath, stagingPath := paths(t)
			appendTable(t, mainPath, lake.RoleMain, rows(logA, day0, 10))
			appendTable(t, stagingPath, lake.RoleStaging, rows(logA, day0.Add(time.Hour), 11, 12, 13))
			mt, st := openPair(t, mainPath, stagingPath)
			live, err := lake.Open(ctx, mainPath, lake.Options{Role: lake.RoleMain})
			if err != nil {
				t.Fatal(err)
			}
			plan, err := PlanMerge(ctx, st, PlanOptions{MainPath: mainPath})
			if err != nil {
				t.Fatal(err)
			}
			var appended atomic.Bool
			opts := BatchOptions{Progress: func(p Progress) {
				// After the anti-join read main, before the commit.
				if p.Phase == "write" && p.RowsWritten == 0 && !appended.Swap(true) {
					if _, err := live.Append(ctx, tc.live, lake.CommitOptions{}); err != nil {
						t.Errorf("live Append = %v", err)
					}
				}
			}}
			res, err := MergeBatch(ctx, mt, st, plan.Ref(), plan.Batches[0], opts)
			if err != nil {
				t.Fatalf("MergeBatch = %v", err)
			}
			if res.Attempts != tc.wantAttempts || res.Inserted != tc.wantInserted || res.Inserted+res.Skipped != res.StagingRows {
				t.Errorf("MergeBatch = %+v, want %d attempts, %d inserted", res, tc.wantAttempts, tc.wantInserted)
			}
			if stray := strayFiles(t, mainPath); len(stray) > 0 {
				t.Errorf("redone batch left %v in main", stray)
			}
			keys := tableKeys(t, mainPath)
			if dup := duplicates(keys); len(dup) > 0 {
				t.Errorf("main holds keys twice: %v", dup)
			}
			for _, k := range keysOf(logA, 10, 11, 12, 13) {
				if !slices.Contains(keys, k) {
					t.Errorf("main lacks %v", k)
				}
			}
		})
	}
}

func duplicates(keys []key) []key {
	var out []key
	for i := 1; i < len(keys); i++ {
		if keys[i] == keys[i-1] {
			out = append(out, keys[i])
		}
	}
	return out
}

// TestMergeBatchGivesUpAfterMaxAttempts: a writer that takes the batch's
// keys on every attempt makes the batch fail after MaxAttempts, naming it.
func TestMergeBatchGivesUpAfterMaxAttempts(t *testing.T) {
	ctx := t.Context()
	mainPath, stagingPath := paths(t)
	appendTable(t, stagingPath, lake.RoleStaging, rows(logA, day0, span(1, 20)...))
	mt, st := openPair(t, mainPath, stagingPath)
	live, err := lake.Open(ctx, mainPath, lake.Options{Role: lake.RoleMain})
	if err != nil {
		t.Fatal(err)
	}
	plan, _ := PlanMerge(ctx, st, PlanOptions{MainPath: mainPath})
	next := uint64(1)
	opts := BatchOptions{MaxAttempts: 3, Progress: func(p Progress) {
		if p.Phase == "write" && p.RowsWritten == 0 {
			live.Append(ctx, rows(logA, day0, next), lake.CommitOptions{})
			next++
		}
	}}
	_, err = MergeBatch(ctx, mt, st, plan.Ref(), plan.Batches[0], opts)
	if err == nil || !strings.Contains(err.Error(), "merge batch 0") || !strings.Contains(err.Error(), "attempt 3") {
		t.Fatalf("MergeBatch = %v, want batch 0 failing at attempt 3", err)
	}
	if got := tableKeys(t, mainPath); !slices.Equal(got, keysOf(logA, 1, 2, 3)) {
		t.Errorf("main keys = %v, want only the live writer's [1 2 3]", got)
	}
	if stray := strayFiles(t, mainPath); len(stray) > 0 {
		t.Errorf("abandoned attempts left %v in main", stray)
	}
}

// TestRetireKeepsConcurrentBackfill: rows a backfill stages after the plan
// survive the retirement, and the directory is kept (fixes Q11).
func TestRetireKeepsConcurrentBackfill(t *testing.T) {
	ctx := t.Context()
	mainPath, stagingPath := paths(t)
	appendTable(t, stagingPath, lake.RoleStaging, rows(logA, day0, 10, 11))
	mt, st := openPair(t, mainPath, stagingPath)
	plan, err := PlanMerge(ctx, st, PlanOptions{MainPath: mainPath})
	if err != nil {
		t.Fatal(err)
	}
	// The backfill commits to staging between the plan and the retirement.
	appendTable(t, stagingPath, lake.RoleStaging, rows(logA, day0, 20, 21))
	for _, b := range plan.Batches {
		if _, err := MergeBatch(ctx, mt, st, plan.Ref(), b, BatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	rr, err := Retire(ctx, mt, st, plan, RetireOptions{})
	if err != nil {
		t.Fatalf("Retire = %v", err)
	}
	if rr.DirectoryDeleted || rr.RemovedFiles != 1 || rr.LiveFilesLeft != 1 || rr.DeletedFiles != 1 {
		t.Errorf("Retire = %+v, want 1 file removed and deleted, 1 left, directory kept", rr)
	}
	if got := tableKeys(t, stagingPath); !slices.Equal(got, keysOf(logA, 20, 21)) {
		t.Errorf("staging keys = %v, want the backfill's [20 21]", got)
	}
	if got := tableKeys(t, mainPath); !slices.Equal(got, keysOf(logA, 10, 11)) {
		t.Errorf("main keys = %v, want [10 11]", got)
	}
	// Retire again: nothing more to do, nothing lost.
	if rr2, err := Retire(ctx, mt, st, plan, RetireOptions{}); err != nil || rr2.RemovedFiles != 0 || rr2.DirectoryDeleted {
		t.Errorf("second Retire = %+v, %v; want a no-op", rr2, err)
	}
	// The next merge moves the backfill's rows and deletes the directory.
	res, err := Merge(ctx, mainPath, stagingPath, Options{})
	if err != nil || res.Inserted != 2 || !res.Retire.DirectoryDeleted {
		t.Fatalf("next Merge = %+v, %v; want 2 inserted and staging deleted", res, err)
	}
	if got := tableKeys(t, mainPath); !slices.Equal(got, keysOf(logA, 10, 11, 20, 21)) {
		t.Errorf("main keys = %v", got)
	}
}

// TestRetireRefusesIncompletePlan: Retire checks every batch is in main.
func TestRetireRefusesIncompletePlan(t *testing.T) {
	ctx := t.Context()
	mainPath, stagingPath := paths(t)
	appendTable(t, stagingPath, lake.RoleStaging, rows(logA, day0, 1, 2), rows(logB, day0, 1, 2))
	mt, st := openPair(t, mainPath, stagingPath)
	plan, err := PlanMerge(ctx, st, PlanOptions{MainPath: mainPath, BatchRows: 2})
	if err != nil || len(plan.Batches) != 2 {
		t.Fatalf("PlanMerge = %+v, %v; want 2 batches", plan, err)
	}
	if _, err := MergeBatch(ctx, mt, st, plan.Ref(), plan.Batches[0], BatchOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = Retire(ctx, mt, st, plan, RetireOptions{})
	if !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), "[1]") {
		t.Errorf("Retire = %v, want ErrIncomplete naming batch 1", err)
	}
	if got := tableKeys(t, stagingPath); len(got) != 4 {
		t.Errorf("staging keys = %v, want all 4 kept", got)
	}
}

// TestMergeConformsToMainSchema: a staging table storing as_der as binary
// merges into a main table storing it as base64 text, rows unchanged.
func TestMergeConformsToMainSchema(t *testing.T) {
	ctx := t.Context()
	mainPath, stagingPath := paths(t)
	appendTable(t, mainPath, lake.RoleMain, rows(logA, day0, 1))
	st, err := lake.OpenOrCreate(ctx, stagingPath, lake.Options{Role: lake.RoleStaging, AsDERBinary: true})
	if err != nil {
		t.Fatal(err)
	}
	staged := rows(logA, day0, 2, 3)
	if _, err := st.Append(ctx, staged, lake.CommitOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Merge(ctx, mainPath, stagingPath, Options{}); err != nil {
		t.Fatalf("Merge = %v", err)
	}
	got := tableRows(t, mainPath)
	want := append(rows(logA, day0, 1), staged...)
	for i := range want {
		want[i].SeenDate = want[i].Seen.Format(time.DateOnly)
	}
	if !rowsEqual(got, want) {
		t.Errorf("main rows = %+v, want %+v", got, want)
	}
}
