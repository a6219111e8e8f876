package delta

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/certlake/certlake/internal/storage"
)

// Edge 1: a file a vacuum deleted as abandoned (held for its commit longer
// than the retention) must not be committed: the log would name a missing
// file. The commit is refused and the table is unchanged.
func TestCommitRefusesAddOfMissingFile(t *testing.T) {
	ctx := t.Context()
	tbl := newTestTable(t, Options{})
	a := dataFile(t, tbl.Root(), "2024-01-01", "part-00000-held.zstd.parquet", 10)
	// Written two days ago and held (a paused worker); a vacuum with the
	// minimum retention takes it for abandoned.
	old := time.Now().Add(-48 * time.Hour)
	if err := os.Chtimes(localPath(tbl.Root(), a.Path), old, old); err != nil {
		t.Fatal(err)
	}
	res, err := Vacuum(ctx, tbl.Root(), VacuumOptions{Retention: MinVacuumRetention})
	if err != nil || res.Count != 1 {
		t.Fatalf("Vacuum() = %d files, %v; want the held file deleted", res.Count, err)
	}
	_, err = tbl.Commit(ctx, 0, []Action{{Add: &a}}, CommitOptions{})
	if !errors.Is(err, ErrInvalidAction) || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("Commit(add of a deleted file) = %v, want ErrInvalidAction saying the file does not exist", err)
	}
	// A file whose size differs from the add's is refused too.
	b := dataFile(t, tbl.Root(), "2024-01-01", "part-00001-short.zstd.parquet", 10)
	b.Size++
	if _, err := tbl.Commit(ctx, 0, []Action{{Add: &b}}, CommitOptions{}); !errors.Is(err, ErrInvalidAction) || !strings.Contains(err.Error(), "on disk") {
		t.Errorf("Commit(add with a wrong size) = %v, want ErrInvalidAction naming both sizes", err)
	}
	if v, err := tbl.LatestVersion(ctx); err != nil || v != 0 {
		t.Errorf("LatestVersion() = %d, %v; want 0 (nothing committed)", v, err)
	}
	if err := Validate(ctx, tbl.Root()); err != nil {
		t.Errorf("Validate() = %v", err)
	}
}

// Edge 2: a long-lived handle must not replay a recreated table's commits
// on top of the old table's state. The old table's txn would skip the new
// table's commit and its files would be listed as live.
func TestRefreshNoticesRecreatedTable(t *testing.T) {
	ctx := t.Context()
	root := filepath.Join(t.TempDir(), "table")
	old, err := Create(ctx, root, testMeta(), Protocol{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		a := dataFile(t, root, "2024-01-01", fmt.Sprintf("part-old-%d.parquet", i), 1)
		if _, err := old.Commit(ctx, int64(i), []Action{{Add: &a}}, CommitOptions{Txn: &Txn{AppID: "app", Version: int64(i + 1)}}); err != nil {
			t.Fatal(err)
		}
	}
	if s, err := old.Snapshot(ctx); err != nil || s.Version != 3 || s.Txns["app"] != 3 {
		t.Fatalf("Snapshot(old) = %+v, %v", s, err)
	}

	// The directory is deleted and a new table made there, with more
	// commits than the old one had and no txn.
	if err := Delete(ctx, root); err != nil {
		t.Fatal(err)
	}
	other, err := Create(ctx, root, testMeta(), Protocol{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 4 {
		a := dataFile(t, root, "2024-02-02", fmt.Sprintf("part-new-%d.parquet", i), 1)
		if _, err := other.Commit(ctx, int64(i), []Action{{Add: &a}}, CommitOptions{}); err != nil {
			t.Fatal(err)
		}
		want = append(want, a.Path)
	}

	// The old handle now sees the new table alone ...
	s, err := old.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range s.Files {
		got = append(got, f.Path)
	}
	if s.Version != 4 || !slices.Equal(got, want) || len(s.Txns) != 0 {
		t.Errorf("Snapshot(old handle) = v%d files %v txns %v; want v4 files %v and no txn", s.Version, got, s.Txns, want)
	}
	// ... and a commit through it with the old table's appId lands.
	a := dataFile(t, root, "2024-02-02", "part-new-app.parquet", 1)
	res, err := old.Commit(ctx, 4, []Action{{Add: &a}}, CommitOptions{Txn: &Txn{AppID: "app", Version: 2}})
	if err != nil || res.Skipped || res.Version != 5 {
		t.Errorf("Commit(txn app 2) through the old handle = %+v, %v; want version 5, not skipped", res, err)
	}

	// Same again with fewer commits than the old table: the handle's
	// version is then missing, the other path to a reload.
	if err := Delete(ctx, root); err != nil {
		t.Fatal(err)
	}
	if _, err := Create(ctx, root, testMeta(), Protocol{}, Options{}); err != nil {
		t.Fatal(err)
	}
	if s, err := old.Snapshot(ctx); err != nil || s.Version != 0 || len(s.Files) != 0 {
		t.Errorf("Snapshot(old handle) after a second recreate = %+v, %v; want an empty v0", s, err)
	}
}

// Edge 3: the directories a new data file was created in (a new partition
// directory, the table root) are fsynced before the commit naming it.
func TestCommitSyncsDirectoriesOfAddedFiles(t *testing.T) {
	ctx := t.Context()
	tbl := newTestTable(t, Options{})
	var mu sync.Mutex
	var synced []string
	tbl.syncedDir = func(dir string) {
		mu.Lock()
		defer mu.Unlock()
		synced = append(synced, dir)
	}
	a := dataFile(t, tbl.Root(), "2024-01-01", "part-a.parquet", 1)
	b := dataFile(t, tbl.Root(), "2024-01-01", "part-b.parquet", 1)
	c := dataFile(t, tbl.Root(), "2024-01-02", "part-c.parquet", 1)
	if _, err := tbl.Commit(ctx, 0, []Action{{Add: &a}, {Add: &b}, {Add: &c}}, CommitOptions{}); err != nil {
		t.Fatal(err)
	}
	root := tbl.Root()
	want := []string{
		filepath.Join(root, "seen_date=2024-01-01"),
		root,
		filepath.Join(root, "seen_date=2024-01-02"),
		tbl.logDir(), // the commit itself, last
	}
	if !slices.Equal(synced, want) {
		t.Errorf("fsynced directories = %q, want %q", synced, want)
	}

	// Create fsyncs the new root and its parent before the first commit.
	synced = nil
	created := &Table{root: filepath.Join(t.TempDir(), "new"), syncedDir: tbl.syncedDir}
	if err := os.MkdirAll(created.logDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := created.syncCreatedRoot(); err != nil {
		t.Fatal(err)
	}
	if want := []string{created.root, filepath.Dir(created.root)}; !slices.Equal(synced, want) {
		t.Errorf("Create fsynced %q, want %q", synced, want)
	}
}

// Edge 4: the checkpoint's root schema element is REQUIRED (arrow-go's
// default, REPEATED, is refused by Snowflake, Impala and Velox).
func TestCheckpointRootIsRequired(t *testing.T) {
	ctx := t.Context()
	tbl := newTestTable(t, Options{})
	a := dataFile(t, tbl.Root(), "2024-01-01", "part-a.parquet", 1)
	if _, err := tbl.Commit(ctx, 0, []Action{{Add: &a}}, CommitOptions{}); err != nil {
		t.Fatal(err)
	}
	v, err := tbl.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rdr, err := file.OpenParquetFile(filepath.Join(tbl.logDir(), checkpointName(v)), false)
	if err != nil {
		t.Fatal(err)
	}
	defer rdr.Close()
	if got := rdr.MetaData().Schema.Root().RepetitionType(); got != parquet.Repetitions.Required {
		t.Errorf("checkpoint root repetition = %s, want REQUIRED", got)
	}
}

// Edge 6: delta-rs 0.22-0.24 wrote add.deletionVector as a non-null struct
// with empty fields for files without one. Such a table is readable; a
// real deletion vector (storageType set) is still refused.
func TestEmptyDeletionVectorIsNone(t *testing.T) {
	for _, tt := range []struct {
		name        string
		storageType string
		wantDV      bool
	}{
		{"empty struct", "", false},
		{"uuid deletion vector", "u", true},
	} {
		t.Run(tt.name+"/checkpoint", func(t *testing.T) {
			ctx := t.Context()
			root := t.TempDir()
			a := dataFile(t, root, "2024-01-01", "part-a.parquet", 7)
			writeDVCheckpoint(t, root, a, tt.storageType)
			tbl, err := Open(ctx, root, Options{})
			if err != nil {
				t.Fatal(err)
			}
			s, err := tbl.Snapshot(ctx)
			checkDV(t, s, err, tt.wantDV, a.Path)
		})
		t.Run(tt.name+"/commit", func(t *testing.T) {
			ctx := t.Context()
			tbl := newTestTable(t, Options{})
			a := dataFile(t, tbl.Root(), "2024-01-01", "part-a.parquet", 7)
			dv := fmt.Sprintf(`{"storageType":%q,"pathOrInlineDv":"","offset":null,"sizeInBytes":0,"cardinality":0}`, tt.storageType)
			line := fmt.Sprintf(`{"add":{"path":%q,"partitionValues":{"seen_date":"2024-01-01"},"size":%d,"modificationTime":1,"dataChange":true,"deletionVector":%s}}`,
				a.Path, a.Size, dv)
			if err := os.WriteFile(filepath.Join(tbl.logDir(), commitName(1)), []byte(line+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			fresh, err := Open(ctx, tbl.Root(), Options{})
			if err != nil {
				t.Fatal(err)
			}
			s, err := fresh.Snapshot(ctx)
			checkDV(t, s, err, tt.wantDV, a.Path)
		})
	}
}

func checkDV(t *testing.T, s *Snapshot, err error, wantDV bool, path string) {
	t.Helper()
	if wantDV {
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "deletionVectors") {
			t.Errorf("Snapshot() = %v, want ErrUnsupported naming deletionVectors", err)
		}
		return
	}
	if err != nil {
		t.Fatalf("Snapshot() = %v, want the table read", err)
	}
	if len(s.Files) != 1 || s.Files[0].Path != path {
		t.Errorf("Snapshot().Files = %+v, want %s", s.Files, path)
	}
}

// writeDVCheckpoint writes version 0 of a table as a checkpoint alone, the
// way delta-rs writes add.deletionVector: a struct column, here non-null
// with storageType st and every other field empty.
func writeDVCheckpoint(t *testing.T, root string, a Add, st string) {
	t.Helper()
	dvType := arrow.StructOf(
		arrow.Field{Name: "storageType", Type: arrow.BinaryTypes.String, Nullable: true},
		arrow.Field{Name: "pathOrInlineDv", Type: arrow.BinaryTypes.String, Nullable: true},
		arrow.Field{Name: "offset", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		arrow.Field{Name: "sizeInBytes", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		arrow.Field{Name: "cardinality", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	)
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "protocol", Nullable: true, Type: arrow.StructOf(
			arrow.Field{Name: "minReaderVersion", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
			arrow.Field{Name: "minWriterVersion", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		)},
		{Name: "metaData", Nullable: true, Type: arrow.StructOf(
			arrow.Field{Name: "id", Type: arrow.BinaryTypes.String, Nullable: true},
			arrow.Field{Name: "format", Nullable: true, Type: arrow.StructOf(
				arrow.Field{Name: "provider", Type: arrow.BinaryTypes.String, Nullable: true},
			)},
			arrow.Field{Name: "schemaString", Type: arrow.BinaryTypes.String, Nullable: true},
			arrow.Field{Name: "partitionColumns", Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
		)},
		{Name: "add", Nullable: true, Type: arrow.StructOf(
			arrow.Field{Name: "path", Type: arrow.BinaryTypes.String, Nullable: true},
			arrow.Field{Name: "partitionValues", Type: stringMap, Nullable: true},
			arrow.Field{Name: "size", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
			arrow.Field{Name: "modificationTime", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
			arrow.Field{Name: "dataChange", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
			arrow.Field{Name: "deletionVector", Type: dvType, Nullable: true},
		)},
	}, nil)
	rows := fmt.Sprintf(`[
{"protocol":{"minReaderVersion":1,"minWriterVersion":2},"metaData":null,"add":null},
{"protocol":null,"metaData":{"id":"dv-test","format":{"provider":"parquet"},"schemaString":%q,"partitionColumns":["seen_date"]},"add":null},
{"protocol":null,"metaData":null,"add":{"path":%q,"partitionValues":[{"key":"seen_date","value":"2024-01-01"}],"size":%d,"modificationTime":1,"dataChange":false,
  "deletionVector":{"storageType":%q,"pathOrInlineDv":"","offset":null,"sizeInBytes":0,"cardinality":0}}}
]`, testSchema, a.Path, a.Size, st)
	rec, _, err := array.RecordFromJSON(memory.DefaultAllocator, schema, strings.NewReader(rows))
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	dir := filepath.Join(root, logDirName)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, checkpointName(0)))
	if err != nil {
		t.Fatal(err)
	}
	fw, err := pqarrow.NewFileWriter(schema, f, parquet.NewWriterProperties(), pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	if err := fw.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
}

// Edge 7: txn actions among the actions get the idempotence check that
// CommitOptions.Txn gets; an add and a remove of one path in one commit
// are refused; a winning commit with our appId at a lower version is a
// conflict (two writers share the appId), at our version or above a skip.
func TestCommitTxnRules(t *testing.T) {
	ctx := t.Context()
	tbl := newTestTable(t, Options{})
	root := tbl.Root()
	a := dataFile(t, root, "2024-01-01", "part-a.parquet", 1)
	if _, err := tbl.Commit(ctx, 0, []Action{{Add: &a}, {Txn: &Txn{AppID: "app", Version: 5}}}, CommitOptions{}); err != nil {
		t.Fatal(err)
	}

	t.Run("txn action already applied", func(t *testing.T) {
		b := dataFile(t, root, "2024-01-01", "part-retry.parquet", 1)
		res, err := tbl.Commit(ctx, 1, []Action{{Add: &b}, {Txn: &Txn{AppID: "app", Version: 3}}}, CommitOptions{})
		if err != nil || !res.Skipped || res.Version != 1 {
			t.Errorf("Commit(txn action app 3, table at 5) = %+v, %v; want Skipped at version 1", res, err)
		}
	})
	t.Run("txn applied in part", func(t *testing.T) {
		b := dataFile(t, root, "2024-01-01", "part-partial.parquet", 1)
		_, err := tbl.Commit(ctx, 1, []Action{{Add: &b}, {Txn: &Txn{AppID: "app", Version: 5}}, {Txn: &Txn{AppID: "other", Version: 1}}}, CommitOptions{})
		if !errors.Is(err, ErrConflict) {
			t.Errorf("Commit(app 5 applied, other 1 not) = %v, want ErrConflict", err)
		}
	})
	t.Run("add and remove of one path", func(t *testing.T) {
		_, err := tbl.Commit(ctx, 1, []Action{{Add: &a}, {Remove: &Remove{Path: a.Path, DataChange: true}}}, CommitOptions{})
		if !errors.Is(err, ErrInvalidAction) || !strings.Contains(err.Error(), "add and remove") {
			t.Errorf("Commit(add and remove of %s) = %v, want ErrInvalidAction", a.Path, err)
		}
	})
	for _, tt := range []struct {
		name      string
		winner    int64 // version of the winning commit's txn for "race"
		wantSkip  bool
		wantError bool
	}{
		{"winner below ours", 6, false, true},
		{"winner at ours", 7, true, false},
		{"winner above ours", 8, true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := tbl.Snapshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			w := dataFile(t, root, "2024-01-01", "part-winner-"+tt.name+".parquet", 1)
			if _, err := tbl.Commit(ctx, s.Version, []Action{{Add: &w}}, CommitOptions{Txn: &Txn{AppID: "race", Version: tt.winner}}); err != nil {
				t.Fatal(err)
			}
			o := dataFile(t, root, "2024-01-01", "part-ours-"+tt.name+".parquet", 1)
			// Read before the winner: the winner is checked by resolve.
			res, err := tbl.Commit(ctx, s.Version, []Action{{Add: &o}}, CommitOptions{Txn: &Txn{AppID: "race", Version: 7}})
			switch {
			case tt.wantError:
				if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "share one appId") {
					t.Errorf("Commit(race 7, winner race %d) = %+v, %v; want ErrConflict", tt.winner, res, err)
				}
			case err != nil || res.Skipped != tt.wantSkip:
				t.Errorf("Commit(race 7, winner race %d) = %+v, %v; want Skipped %v", tt.winner, res, err, tt.wantSkip)
			}
		})
	}
}

// peakAllocator counts the bytes an allocator holds and the most it held.
type peakAllocator struct {
	memory.Allocator
	mu        sync.Mutex
	cur, peak int
}

func (p *peakAllocator) track(d int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cur += d
	p.peak = max(p.peak, p.cur)
}

func (p *peakAllocator) Allocate(n int) []byte {
	p.track(n)
	return p.Allocator.Allocate(n)
}

func (p *peakAllocator) Reallocate(n int, b []byte) []byte {
	p.track(n - len(b))
	return p.Allocator.Reallocate(n, b)
}

func (p *peakAllocator) Free(b []byte) {
	p.track(-len(b))
	p.Allocator.Free(b)
}

// A checkpoint of a table with many files is written a batch at a time: the
// Arrow and Parquet buffers stay bounded by the batch, not the file count.
func TestCheckpointBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 100k-file checkpoint")
	}
	const files = 100_000
	st := newState()
	st.protocol = &Protocol{MinReaderVersion: 1, MinWriterVersion: 2}
	m := testMeta()
	m.ID = "bounded"
	m.Format.Provider = "parquet"
	normalizeMetadata(&m)
	st.setMetadata(&m)
	stats := `{"numRecords":50000,"minValues":{"cert_index":1000000,"source_url":"https://ct.example.com/logs/2025h1/"},` +
		`"maxValues":{"cert_index":1050000,"source_url":"https://ct.example.com/logs/2025h1/"},"nullCount":{"cert_index":0,"source_url":0}}`
	var logical int
	for i := range files {
		a := &Add{
			Path:             fmt.Sprintf("seen_date=2025-%02d-%02d/part-%05d-%08d-0000-0000-0000-000000000000-c000.zstd.parquet", i%12+1, i%28+1, i%1000, i),
			PartitionValues:  map[string]string{"seen_date": fmt.Sprintf("2025-%02d-%02d", i%12+1, i%28+1)},
			Size:             64 << 20,
			ModificationTime: 1,
			Stats:            stats,
		}
		logical += len(a.Path) + len(a.Stats) + 20
		st.addFile(a)
	}
	st.version = 1
	dir := t.TempDir()
	alloc := &peakAllocator{Allocator: memory.NewGoAllocator()}
	n, err := writeCheckpoint(t.Context(), storage.NewDir(dir), "", st.checkpointData(time.Now()), alloc)
	if err != nil {
		t.Fatal(err)
	}
	if n != files+2 {
		t.Errorf("writeCheckpoint() wrote %d actions, want %d", n, files+2)
	}
	// One batch of 8192 rows of ~400 bytes is ~3 MiB; Arrow's builders
	// round up to powers of two and the column writers buffer a row group.
	const bound = 32 << 20
	t.Logf("peak Arrow/Parquet allocation %.1f MiB for %d files (%.1f MiB of path and stats)", float64(alloc.peak)/(1<<20), files, float64(logical)/(1<<20))
	if alloc.peak > bound || alloc.peak*2 > logical {
		t.Errorf("peak allocation %d bytes, want under %d and under half the %d bytes of file actions", alloc.peak, bound, logical)
	}
	back := newState()
	if err := readCheckpoint(t.Context(), storage.NewDir(dir), checkpointRef{version: 1, files: []string{checkpointName(1)}}, back, nil); err != nil {
		t.Fatal(err)
	}
	if len(back.files) != files {
		t.Errorf("checkpoint read back with %d files, want %d", len(back.files), files)
	}
}
