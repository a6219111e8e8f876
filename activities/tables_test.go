package activities

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/certlake/certlake/internal/lake"
	"github.com/certlake/certlake/internal/record"
	"github.com/certlake/certlake/internal/storage"
	"github.com/certlake/certlake/internal/storage/storagetest"
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

// The cache serves a table in object storage as it serves a local one
// (the first commit's size, time and ETag stand for the file), and opens
// it afresh once it was deleted and another table made at its URI.
func TestTableCacheRemoteTable(t *testing.T) {
	ctx := t.Context()
	srv := storagetest.Start(t)
	uri := "s3://" + srv.Bucket(t) + "/staging"
	o := &storage.Opener{S3: srv.Config()}
	opts := lake.Options{Role: lake.RoleStaging, Storage: o, Scratch: &lake.Scratch{Dir: t.TempDir()}}
	var c tableCache
	t1, err := c.openOrCreate(ctx, uri, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := t1.Append(ctx, []record.Row{stagingRow(1), stagingRow(2)}, lake.CommitOptions{}); err != nil {
		t.Fatal(err)
	}
	before := o.Requests()
	again, err := c.openOrCreate(ctx, uri, opts)
	if err != nil || again != t1 {
		t.Fatalf("openOrCreate again = %p, %v; want the cached table %p", again, err, t1)
	}
	if r := o.Requests(); r.Head-before.Head != 1 || r.Get != before.Get || r.List != before.List {
		t.Errorf("serving the cached table sent %+v more requests, want one HEAD", r)
	}
	// Deleted (object by object, as a store has no directories) and made
	// again by another writer.
	s, err := o.OpenURI(ctx, "test", uri)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := s.List(ctx, "", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, obj := range objs {
		if err := s.Delete(ctx, obj.Key); err != nil {
			t.Fatal(err)
		}
	}
	other, err := lake.OpenOrCreate(ctx, uri, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Append(ctx, []record.Row{stagingRow(9), stagingRow(10), stagingRow(11)}, lake.CommitOptions{}); err != nil {
		t.Fatal(err)
	}
	t2, err := c.openOrCreate(ctx, uri, opts)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := t2.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var rows int64
	for _, f := range lake.Files(snap) {
		rows += f.NumRecords
	}
	if t2 == t1 || rows != 3 {
		t.Fatalf("after the table was made again: same cached table %v, %d rows; want a fresh table with 3 rows", t2 == t1, rows)
	}
}
