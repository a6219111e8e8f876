package delta

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/certlake/certlake/internal/storage"
)

// buildLog writes a table of n commits straight to disk (no put-if-absent
// dance, so large fixtures are quick to make): version 0 creates it, every
// later version appends one file with certstream-like stats. Checkpoints are
// written at the versions in cps, and _last_checkpoint names the newest.
func buildLog(tb testing.TB, n int64, cps ...int64) string {
	tb.Helper()
	root := filepath.Join(tb.TempDir(), "table")
	dir := filepath.Join(root, logDirName)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	isCP := map[int64]bool{}
	for _, v := range cps {
		isCP[v] = true
	}
	st := newState()
	m := testMeta()
	m.ID, m.Format.Provider, m.CreatedTime = "bench", "parquet", ptr(int64(1))
	normalizeMetadata(&m)
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for v := range n + 1 {
		var acts []Action
		if v == 0 {
			acts = []Action{{Protocol: &Protocol{MinReaderVersion: 1, MinWriterVersion: 2}}, {MetaData: &m}}
		} else {
			date := base.AddDate(0, 0, int(v/500)).Format(time.DateOnly)
			lo := v * 1000
			stats := fmt.Sprintf(`{"numRecords":1000,"minValues":{"cert_index":%d,"source_url":"https://ct.example.com/logs/argon2024","seen":"%sT00:00:00.000Z"},"maxValues":{"cert_index":%d,"source_url":"https://ct.example.com/logs/argon2024","seen":"%sT23:59:59.999Z"},"nullCount":{"cert_index":0,"source_url":0,"all_domains":0,"seen":0}}`, lo, date, lo+999, date)
			acts = []Action{
				{Add: &Add{
					Path:             EncodePath(fmt.Sprintf("seen_date=%s/part-%05d-0f3c1d2e-5b6a-4c7d-8e9f-%012d.zstd.parquet", date, v, v)),
					PartitionValues:  map[string]string{"seen_date": date},
					Size:             8 << 20,
					ModificationTime: base.UnixMilli() + v,
					DataChange:       true,
					Stats:            stats,
				}},
				{Txn: &Txn{AppID: "ingester", Version: v}},
			}
		}
		body, err := encodeCommit(acts, commitInfo("WRITE", v-1, nil, acts))
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, commitName(v)), body, 0o644); err != nil {
			tb.Fatal(err)
		}
		st.apply(&commit{version: v, actions: acts})
		if isCP[v] {
			if _, err := writeCheckpoint(context.Background(), storage.NewDir(dir), "", st.checkpointData(time.Now()), memory.DefaultAllocator); err != nil {
				tb.Fatal(err)
			}
		}
	}
	return root
}

// BenchmarkSnapshotOpen measures a cold open (new Table, no cache) and
// replay to the latest version.
func BenchmarkSnapshotOpen(b *testing.B) {
	cases := []struct {
		name    string
		commits int64
		cps     []int64
	}{
		{"10k-commits-checkpoint-at-9900", 10_000, []int64{9_900}},
		{"10k-commits-1k-since-checkpoint", 10_000, []int64{9_000}},
		{"2k-commits-no-checkpoint", 2_000, nil},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			root := buildLog(b, c.commits, c.cps...)
			b.ResetTimer()
			for b.Loop() {
				tbl, err := Open(b.Context(), root, Options{})
				if err != nil {
					b.Fatal(err)
				}
				s, err := tbl.Snapshot(b.Context())
				if err != nil {
					b.Fatal(err)
				}
				if s.Version != c.commits || int64(len(s.Files)) != c.commits {
					b.Fatalf("snapshot v%d with %d files", s.Version, len(s.Files))
				}
			}
		})
	}
}

// BenchmarkSnapshotCached measures Snapshot on a Table that already holds the
// latest state (one probe for newer commits plus a copy of the file list).
func BenchmarkSnapshotCached(b *testing.B) {
	root := buildLog(b, 10_000, 9_900)
	tbl, err := Open(b.Context(), root, Options{})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := tbl.Snapshot(b.Context()); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := tbl.Snapshot(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCommit appends one file per commit to a table with 1k live
// files, through the full put-if-absent path (temp file, fsync, link,
// directory fsync) and with a checkpoint every 100 commits; "nosync" shows
// the cost without the two fsyncs (the disk's share).
func BenchmarkCommit(b *testing.B) {
	b.Run("fsync", func(b *testing.B) { benchCommit(b, false) })
	b.Run("nosync", func(b *testing.B) { benchCommit(b, true) })
}

func benchCommit(b *testing.B, noSync bool) {
	root := buildLog(b, 1_000, 1_000)
	tbl, err := Open(b.Context(), root, Options{})
	if err != nil {
		b.Fatal(err)
	}
	tbl.noSync = noSync
	s, err := tbl.Snapshot(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	v := s.Version
	i := 0
	for b.Loop() {
		i++
		a := Add{
			Path:            fmt.Sprintf("seen_date=2024-06-01/part-bench-%08d.zstd.parquet", i),
			PartitionValues: map[string]string{"seen_date": "2024-06-01"},
			Size:            1 << 20,
			DataChange:      true,
			Stats:           `{"numRecords":1000,"minValues":{"cert_index":1},"maxValues":{"cert_index":1000},"nullCount":{"cert_index":0}}`,
		}
		placeholderFile(b, root, a.Path, a.Size)
		res, err := tbl.Commit(b.Context(), v, []Action{{Add: &a}}, CommitOptions{Txn: &Txn{AppID: "bench", Version: int64(i)}})
		if err != nil {
			b.Fatal(err)
		}
		v = res.Version
	}
}

// placeholderFile creates the file an add names (Commit refuses adds of
// missing files), sparse, of the given size; its content is not read.
func placeholderFile(tb testing.TB, root, addPath string, size int64) {
	tb.Helper()
	full := localPath(root, addPath)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		tb.Fatal(err)
	}
	f, err := os.Create(full)
	if err != nil {
		tb.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
}

// TestOpenReadsCheckpointAndTail: a table written through Commit with
// checkpoint interval 100 opens from its newest checkpoint plus the commits
// after it, never the whole log (counted, not timed).
func TestOpenReadsCheckpointAndTail(t *testing.T) {
	ctx := t.Context()
	tbl := newTestTable(t, Options{CheckpointInterval: 100})
	tbl.noSync = true // 1k commits; durability is not what this test is about
	const commits = 1_050
	for i := range commits {
		a := Add{
			Path:            fmt.Sprintf("seen_date=2024-01-01/part-%05d.parquet", i),
			PartitionValues: map[string]string{"seen_date": "2024-01-01"},
			Size:            1,
			Stats:           `{"numRecords":1}`,
		}
		placeholderFile(t, tbl.Root(), a.Path, a.Size)
		if _, err := tbl.Commit(ctx, int64(i), []Action{{Add: &a}}, CommitOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, cp := range []int64{100, 500, 1000} {
		if _, err := os.Stat(filepath.Join(tbl.logDir(), checkpointName(cp))); err != nil {
			t.Errorf("checkpoint %d: %v", cp, err)
		}
	}
	fresh, read := openTraced(t, tbl.Root())
	s, err := fresh.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Version != commits || len(s.Files) != commits {
		t.Errorf("Snapshot() = v%d with %d files, want %d", s.Version, len(s.Files), commits)
	}
	checkCheckpointUsed(t, *read, 1000, commits)
	if len(*read) != 51 {
		t.Errorf("opened reading %d log files, want 51 (1 checkpoint + 50 commits)", len(*read))
	}
	// Time travel uses the newest checkpoint at or before the version.
	fresh, read = openTraced(t, tbl.Root())
	if s, err := fresh.SnapshotAt(ctx, 777); err != nil || len(s.Files) != 777 {
		t.Fatalf("SnapshotAt(777) = %v files, %v", len(s.Files), err)
	}
	checkCheckpointUsed(t, *read, 700, 777)
	// _last_checkpoint is a hint only: stale or missing, the listing wins.
	if err := os.Remove(filepath.Join(tbl.logDir(), lastCheckpointName)); err != nil {
		t.Fatal(err)
	}
	fresh, read = openTraced(t, tbl.Root())
	if _, err := fresh.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	checkCheckpointUsed(t, *read, 1000, commits)
	if err := Validate(ctx, tbl.Root()); err != nil {
		t.Errorf("Validate() = %v", err)
	}
}
