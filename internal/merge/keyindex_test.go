package merge

import (
	"os"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/certlake/certlake/internal/keyindex"
	"github.com/certlake/certlake/internal/lake"
	"github.com/certlake/certlake/internal/record"
)

// windowedMain appends, as a live ingester does, one commit per time window
// k in [0, windows): log A's indices [100k, 100k+99] and log B's [1000+100k,
// 1000+100k+99] interleaved in one file. Each file's stats then span both
// logs, so only per-log ranges can tell the files apart.
func windowedMain(t *testing.T, path string, windows int) *lake.Table {
	t.Helper()
	var groups [][]record.Row
	for k := range windows {
		var g []record.Row
		for i := range uint64(100) {
			seen := day0.Add(time.Duration(k) * time.Hour)
			g = append(g, row(logA, uint64(k)*100+i, seen), row(logB, 1000+uint64(k)*100+i, seen))
		}
		groups = append(groups, g)
	}
	return appendTable(t, path, lake.RoleMain, groups...)
}

func TestIndexMainReadsPerLogRanges(t *testing.T) {
	mainPath, _ := paths(t)
	mt := windowedMain(t, mainPath, 4)
	res, err := IndexMain(t.Context(), mt, IndexOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := (IndexResult{Files: 4, Indexed: 4, Rows: 800}); res != want {
		t.Fatalf("IndexMain = %+v, want %+v", res, want)
	}
	snap, err := mt.Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ix, err := keyindex.Load(t.Context(), keyindex.TableStore(mainPath), snap.Metadata.ID)
	if err != nil {
		t.Fatal(err)
	}
	var got [][]keyindex.LogRange
	for _, a := range snap.Files {
		f, ok := ix.Lookup(a.Path, a.Size)
		if !ok {
			t.Fatalf("file %s not indexed", a.Path)
		}
		got = append(got, f.Logs())
	}
	slices.SortFunc(got, func(a, b []keyindex.LogRange) int { return int(a[0].Min) - int(b[0].Min) })
	for k, logs := range got {
		want := []keyindex.LogRange{
			{SourceURL: logA, Min: uint64(k) * 100, Max: uint64(k)*100 + 99, Rows: 100},
			{SourceURL: logB, Min: 1000 + uint64(k)*100, Max: 1000 + uint64(k)*100 + 99, Rows: 100},
		}
		if !reflect.DeepEqual(logs, want) {
			t.Errorf("window %d: ranges = %+v, want %+v", k, logs, want)
		}
	}
	// A second call finds every file indexed and reads nothing.
	again, err := IndexMain(t.Context(), mt, IndexOptions{})
	if want := (IndexResult{Files: 4, Known: 4}); err != nil || again != want {
		t.Fatalf("IndexMain again = %+v, %v; want %+v", again, err, want)
	}
}

// With the index, a batch reads no main file: the files whose windows hold
// its keys answer from their key sets, and the merge is exactly the merge
// without it.
func TestMergeBatchReadsOnlyIndexedFilesThatHoldItsKeys(t *testing.T) {
	stagedA := append(span(150, 160), span(900, 905)...) // 150-160 in window 1; 900-905 new
	stagedB := []uint64{1005, 1006}                      // window 0
	for _, indexed := range []bool{false, true} {
		t.Run(map[bool]string{false: "StatsOnly", true: "Indexed"}[indexed], func(t *testing.T) {
			mainPath, stagingPath := paths(t)
			mt := windowedMain(t, mainPath, 4)
			// One file per fetched range, as a backfill stages them.
			appendTable(t, stagingPath, lake.RoleStaging,
				rows(logA, day0, stagedA[:11]...), rows(logA, day0, stagedA[11:]...), rows(logB, day0, stagedB...))
			if indexed {
				if _, err := IndexMain(t.Context(), mt, IndexOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			_, st := openPair(t, mainPath, stagingPath)
			plan, err := PlanMerge(t.Context(), st, PlanOptions{MainPath: mainPath})
			if err != nil || len(plan.Batches) != 1 {
				t.Fatalf("PlanMerge = %d batches, %v; want 1", len(plan.Batches), err)
			}
			br, err := MergeBatch(t.Context(), mt, st, plan.Ref(), plan.Batches[0], BatchOptions{})
			if err != nil {
				t.Fatal(err)
			}
			wantRead, wantIndexed := 4, 0 // every file's stats span both logs
			if indexed {
				// Windows 0 and 1 answer from their key sets; none is read.
				wantRead, wantIndexed = 0, 2
			}
			if br.MainFilesRead != wantRead || br.MainFilesIndexed != wantIndexed || br.MainFiles != 4 {
				t.Errorf("main files read = %d, from the index %d, of %d; want %d, %d of 4", br.MainFilesRead, br.MainFilesIndexed, br.MainFiles, wantRead, wantIndexed)
			}
			if br.Inserted != 6 || br.Skipped != 13 {
				t.Errorf("inserted %d, skipped %d; want 6, 13", br.Inserted, br.Skipped)
			}
			keys := tableKeys(t, mainPath)
			if len(keys) != 806 || len(slices.Compact(slices.Clone(keys))) != 806 {
				t.Errorf("main holds %d keys (%d distinct), want 806 once each", len(keys), len(slices.Compact(slices.Clone(keys))))
			}
		})
	}
}

// A main file that cannot be read is left out of the index (the batch that
// needs it reads it and fails naming the batch); the others are indexed.
func TestIndexMainSkipsUnreadableFile(t *testing.T) {
	mainPath, _ := paths(t)
	mt := windowedMain(t, mainPath, 3)
	snap, err := mt.Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	bad := snap.LocalPath(snap.Files[1])
	if err := os.WriteFile(bad, []byte("not parquet"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := IndexMain(t.Context(), mt, IndexOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Files != 3 || res.Indexed != 2 || res.Unreadable != 1 {
		t.Fatalf("IndexMain = %+v, want 3 files, 2 indexed, 1 unreadable", res)
	}
	ix, _ := keyindex.Load(t.Context(), keyindex.TableStore(mainPath), snap.Metadata.ID)
	if _, ok := ix.Lookup(snap.Files[1].Path, snap.Files[1].Size); ok {
		t.Errorf("unreadable file %s has an index entry", snap.Files[1].Path)
	}
}
