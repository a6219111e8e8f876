package activities

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/certlake/certlake/internal/lake"
	"github.com/certlake/certlake/internal/record"
)

func stagingRow(idx uint64) record.Row {
	return record.Row{CertIndex: idx, UpdateType: "X509LogEntry", Seen: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		SourceName: "Test log", SourceURL: "https://ct.example.com/log/", AsDER: []byte{0x30, byte(idx)}}
}

// A cached table is served again while it is the table at its path, and
// opened afresh once the directory was deleted and a new table made there
// (a staging table retired by a merge, then a new backfill).
func TestTableCacheReopensARecreatedTable(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "staging")
	opts := lake.Options{Role: lake.RoleStaging}
	var c tableCache
	t1, err := c.openOrCreate(ctx, path, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := t1.Append(ctx, []record.Row{stagingRow(1), stagingRow(2)}, lake.CommitOptions{}); err != nil {
		t.Fatal(err)
	}
	again, err := c.openOrCreate(ctx, path, opts)
	if err != nil || again != t1 {
		t.Fatalf("openOrCreate again = %p, %v; want the cached table %p", again, err, t1)
	}
	if err := os.RemoveAll(path); err != nil {
		t.Fatal(err)
	}
	t2, err := c.openOrCreate(ctx, path, opts)
	if err != nil {
		t.Fatal(err)
	}
	if t2 == t1 {
		t.Fatal("openOrCreate after the table was deleted served the cached table")
	}
	if _, err := t2.Append(ctx, []record.Row{stagingRow(7)}, lake.CommitOptions{}); err != nil {
		t.Fatal(err)
	}
	// Recreated by someone else: a third table at the path.
	if err := os.RemoveAll(path); err != nil {
		t.Fatal(err)
	}
	other, err := lake.OpenOrCreate(ctx, path, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Append(ctx, []record.Row{stagingRow(9), stagingRow(10), stagingRow(11)}, lake.CommitOptions{}); err != nil {
		t.Fatal(err)
	}
	t3, err := c.openOrCreate(ctx, path, opts)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := t3.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var rows int64
	for _, f := range lake.Files(snap) {
		rows += f.NumRecords
	}
	if t3 == t2 || rows != 3 {
		t.Fatalf("after another writer recreated the table: same cached table %v, %d rows; want a fresh table with 3 rows", t3 == t2, rows)
	}
}
