package keyindex

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/RoaringBitmap/roaring/v2/roaring64"
)

const (
	logA = "https://ct.example.com/a/"
	logB = "https://ct.example.com/b/"
)

// set builds a key set from inclusive ranges.
func set(ranges ...[2]uint64) *roaring64.Bitmap {
	bm := roaring64.New()
	for _, r := range ranges {
		bm.AddRange(r[0], r[1]+1)
	}
	return bm
}

func entry(path string, size int64, keys Keys) File {
	var rows int64
	for _, bm := range keys {
		rows += int64(bm.GetCardinality())
	}
	return File{Path: path, Size: size, Rows: rows, Keys: keys}
}

func sameFile(a, b File) bool {
	if a.Path != b.Path || a.Size != b.Size || a.Rows != b.Rows || len(a.Keys) != len(b.Keys) {
		return false
	}
	for u, bm := range a.Keys {
		if o := b.Keys[u]; o == nil || !o.Equals(bm) {
			return false
		}
	}
	return true
}

func segmentNames(t *testing.T, root string) []string {
	t.Helper()
	names, err := TableStore(root).List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	return names
}

func TestSaveLoadRoundTrip(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	store := TableStore(root)
	ix, err := Load(ctx, store, "table-1")
	if err != nil || ix.Len() != 0 {
		t.Fatalf("Load(no index) = %v entries, %v; want 0, nil", ix.Len(), err)
	}
	f1 := entry("seen_date=2025-01-01/part-1.parquet", 100, Keys{
		logA: set([2]uint64{10, 20}, [2]uint64{22, 1 << 20}),
		logB: set([2]uint64{5000, 6000}),
	})
	// Past 2^32 and near the top of a long: the index is 64-bit.
	f2 := entry("seen_date=2025-01-02/part%202.parquet", 200, Keys{
		logB: set([2]uint64{1<<32 - 3, 1<<32 + 3}, [2]uint64{1<<63 - 10, 1<<63 - 1}),
	})
	if err := ix.Save(ctx, []File{f1}, nil); err != nil {
		t.Fatal(err)
	}
	if err := ix.Save(ctx, []File{f2}, nil); err != nil {
		t.Fatal(err)
	}
	got, err := Load(ctx, store, "table-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []File{f1, f2} {
		f, ok := got.Lookup(want.Path, want.Size)
		if !ok || !sameFile(f, want) {
			t.Errorf("Lookup(%s) = %+v, %v; want %+v", want.Path, f, ok, want)
		}
	}
	if _, ok := got.Lookup(f1.Path, f1.Size+1); ok {
		t.Errorf("Lookup(%s, another size) found an entry; a file of another size must not match", f1.Path)
	}
	if l := got.files[f1.Path].Logs(); len(l) != 2 || l[0] != (LogRange{logA, 10, 1 << 20, 11 + (1<<20 - 22 + 1)}) {
		t.Errorf("Logs() = %+v", l)
	}
	other, _ := Load(ctx, store, "table-2")
	if other.Len() != 0 || other.Skipped != 2 {
		t.Errorf("Load(another table id) = %d entries, %d skipped; want 0, 2", other.Len(), other.Skipped)
	}
	// The recreated table's first save deletes the old table's segments.
	if err := other.Save(ctx, []File{f1}, nil); err != nil {
		t.Fatal(err)
	}
	if n := len(segmentNames(t, root)); n != 1 {
		t.Errorf("%d segments after the recreated table's save, want 1", n)
	}
}

// TestLoadSkipsBadSegments: a torn, altered or foreign segment is read as
// no entries (its files are read again), never as wrong ones.
func TestLoadSkipsBadSegments(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	dir := filepath.Join(root, Dir)
	store := TableStore(root)
	ix, _ := Load(ctx, store, "t")
	good := entry("a.parquet", 1, Keys{logA: set([2]uint64{1, 2})})
	bad := entry("b.parquet", 1, Keys{logA: set([2]uint64{3, 4})})
	if err := ix.Save(ctx, []File{good}, nil); err != nil {
		t.Fatal(err)
	}
	data, err := encodeSegment("t", []File{bad})
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(data)
	flipped[len(flipped)/2] ^= 0x40
	for name, body := range map[string][]byte{
		"00000000000000000001-garbage" + segmentSuffix:   []byte("not a segment"),
		"00000000000000000002-torn" + segmentSuffix:      data[:len(data)-7],
		"00000000000000000003-flipped" + segmentSuffix:   flipped,
		"00000000000000000004-truncated" + segmentSuffix: data[:len(segmentMagic)+2],
		".tmp-123": []byte("a writer's temp file"),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Load(ctx, store, "t")
	if err != nil {
		t.Fatal(err)
	}
	if got.Len() != 1 || got.Skipped != 4 {
		t.Fatalf("Load = %d entries, %d skipped; want 1, 4", got.Len(), got.Skipped)
	}
	if _, ok := got.Lookup(bad.Path, bad.Size); ok {
		t.Errorf("an entry of a corrupt segment was used")
	}
	if err := got.Save(ctx, []File{bad}, nil); err != nil {
		t.Fatal(err)
	}
	if names := segmentNames(t, root); len(names) != 2 {
		t.Errorf("segments after a save = %v, want the 2 good ones (bad ones deleted)", names)
	}
}

// TestOldFormatSegmentsIgnored: an index written by certlake before exact
// key sets (format 1: per-file ranges in *.json.gz) gives no entries, so
// every file is read again, and is deleted at the next save.
func TestOldFormatSegmentsIgnored(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	dir := filepath.Join(root, Dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte(`{"format":1,"table_id":"t","urls":["` + logA + `"],"files":[{"path":"a.parquet","size":1,"logs":[[0,1,2,2]]}]}`))
	zw.Close()
	old := "00000000000000000001-abc.json.gz"
	if err := os.WriteFile(filepath.Join(dir, old), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	ix, err := Load(ctx, TableStore(root), "t")
	if err != nil {
		t.Fatal(err)
	}
	if ix.Len() != 0 || ix.Outdated != 1 || ix.Skipped != 0 {
		t.Fatalf("Load(format 1 index) = %d entries, %d outdated, %d skipped; want 0, 1, 0", ix.Len(), ix.Outdated, ix.Skipped)
	}
	if _, ok := ix.Lookup("a.parquet", 1); ok {
		t.Fatal("a format 1 entry was used")
	}
	if err := ix.Save(ctx, []File{entry("a.parquet", 1, Keys{logA: set([2]uint64{1, 2})})}, nil); err != nil {
		t.Fatal(err)
	}
	if names := segmentNames(t, root); len(names) != 1 || names[0] == old {
		t.Errorf("segments after a save = %v, want one new segment", names)
	}
}

func TestSaveCompactsToLiveFiles(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	store := TableStore(root)
	ix, _ := Load(ctx, store, "t")
	live := map[string]int64{}
	for i := range maxSegments + 1 {
		f := entry(filepath.Join("d", string(rune('a'+i))+".parquet"), int64(i+1), Keys{logA: set([2]uint64{uint64(i), uint64(i)})})
		// Every other file stays live.
		if i%2 == 0 {
			live[f.Path] = f.Size
		}
		if err := ix.Save(ctx, []File{f}, live); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(segmentNames(t, root)); n != 1 {
		t.Fatalf("%d segments after %d saves, want 1 (compacted)", n, maxSegments+1)
	}
	got, _ := Load(ctx, store, "t")
	if got.Len() != len(live) {
		t.Fatalf("compacted index holds %d files, want the %d live ones", got.Len(), len(live))
	}
	for p, size := range live {
		if _, ok := got.Lookup(p, size); !ok {
			t.Errorf("live file %s lost by compaction", p)
		}
	}
}

func TestFileMayHold(t *testing.T) {
	f := entry("x", 1, Keys{logA: set([2]uint64{100, 200}), logB: set([2]uint64{7, 7})})
	for _, c := range []struct {
		url    string
		lo, hi uint64
		want   bool
	}{
		{logA, 0, 99, false},
		{logA, 0, 100, true},
		{logA, 150, 160, true},
		{logA, 200, 300, true},
		{logA, 201, 300, false},
		{logB, 7, 7, true},
		{logB, 8, 100, false},
		{"https://ct.example.com/c/", 0, 1 << 62, false},
	} {
		if got := f.MayHold(c.url, c.lo, c.hi); got != c.want {
			t.Errorf("MayHold(%s, %d, %d) = %v, want %v", c.url, c.lo, c.hi, got, c.want)
		}
	}
}
