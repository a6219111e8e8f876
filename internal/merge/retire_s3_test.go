package merge

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/certlake/certlake/internal/keyindex"
	"github.com/certlake/certlake/internal/lake"
	"github.com/certlake/certlake/internal/lake/laketest"
	"github.com/certlake/certlake/internal/storage"
	"github.com/certlake/certlake/internal/storage/storagetest"
)

// TestDropStagingIndex: the key index gap detection keeps in a remote
// staging table is deleted from the bucket once the table's files are all
// retired, and only it: the table's log stays.
func TestDropStagingIndex(t *testing.T) {
	ctx := t.Context()
	srv := storagetest.Start(t)
	bucket := srv.Bucket(t)
	o := &storage.Opener{S3: srv.Config()}
	uri := "s3://" + bucket + "/lake/staging"
	st, err := lake.OpenOrCreate(ctx, uri, lake.Options{Role: lake.RoleStaging, Storage: o})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Append(ctx, laketest.New(1, "https://ct.example.net/log/").Rows(0, 10, time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC)), lake.CommitOptions{}); err != nil {
		t.Fatal(err)
	}
	ix := keyindex.FromStorage(st.Store())
	for _, n := range []string{"1-a.kix", "2-b.kix"} {
		if err := ix.Write(ctx, n, []byte("segment")); err != nil {
			t.Fatal(err)
		}
	}
	if names, err := ix.List(ctx); err != nil || len(names) != 2 {
		t.Fatalf("index segments before = %v, %v; want 2", names, err)
	}
	dropStagingIndex(ctx, st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if names, err := ix.List(ctx); err != nil || len(names) != 0 {
		t.Errorf("index segments after = %v, %v; want none", names, err)
	}
	if _, err := st.Snapshot(ctx); err != nil {
		t.Errorf("staging's log after dropping its index: %v", err)
	}
}
