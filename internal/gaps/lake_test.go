package gaps

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/certlake/certlake/internal/delta"
	"github.com/certlake/certlake/internal/keyindex"
	"github.com/certlake/certlake/internal/lake"
	"github.com/certlake/certlake/internal/lake/laketest"
	"github.com/certlake/certlake/internal/record"
)

// lakeLogs are the logs of the lake tests: A and B are in main, C only in
// staging, D nowhere.
var lakeLogs = []LogCeiling{{logA, 40_000}, {logB, 25_500}, {logC, 9_000}, {"https://ct.example.com/logs/d", 100}}

// windowRows returns window k of log url as a live ingester flushes it:
// indices [k*1000, k*1000+999] minus holes that differ per window.
func windowRows(url string, k int, seen time.Time) []record.Row {
	g := laketest.New(uint64(k), url)
	base := uint64(k) * 1000
	var out []record.Row
	for _, r := range [][2]uint64{{0, 100 + uint64(k%7)}, {130, 131}, {133, 600}, {640 + uint64(k%3), 1000}} {
		out = append(out, g.Rows(base+r[0], int(r[1]-r[0]), seen)...)
	}
	return out
}

// windowedLake writes main: one file per window k in [0, windows) holding
// logs A and B, each with holes.
func windowedLake(t *testing.T, path string, windows int) *lake.Table {
	t.Helper()
	tb, err := lake.OpenOrCreate(t.Context(), path, lake.Options{Role: lake.RoleMain})
	if err != nil {
		t.Fatal(err)
	}
	for k := range windows {
		appendWindow(t, tb, k)
	}
	return tb
}

func appendWindow(t *testing.T, tb *lake.Table, k int) {
	t.Helper()
	seen := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(k) * time.Hour)
	rows := append(windowRows(logA, k, seen), windowRows(logB, k, seen)...)
	if _, err := tb.Append(t.Context(), rows, lake.CommitOptions{}); err != nil {
		t.Fatal(err)
	}
}

func stagingLake(t *testing.T, path string) []lake.FileInfo {
	t.Helper()
	tb, err := lake.OpenOrCreate(t.Context(), path, lake.Options{Role: lake.RoleStaging})
	if err != nil {
		t.Fatal(err)
	}
	seen := time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC)
	for _, rows := range [][]record.Row{
		laketest.New(1, logA).Rows(3_100, 7, seen),  // fills part of a hole of main
		laketest.New(2, logA).Rows(30_000, 5, seen), // past main
		laketest.New(3, logC).Rows(50, 900, seen),   // a log only in staging
		laketest.New(4, logC).Rows(1_000, 10, seen),
	} {
		if _, err := tb.Append(t.Context(), rows, lake.CommitOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return liveFiles(t, tb)
}

func liveFiles(t *testing.T, tb *lake.Table) []lake.FileInfo {
	t.Helper()
	snap, err := tb.Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return tb.Files(snap)
}

// checkAgainstScan runs DetectLake and the full scan (Detect over every
// key of main and staging) in every mode and fails on any difference. It
// returns the stats of the first DetectLake.
func checkAgainstScan(t *testing.T, main *lake.Table, staging []lake.FileInfo) LakeStats {
	t.Helper()
	return checkAgainstScanWith(t, main, staging, LakeOptions{})
}

// checkAgainstScanWith is checkAgainstScan with lo.
func checkAgainstScanWith(t *testing.T, main *lake.Table, staging []lake.FileInfo, lo LakeOptions) LakeStats {
	t.Helper()
	db := openDB(t)
	keys, err := lake.UnionKeysSQL(liveFiles(t, main), staging)
	if err != nil {
		t.Fatal(err)
	}
	var first *LakeStats
	for _, opts := range []Options{{}, {IncludeFrontier: true}, {From: from(0)}, {From: from(2_500), IncludeFrontier: true}, {From: from(26_000), IncludeFrontier: true}} {
		want, err := Detect(t.Context(), db, keys, lakeLogs, opts)
		if err != nil {
			t.Fatal(err)
		}
		got, st, err := DetectLake(t.Context(), main, staging, lakeLogs, opts, lo)
		if err != nil {
			t.Fatalf("DetectLake(%s) error: %v", optsString(opts), err)
		}
		if first == nil {
			first = &st
		}
		if !slices.Equal(got, want) {
			t.Errorf("DetectLake(%s) = %d ranges, full scan %d; first difference %s", optsString(opts), len(got), len(want), firstDiff(got, want))
		}
		if len(want) == 0 {
			t.Errorf("full scan (%s) planned nothing: the case tests nothing", optsString(opts))
		}
	}
	return *first
}

// TestDetectLakeMatchesFullScan: the index-based detection answers as the
// full scan, and a second run reads no main file.
func TestDetectLakeMatchesFullScan(t *testing.T) {
	dir := t.TempDir()
	main := windowedLake(t, filepath.Join(dir, "main"), 12)
	staging := stagingLake(t, filepath.Join(dir, "staging"))
	if st := checkAgainstScan(t, main, staging); st.MainFiles != 12 || st.Indexed != 12 || st.StagingFiles != 4 {
		t.Errorf("first run = %+v, want 12 main files indexed, 4 staging files", st)
	}
	if st := checkAgainstScan(t, main, staging); st.Indexed != 0 || st.MainRowsRead != 0 {
		t.Errorf("second run = %+v, want no main file read", st)
	}
	// Main alone, and no main at all.
	checkAgainstScan(t, main, nil)
	got, _, err := DetectLake(t.Context(), nil, staging, lakeLogs, Options{From: from(0)}, LakeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want, err := Detect(t.Context(), openDB(t), mustKeys(t, nil, staging), lakeLogs, Options{From: from(0)})
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("DetectLake(no main) = %s, want %s (%v)", fmtRanges(got), fmtRanges(want), err)
	}
}

// TestDetectLakeStagingIndex: with a key index of staging, each staging
// file is read once (the answers stay the full scan's), a file staged
// later is read alone, and a retired one takes its keys with it.
func TestDetectLakeStagingIndex(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	main := windowedLake(t, filepath.Join(dir, "main"), 12)
	stagingPath := filepath.Join(dir, "staging")
	staging := stagingLake(t, stagingPath)
	st, err := lake.Open(ctx, stagingPath, lake.Options{Role: lake.RoleStaging})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := st.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lo := LakeOptions{StagingIndex: keyindex.TableStore(stagingPath), StagingTableID: snap.Metadata.ID}
	if s := checkAgainstScanWith(t, main, staging, lo); s.StagingFiles != 4 || s.StagingRows != 922 {
		t.Errorf("first run = %+v, want 4 staging files, 922 rows read", s)
	}
	if s := checkAgainstScanWith(t, main, staging, lo); s.StagingFiles != 4 || s.StagingRows != 0 {
		t.Errorf("second run = %+v, want 4 staging files, none read", s)
	}
	// A backfill stages one more file: only it is read.
	if _, err := st.Append(ctx, laketest.New(5, logB).Rows(25_100, 40, time.Date(2025, 7, 2, 0, 0, 0, 0, time.UTC)), lake.CommitOptions{}); err != nil {
		t.Fatal(err)
	}
	staging = liveFiles(t, st)
	if s := checkAgainstScanWith(t, main, staging, lo); s.StagingFiles != 5 || s.StagingRows != 40 {
		t.Errorf("after a new staging file = %+v, want 5 staging files, 40 rows read", s)
	}
	// A merge retires the first file (its keys are then in main only if
	// merged; here they are simply gone): the index answers without it.
	first := staging[0]
	latest, err := st.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixMilli()
	size := first.Size
	if _, err := st.Delta().Commit(ctx, latest.Version, []delta.Action{{Remove: &delta.Remove{Path: first.Path, DeletionTimestamp: &now, DataChange: true, Size: &size}}}, delta.CommitOptions{Operation: "DELETE"}); err != nil {
		t.Fatal(err)
	}
	staging = liveFiles(t, st)
	if s := checkAgainstScanWith(t, main, staging, lo); s.StagingFiles != 4 || s.StagingRows != 0 {
		t.Errorf("after a retired staging file = %+v, want 4 staging files, none read", s)
	}
	// The index lives in the staging table, which still deletes whole.
	if _, err := os.Stat(filepath.Join(stagingPath, keyindex.Dir)); err != nil {
		t.Fatalf("no staging key index: %v", err)
	}
	if err := lake.Delete(ctx, stagingPath, lake.DeleteOptions{StagingOnly: true}); err != nil {
		t.Errorf("lake.Delete(staging with its key index) = %v", err)
	}
}

func mustKeys(t *testing.T, main, staging []lake.FileInfo) string {
	t.Helper()
	k, err := lake.UnionKeysSQL(main, staging)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestDetectLakeAfterCompaction: a compaction between runs (10 files
// removed, 1 added holding their union, as OPTIMIZE does) costs reading the
// new file, and the answers stay the full scan's; a file removed without
// replacement takes its keys with it.
func TestDetectLakeAfterCompaction(t *testing.T) {
	dir := t.TempDir()
	main := windowedLake(t, filepath.Join(dir, "main"), 12)
	staging := stagingLake(t, filepath.Join(dir, "staging"))
	checkAgainstScan(t, main, staging)

	snap, err := main.Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	files := main.Files(snap)
	slices.SortFunc(files, func(a, b lake.FileInfo) int { return int(a.MinCertIndex) - int(b.MinCertIndex) })
	var paths []string
	var actions []delta.Action
	now := time.Now().UnixMilli()
	for _, f := range files[1:11] {
		paths = append(paths, "'"+f.LocalPath+"'")
		size := f.Size
		actions = append(actions, delta.Action{Remove: &delta.Remove{Path: f.Path, DeletionTimestamp: &now, DataChange: false,
			PartitionValues: map[string]string{lake.PartitionColumn: f.SeenDate}, Size: &size}})
	}
	rel := "seen_date=2025-06-01/part-00000-compacted.zstd.parquet"
	local := filepath.Join(main.Path(), filepath.FromSlash(rel))
	db := openDB(t)
	if _, err := db.ExecContext(t.Context(), fmt.Sprintf(`COPY (SELECT * FROM read_parquet([%s]) ORDER BY source_url, cert_index) TO '%s' (FORMAT parquet)`,
		joinComma(paths), local)); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(local)
	if err != nil {
		t.Fatal(err)
	}
	actions = append(actions, delta.Action{Add: &delta.Add{Path: rel, PartitionValues: map[string]string{lake.PartitionColumn: "2025-06-01"},
		Size: fi.Size(), ModificationTime: now, DataChange: false}})
	if _, err := main.Delta().Commit(t.Context(), snap.Version, actions, delta.CommitOptions{Operation: "OPTIMIZE"}); err != nil {
		t.Fatal(err)
	}
	if st := checkAgainstScan(t, main, staging); st.MainFiles != 3 || st.Indexed != 1 {
		t.Errorf("run after compaction = %+v, want 3 main files, only the compacted one read", st)
	}

	// Remove the last window without replacement: its keys are gone.
	snap, err = main.Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	last := files[11]
	size := last.Size
	if _, err := main.Delta().Commit(t.Context(), snap.Version, []delta.Action{{Remove: &delta.Remove{Path: last.Path,
		DeletionTimestamp: &now, DataChange: true, Size: &size}}}, delta.CommitOptions{Operation: "DELETE"}); err != nil {
		t.Fatal(err)
	}
	if st := checkAgainstScan(t, main, staging); st.MainFiles != 2 || st.Indexed != 0 {
		t.Errorf("run after a delete = %+v, want 2 main files, none read", st)
	}
}

func joinComma(s []string) string {
	var b bytes.Buffer
	for i, x := range s {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(x)
	}
	return b.String()
}

// TestDetectLakeConcurrentWriter: a file the live ingester adds between two
// runs is read by the second, once.
func TestDetectLakeConcurrentWriter(t *testing.T) {
	dir := t.TempDir()
	main := windowedLake(t, filepath.Join(dir, "main"), 6)
	staging := stagingLake(t, filepath.Join(dir, "staging"))
	checkAgainstScan(t, main, staging)
	// Another writer (another handle on the table) appends window 6.
	other, err := lake.Open(t.Context(), main.Path(), lake.Options{Role: lake.RoleMain})
	if err != nil {
		t.Fatal(err)
	}
	appendWindow(t, other, 6)
	if st := checkAgainstScan(t, main, staging); st.MainFiles != 7 || st.Indexed != 1 {
		t.Errorf("run after a concurrent append = %+v, want 7 main files, the new one read", st)
	}
}

// TestDetectLakeBadIndex: a corrupt index segment, or an index written by
// an earlier certlake (format 1, per-file ranges), means main's files are
// read again, and the answers are the full scan's.
func TestDetectLakeBadIndex(t *testing.T) {
	for _, bad := range []string{"corrupt", "format1"} {
		t.Run(bad, func(t *testing.T) {
			dir := t.TempDir()
			main := windowedLake(t, filepath.Join(dir, "main"), 5)
			staging := stagingLake(t, filepath.Join(dir, "staging"))
			ixDir := filepath.Join(main.Path(), keyindex.Dir)
			switch bad {
			case "corrupt":
				checkAgainstScan(t, main, staging)
				segs, _ := filepath.Glob(filepath.Join(ixDir, "*.kix"))
				if len(segs) != 1 {
					t.Fatalf("segments = %v, want 1", segs)
				}
				data, err := os.ReadFile(segs[0])
				if err != nil {
					t.Fatal(err)
				}
				data[len(data)/2] ^= 0xff
				if err := os.WriteFile(segs[0], data, 0o644); err != nil {
					t.Fatal(err)
				}
			case "format1":
				// What certlake wrote before exact key sets: ranges that
				// would claim every index of every file present.
				snap, _ := main.Snapshot(t.Context())
				var b bytes.Buffer
				fmt.Fprintf(&b, `{"format":1,"table_id":%q,"urls":[%q,%q],"files":[`, snap.Metadata.ID, logA, logB)
				for i, a := range snap.Files {
					if i > 0 {
						b.WriteString(",")
					}
					fmt.Fprintf(&b, `{"path":%q,"size":%d,"logs":[[0,0,99999,100000],[1,0,99999,100000]]}`, a.Path, a.Size)
				}
				b.WriteString("]}")
				var z bytes.Buffer
				zw := gzip.NewWriter(&z)
				zw.Write(b.Bytes())
				zw.Close()
				os.MkdirAll(ixDir, 0o755)
				if err := os.WriteFile(filepath.Join(ixDir, "00000000000000000001-old.json.gz"), z.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if st := checkAgainstScan(t, main, staging); st.Indexed != 5 {
				t.Errorf("run over a %s index = %+v, want all 5 main files read again", bad, st)
			}
			if st := checkAgainstScan(t, main, staging); st.Indexed != 0 {
				t.Errorf("next run = %+v, want no main file read", st)
			}
			left, _ := filepath.Glob(filepath.Join(ixDir, "*"))
			for _, p := range left {
				if filepath.Ext(p) != ".kix" {
					t.Errorf("index file %s left behind", p)
				}
			}
		})
	}
}
