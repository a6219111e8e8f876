package keyindex

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

const (
	logA = "https://ct.example.com/a/"
	logB = "https://ct.example.com/b/"
)

func file(path string, size int64, logs ...LogRange) File {
	return File{Path: path, Size: size, Logs: logs}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	root := t.TempDir()
	ix, err := Load(root, "table-1")
	if err != nil || ix.Len() != 0 {
		t.Fatalf("Load(no index) = %v entries, %v; want 0, nil", ix.Len(), err)
	}
	f1 := file("seen_date=2025-01-01/part-1.parquet", 100,
		LogRange{SourceURL: logA, Min: 10, Max: 20, Rows: 11}, LogRange{SourceURL: logB, Min: 5000, Max: 6000, Rows: 7})
	f2 := file("seen_date=2025-01-02/part%202.parquet", 200, LogRange{SourceURL: logB, Min: 1<<63 + 5, Max: 1<<63 + 9, Rows: 5})
	if err := ix.Save([]File{f1}, nil); err != nil {
		t.Fatal(err)
	}
	if err := ix.Save([]File{f2}, nil); err != nil {
		t.Fatal(err)
	}
	got, err := Load(root, "table-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []File{f1, f2} {
		f, ok := got.Lookup(want.Path, want.Size)
		if !ok || !reflect.DeepEqual(f, want) {
			t.Errorf("Lookup(%s) = %+v, %v; want %+v", want.Path, f, ok, want)
		}
	}
	if _, ok := got.Lookup(f1.Path, f1.Size+1); ok {
		t.Errorf("Lookup(%s, another size) found an entry; a file of another size must not match", f1.Path)
	}
	if other, _ := Load(root, "table-2"); other.Len() != 0 || other.Skipped != 2 {
		t.Errorf("Load(another table id) = %d entries, %d skipped; want 0, 2", other.Len(), other.Skipped)
	}
}

func TestLoadSkipsBadSegments(t *testing.T) {
	root := t.TempDir()
	ix, _ := Load(root, "t")
	good := file("a.parquet", 1, LogRange{SourceURL: logA, Min: 1, Max: 2, Rows: 2})
	if err := ix.Save([]File{good}, nil); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, Dir)
	for name, body := range map[string]string{
		"00000000000000000001-bad" + segmentSuffix: "not gzip",
		".tmp-123": "a writer's temp file",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Load(root, "t")
	if err != nil {
		t.Fatal(err)
	}
	if got.Len() != 1 || got.Skipped != 1 {
		t.Fatalf("Load = %d entries, %d skipped; want 1, 1", got.Len(), got.Skipped)
	}
}

func TestSaveCompactsToLiveFiles(t *testing.T) {
	root := t.TempDir()
	ix, _ := Load(root, "t")
	live := map[string]int64{}
	for i := range maxSegments + 1 {
		f := file(filepath.Join("d", string(rune('a'+i))+".parquet"), int64(i+1), LogRange{SourceURL: logA, Min: uint64(i), Max: uint64(i), Rows: 1})
		// Every other file stays live.
		if i%2 == 0 {
			live[f.Path] = f.Size
		}
		if err := ix.Save([]File{f}, live); err != nil {
			t.Fatal(err)
		}
	}
	ents, err := os.ReadDir(filepath.Join(root, Dir))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 {
		t.Fatalf("%d segments after %d saves, want 1 (compacted)", len(ents), maxSegments+1)
	}
	got, _ := Load(root, "t")
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
	f := file("x", 1, LogRange{SourceURL: logA, Min: 100, Max: 200, Rows: 50}, LogRange{SourceURL: logB, Min: 7, Max: 7, Rows: 1})
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
