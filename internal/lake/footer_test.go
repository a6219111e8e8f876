package lake_test

import (
	"testing"
	"time"

	"github.com/certlake/certlake/internal/lake"
	"github.com/certlake/certlake/internal/lake/laketest"
	"github.com/certlake/certlake/internal/storage"
	"github.com/certlake/certlake/internal/storage/storagetest"
)

// TestFooterRowsS3OneGetPerFile: the rows of a table's files counted from
// their footers are the same on disk and in a bucket of a real
// S3-compatible server, where each footer costs one ranged GET and no
// HEAD (the size is the log's).
func TestFooterRowsS3OneGetPerFile(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	tb, err := lake.OpenOrCreate(ctx, dir, lake.Options{Role: lake.RoleMain})
	if err != nil {
		t.Fatal(err)
	}
	seen := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	for i, n := range []int{300, 20, 1} {
		rows := laketest.New(uint64(i), "https://ct.example.com/logs/a").Rows(uint64(i*1000), n, seen)
		if _, err := tb.Append(ctx, rows, lake.CommitOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := tb.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	files := tb.Files(snap)
	if n, err := lake.FooterRows(ctx, tb.Store(), files); err != nil || n != 321 {
		t.Fatalf("FooterRows on disk = %d, %v; want 321", n, err)
	}

	srv := storagetest.Start(t)
	o := &storage.Opener{S3: srv.Config()}
	s, err := o.OpenURI(ctx, "test", "s3://"+srv.Bucket(t)+"/main")
	if err != nil {
		t.Fatal(err)
	}
	storagetest.Upload(t, dir, s)
	before := o.Requests()
	if n, err := lake.FooterRows(ctx, s, files); err != nil || n != 321 {
		t.Fatalf("FooterRows in S3 = %d, %v; want 321", n, err)
	}
	if r := o.Requests(); r.Get-before.Get != int64(len(files)) || r.Head != before.Head {
		t.Errorf("FooterRows of %d files sent %d GETs, %d HEADs; want one GET per file, no HEAD", len(files), r.Get-before.Get, r.Head-before.Head)
	}
}
