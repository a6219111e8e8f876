package delta_test

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/RoaringBitmap/roaring/v2/roaring64"

	"github.com/certlake/certlake/internal/delta"
	"github.com/certlake/certlake/internal/keyindex"
	"github.com/certlake/certlake/internal/lake"
	"github.com/certlake/certlake/internal/lake/laketest"
)

const vacuumLog = "https://ct.example.com/logs/vacuum"

var (
	vacuumDay1 = time.Date(2025, 11, 25, 12, 0, 0, 0, time.UTC) // seen_date=2025-11-25
	vacuumDay2 = vacuumDay1.AddDate(0, 0, 1)                    // seen_date=2025-11-26
	vacuumDay3 = vacuumDay1.AddDate(0, 0, 2)                    // seen_date=2025-11-27
)

// appendDay appends n rows of one day starting at cert_index start and
// returns the relative paths of the data files the commit added.
func appendDay(t *testing.T, tbl *lake.Table, start uint64, n int, day time.Time) []string {
	t.Helper()
	before := liveSet(t, tbl.Path())
	g := laketest.New(start+1, vacuumLog)
	if _, err := tbl.Append(t.Context(), g.Rows(start, n, day), lake.CommitOptions{}); err != nil {
		t.Fatal(err)
	}
	var added []string
	for p := range liveSet(t, tbl.Path()) {
		if !before[p] {
			added = append(added, p)
		}
	}
	slices.Sort(added)
	return added
}

// liveSet returns the relative local paths of the table's live files.
func liveSet(t *testing.T, root string) map[string]bool {
	t.Helper()
	dt, err := delta.Open(t.Context(), root, delta.Options{})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := dt.Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, a := range snap.Files {
		rel, err := filepath.Rel(root, snap.LocalPath(a))
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.ToSlash(rel)] = true
	}
	return out
}

// orphans writes rows the way a writer killed before its commit leaves
// them: real data files in root's partition directories that no commit of
// root names. They are committed in a side table and moved into root.
func orphans(t *testing.T, root string, start uint64, n int, day time.Time) []string {
	t.Helper()
	side, err := lake.OpenOrCreate(t.Context(), filepath.Join(t.TempDir(), "side"), lake.Options{Role: lake.RoleMain})
	if err != nil {
		t.Fatal(err)
	}
	rels := appendDay(t, side, start, n, day)
	for _, rel := range rels {
		moveFile(t, filepath.Join(side.Path(), rel), filepath.Join(root, rel))
	}
	return rels
}

func moveFile(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}

// age sets the modification time of everything under dir to at.
func age(t *testing.T, dir string, at time.Time) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(p, at, at)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// fileState is a file's size and modification time, to tell it untouched.
type fileState struct {
	size int64
	mod  time.Time
}

// tree lists every file under dir (relative path to size and mtime).
func tree(t *testing.T, dir string) map[string]fileState {
	t.Helper()
	out := map[string]fileState{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = fileState{info.Size(), info.ModTime()}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// vacuumFixture is a main table after crashes: live files, a file a
// commit removed, orphans old and young, merge scratch directories, and
// main's key index.
type vacuumFixture struct {
	root    string
	version int64
	rows    int
	live    []string
	removed string // removed by the latest commit: a tombstone of the state
	// old orphans: one next to live files, one alone in its partition
	orphanShared, orphanAlone string
	orphanYoung               string
	scratchOld, scratchYoung  string // directories
}

func newVacuumFixture(t *testing.T) *vacuumFixture {
	t.Helper()
	ctx := t.Context()
	f := &vacuumFixture{root: filepath.Join(t.TempDir(), "main")}
	tbl, err := lake.OpenOrCreate(ctx, f.root, lake.Options{Role: lake.RoleMain})
	if err != nil {
		t.Fatal(err)
	}
	f.live = append(f.live, appendDay(t, tbl, 0, 100, vacuumDay1)...)
	f.live = append(f.live, appendDay(t, tbl, 100, 50, vacuumDay2)...)
	gone := appendDay(t, tbl, 150, 30, vacuumDay2)
	f.rows = 150
	if len(gone) != 1 {
		t.Fatalf("append of one day wrote %d files, want 1", len(gone))
	}
	f.removed = gone[0]

	// A commit removes a file (as retiring staging does); the file stays.
	dt := tbl.Delta()
	snap, err := dt.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixMilli()
	var rm []delta.Action
	for _, a := range snap.Files {
		if a.Path == delta.EncodePath(f.removed) {
			size := a.Size
			rm = append(rm, delta.Action{Remove: &delta.Remove{Path: a.Path, DeletionTimestamp: &now, DataChange: true, PartitionValues: a.PartitionValues, Size: &size}})
		}
	}
	if len(rm) != 1 {
		t.Fatalf("found %d adds for %s, want 1", len(rm), f.removed)
	}
	res, err := dt.Commit(ctx, snap.Version, rm, delta.CommitOptions{Operation: "DELETE"})
	if err != nil {
		t.Fatal(err)
	}
	f.version = res.Version

	// Main's key index, a cache of the live files.
	ix, err := keyindex.Load(ctx, keyindex.TableStore(f.root), snap.Metadata.ID)
	if err != nil {
		t.Fatal(err)
	}
	keys := roaring64.New()
	keys.AddRange(0, 100)
	if err := ix.Save(ctx, []keyindex.File{{Path: snap.Files[0].Path, Size: snap.Files[0].Size, Rows: 100, Keys: keyindex.Keys{vacuumLog: keys}}}, nil); err != nil {
		t.Fatal(err)
	}

	// What crashed writers left: orphan data files and scratch directories.
	f.orphanShared = orphans(t, f.root, 1000, 20, vacuumDay1)[0]
	f.orphanAlone = orphans(t, f.root, 2000, 20, vacuumDay3)[0]
	f.scratchOld = delta.ScratchDirPrefix + "1111"
	f.scratchYoung = delta.ScratchDirPrefix + "2222"
	for i, dir := range []string{f.scratchOld, f.scratchYoung} {
		side := filepath.Join(t.TempDir(), "side")
		rel := orphans(t, side, uint64(3000+100*i), 10, vacuumDay1)[0]
		moveFile(t, filepath.Join(side, rel), filepath.Join(f.root, dir, "c0", "part-0.parquet"))
	}

	// Everything is a week and a day old, but one orphan and one scratch
	// directory: a writer is working on them right now.
	age(t, f.root, time.Now().Add(-8*24*time.Hour))
	f.orphanYoung = orphans(t, f.root, 4000, 20, vacuumDay2)[0]
	age(t, filepath.Join(f.root, f.scratchYoung), time.Now())
	return f
}

func TestVacuum(t *testing.T) {
	ctx := t.Context()
	f := newVacuumFixture(t)
	logBefore := tree(t, filepath.Join(f.root, "_delta_log"))
	indexBefore := tree(t, filepath.Join(f.root, keyindex.Dir))
	if len(indexBefore) == 0 {
		t.Fatal("fixture has no key index")
	}
	dt, err := delta.Open(ctx, f.root, delta.Options{})
	if err != nil {
		t.Fatal(err)
	}
	snapBefore, err := dt.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// A dry run lists and deletes nothing.
	treeBefore := tree(t, f.root)
	dry, err := delta.Vacuum(ctx, f.root, delta.VacuumOptions{DryRun: true})
	if err != nil {
		t.Fatalf("Vacuum(dry run) = %v", err)
	}
	if got := tree(t, f.root); !maps.Equal(got, treeBefore) {
		t.Errorf("Vacuum(dry run) changed the directory: %d files before, %d after", len(treeBefore), len(got))
	}
	for _, dir := range []string{f.scratchOld, "seen_date=2025-11-27"} {
		if !exists(filepath.Join(f.root, dir)) {
			t.Errorf("Vacuum(dry run) removed directory %s", dir)
		}
	}

	res, err := delta.Vacuum(ctx, f.root, delta.VacuumOptions{})
	if err != nil {
		t.Fatalf("Vacuum() = %v", err)
	}
	wantDeleted := []string{f.scratchOld + "/c0/part-0.parquet", f.orphanShared, f.orphanAlone}
	slices.Sort(wantDeleted)
	var got []string
	var bytes int64
	for _, vf := range res.Files {
		got = append(got, vf.Path)
		bytes += vf.Size
	}
	if !slices.Equal(got, wantDeleted) || res.Count != len(wantDeleted) || res.Bytes != bytes || bytes <= 0 {
		t.Errorf("Vacuum() deleted %v (count %d, %d bytes), want %v (%d bytes from the sizes)", got, res.Count, res.Bytes, wantDeleted, bytes)
	}
	var dryGot []string
	for _, vf := range dry.Files {
		dryGot = append(dryGot, vf.Path)
	}
	if !slices.Equal(dryGot, got) || dry.Bytes != res.Bytes || !slices.Equal(dry.Dirs, res.Dirs) || !dry.DryRun {
		t.Errorf("Vacuum(dry run) = %v, %d bytes, dirs %v; want what the real run did: %v, %d bytes, dirs %v",
			dryGot, dry.Bytes, dry.Dirs, got, res.Bytes, res.Dirs)
	}
	wantDirs := []string{f.scratchOld + "/c0", f.scratchOld, "seen_date=2025-11-27"}
	if !slices.Equal(res.Dirs, wantDirs) {
		t.Errorf("Vacuum() removed directories %v, want %v", res.Dirs, wantDirs)
	}
	if res.Young != 2 || res.Version != f.version || res.Retention != delta.DefaultVacuumRetention {
		t.Errorf("Vacuum() young, version, retention = %d, %d, %s; want 2, %d, %s", res.Young, res.Version, res.Retention, f.version, delta.DefaultVacuumRetention)
	}

	tests := []struct {
		name string
		rel  string
		want bool // still there
	}{
		{"LiveFileKept", f.live[0], true},
		{"LiveFileOfOtherDayKept", f.live[1], true},
		{"RemovedFileKept", f.removed, true},
		{"YoungOrphanKept", f.orphanYoung, true},
		{"YoungScratchKept", f.scratchYoung + "/c0/part-0.parquet", true},
		{"OrphanDeleted", f.orphanShared, false},
		{"LoneOrphanDeleted", f.orphanAlone, false},
		{"EmptiedPartitionRemoved", "seen_date=2025-11-27", false},
		{"PartitionWithLiveFilesKept", "seen_date=2025-11-25", true},
		{"ScratchDirRemoved", f.scratchOld, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := exists(filepath.Join(f.root, tt.rel)); got != tt.want {
				t.Errorf("after Vacuum(), exists(%s) = %v, want %v", tt.rel, got, tt.want)
			}
		})
	}
	if got := tree(t, filepath.Join(f.root, "_delta_log")); !maps.Equal(got, logBefore) {
		t.Errorf("Vacuum() changed _delta_log: %d files before, %d after", len(logBefore), len(got))
	}
	if got := tree(t, filepath.Join(f.root, keyindex.Dir)); !maps.Equal(got, indexBefore) {
		t.Errorf("Vacuum() changed %s: %v before, %v after", keyindex.Dir, indexBefore, got)
	}

	// The table reads the same: snapshot, rows, and time travel.
	tbl, err := lake.Open(ctx, f.root, lake.Options{Role: lake.RoleMain})
	if err != nil {
		t.Fatalf("lake.Open after Vacuum() = %v", err)
	}
	snap, err := tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Version != snapBefore.Version || !slices.EqualFunc(snap.Files, snapBefore.Files, func(a, b delta.Add) bool { return a.Path == b.Path && a.Size == b.Size }) {
		t.Errorf("snapshot after Vacuum() = version %d, %d files; want version %d, %d files", snap.Version, len(snap.Files), snapBefore.Version, len(snapBefore.Files))
	}
	rows, err := lake.ReadRows(ctx, lake.Files(snap))
	if err != nil {
		t.Fatalf("ReadRows after Vacuum() = %v", err)
	}
	if len(rows) != f.rows {
		t.Errorf("ReadRows after Vacuum() = %d rows, want %d", len(rows), f.rows)
	}
	for v := int64(0); v <= f.version; v++ {
		s, err := tbl.SnapshotAt(ctx, v)
		if err != nil {
			t.Fatalf("SnapshotAt(%d) after Vacuum() = %v", v, err)
		}
		if _, err := lake.ReadRows(ctx, lake.Files(s)); err != nil {
			t.Errorf("ReadRows(version %d) after Vacuum() = %v", v, err)
		}
	}

	// A second vacuum finds nothing more.
	again, err := delta.Vacuum(ctx, f.root, delta.VacuumOptions{})
	if err != nil || again.Count != 0 || len(again.Dirs) != 0 {
		t.Errorf("second Vacuum() = %d files, dirs %v, %v; want nothing", again.Count, again.Dirs, err)
	}
}

func TestVacuumRetention(t *testing.T) {
	tests := []struct {
		retention time.Duration
		wantErr   bool
		deleted   int // of the fixture's two old orphans and old scratch file (8 days old)
	}{
		{0, false, 3},                         // the default, 7 days
		{time.Hour, true, 0},                  // too short: files may be in flight
		{2 * time.Hour, true, 0},              // the longest activity's timeout: a held-up writer outlives it
		{24*time.Hour - time.Second, true, 0}, // just under the minimum
		{-time.Hour, true, 0},
		{24 * time.Hour, false, 3},
		{9 * 24 * time.Hour, false, 0}, // the orphans are younger than that
	}
	for _, tt := range tests {
		t.Run(tt.retention.String(), func(t *testing.T) {
			f := newVacuumFixture(t)
			before := tree(t, f.root)
			res, err := delta.Vacuum(t.Context(), f.root, delta.VacuumOptions{Retention: tt.retention})
			if tt.wantErr {
				if !errors.Is(err, delta.ErrRetentionTooShort) || !strings.Contains(err.Error(), "in flight") {
					t.Errorf("Vacuum(retention %s) = %v, want ErrRetentionTooShort saying why", tt.retention, err)
				}
				if got := tree(t, f.root); !maps.Equal(got, before) {
					t.Errorf("Vacuum(retention %s) changed the directory after refusing", tt.retention)
				}
				return
			}
			if err != nil || res.Count != tt.deleted {
				t.Errorf("Vacuum(retention %s) = %d files, %v; want %d", tt.retention, res.Count, err, tt.deleted)
			}
		})
	}
}

// TestVacuumKeepsWhatTheLogNames follows two removed files through log
// cleanup. a's tombstone expired (a checkpoint dropped it): a is kept while
// a commit JSON names it, then while the only checkpoint time travel can
// start from lists it, and deleted once nothing names it. b's tombstone is
// recent: the latest state keeps it, so b is kept throughout.
func TestVacuumKeepsWhatTheLogNames(t *testing.T) {
	ctx := t.Context()
	root := filepath.Join(t.TempDir(), "main")
	tbl, err := lake.OpenOrCreate(ctx, root, lake.Options{Role: lake.RoleMain})
	if err != nil {
		t.Fatal(err)
	}
	dt := tbl.Delta()
	checkpoint := func(want int64) {
		t.Helper()
		if v, err := dt.Checkpoint(ctx); err != nil || v != want {
			t.Fatalf("Checkpoint() = %d, %v; want %d", v, err, want)
		}
	}
	a := appendDay(t, tbl, 0, 40, vacuumDay1)[0]   // v1
	b := appendDay(t, tbl, 200, 20, vacuumDay1)[0] // v2
	appendDay(t, tbl, 40, 40, vacuumDay2)          // v3
	checkpoint(3)
	snap, err := dt.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// v4 removes a a month ago by its timestamp and b now: the checkpoint
	// at v5 drops a's expired tombstone and keeps b's.
	month, now := time.Now().AddDate(0, -1, 0).UnixMilli(), time.Now().UnixMilli()
	var rm []delta.Action
	for _, x := range snap.Files {
		switch x.Path {
		case delta.EncodePath(a):
			rm = append(rm, delta.Action{Remove: &delta.Remove{Path: x.Path, DeletionTimestamp: &month, DataChange: true, PartitionValues: x.PartitionValues}})
		case delta.EncodePath(b):
			rm = append(rm, delta.Action{Remove: &delta.Remove{Path: x.Path, DeletionTimestamp: &now, DataChange: true, PartitionValues: x.PartitionValues}})
		}
	}
	if len(rm) != 2 {
		t.Fatalf("adds for %s and %s not found in %v", a, b, snap.Files)
	}
	if _, err := dt.Commit(ctx, snap.Version, rm, delta.CommitOptions{Operation: "DELETE"}); err != nil {
		t.Fatal(err)
	}
	appendDay(t, tbl, 80, 40, vacuumDay3) // v5
	checkpoint(5)
	age(t, root, time.Now().Add(-8*24*time.Hour))
	logDir := filepath.Join(root, "_delta_log")
	rmLog := func(names ...string) {
		for _, n := range names {
			if err := os.Remove(filepath.Join(logDir, n)); err != nil {
				t.Fatal(err)
			}
		}
	}
	commit := func(v int) string { return fmt.Sprintf("%020d.json", v) }

	steps := []struct {
		name    string
		cleanup func()
		aKept   bool
	}{
		{"RemovedByACommitJSON", func() {}, true},
		// Commits 0-4 cleaned up: versions 3 (from its checkpoint) and 5
		// are still readable, and version 3 lists a.
		{"ListedByAnOlderCheckpoint", func() { rmLog(commit(0), commit(1), commit(2), commit(3), commit(4)) }, true},
		// Only checkpoint 5 and commit 5 remain: nothing names a, and
		// only the state's tombstone names b.
		{"NamedByNothing", func() { rmLog(fmt.Sprintf("%020d.checkpoint.parquet", 3)) }, false},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			s.cleanup()
			res, err := delta.Vacuum(ctx, root, delta.VacuumOptions{})
			if err != nil {
				t.Fatalf("Vacuum() = %v", err)
			}
			if got := exists(filepath.Join(root, a)); got != s.aKept {
				t.Errorf("after Vacuum() (deleted %v), exists(%s) = %v, want %v", res.Files, a, got, s.aKept)
			}
			if !exists(filepath.Join(root, b)) {
				t.Errorf("after Vacuum() (deleted %v), %s (tombstone in the latest state) is gone", res.Files, b)
			}
			want := 0
			if !s.aKept {
				want = 1
			}
			if res.Count != want || (want == 1 && res.Files[0].Path != a) {
				t.Errorf("Vacuum() deleted %v, want %d file (%s)", res.Files, want, a)
			}
		})
	}
	s, err := dt.SnapshotAt(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	if rows, err := lake.ReadRows(ctx, lake.Files(s)); err != nil || len(rows) != 80 {
		t.Errorf("ReadRows(version 5) after Vacuum() = %d rows, %v; want 80", len(rows), err)
	}
}

func TestVacuumErrors(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "empty", "_delta_log"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		root string
		want error
	}{
		{"Missing", filepath.Join(dir, "nope"), delta.ErrNotATable},
		{"NoLog", dir, delta.ErrNotATable},
		{"EmptyLog", filepath.Join(dir, "empty"), delta.ErrNotATable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := delta.Vacuum(t.Context(), tt.root, delta.VacuumOptions{}); !errors.Is(err, tt.want) {
				t.Errorf("Vacuum(%s) = %v, want %v", tt.root, err, tt.want)
			}
		})
	}
}

// TestVacuumSymlinkedRoot vacuums a table through a symlink to it, whose log
// names one file by an absolute URI of its real path: that file is kept,
// the orphan beside it is deleted.
func TestVacuumSymlinkedRoot(t *testing.T) {
	ctx := t.Context()
	real := filepath.Join(t.TempDir(), "main")
	tbl, err := lake.OpenOrCreate(ctx, real, lake.Options{Role: lake.RoleMain})
	if err != nil {
		t.Fatal(err)
	}
	appendDay(t, tbl, 0, 10, vacuumDay1) // v1
	abs := orphans(t, real, 100, 10, vacuumDay1)[0]
	info, err := os.Stat(filepath.Join(real, abs))
	if err != nil {
		t.Fatal(err)
	}
	// Written by hand: certlake's Commit refuses absolute paths, other
	// writers may not.
	add := fmt.Sprintf(`{"add":{"path":"file://%s","partitionValues":{"seen_date":"2025-11-25"},"size":%d,"modificationTime":0,"dataChange":true}}`+"\n",
		filepath.ToSlash(filepath.Join(real, abs)), info.Size())
	if err := os.WriteFile(filepath.Join(real, "_delta_log", fmt.Sprintf("%020d.json", 2)), []byte(add), 0o644); err != nil {
		t.Fatal(err)
	}
	orphan := orphans(t, real, 200, 10, vacuumDay1)[0]
	age(t, real, time.Now().Add(-8*24*time.Hour))
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	res, err := delta.Vacuum(ctx, link, delta.VacuumOptions{})
	if err != nil {
		t.Fatalf("Vacuum(%s) = %v", link, err)
	}
	if res.Count != 1 || res.Files[0].Path != orphan {
		t.Errorf("Vacuum(%s) deleted %v, want only %s", link, res.Files, orphan)
	}
	if !exists(filepath.Join(real, abs)) {
		t.Errorf("Vacuum(%s) deleted %s, which the log names by its absolute path", link, abs)
	}
}
