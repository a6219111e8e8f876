package keyindex

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/certlake/certlake/internal/lake"
	"github.com/certlake/certlake/internal/storage"
	"github.com/certlake/certlake/internal/storage/storagetest"
)

// TestReadFromStorageByRanges: a data file in a bucket of a real
// S3-compatible server reads the same keys as from disk, by ranged GETs
// of its tail (footer) and its two key columns: no Stat (the size is the
// log's), and a few GETs, not one per page or a download of the file.
func TestReadFromStorageByRanges(t *testing.T) {
	ctx := t.Context()
	db, err := lake.OpenDB(ctx, lake.DBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	path := filepath.Join(t.TempDir(), "part-0.parquet")
	if _, err := db.ExecContext(ctx, `COPY (SELECT 'https://log' || (i % 3) || '/' AS source_url, (i // 3)::BIGINT AS cert_index,
		md5(i::VARCHAR) || md5((i + 1)::VARCHAR) || md5((i + 2)::VARCHAR) AS payload FROM range(0, 60000) t(i))
		TO '`+path+`' (FORMAT parquet, ROW_GROUP_SIZE 30000)`); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	srv := storagetest.Start(t)
	bucket := srv.Bucket(t)
	o := &storage.Opener{S3: srv.Config()}
	s, err := o.OpenURI(ctx, "test", "s3://"+bucket+"/t")
	if err != nil {
		t.Fatal(err)
	}
	if err := storage.PutBytes(ctx, s, "d=1/part-0.parquet", data); err != nil {
		t.Fatal(err)
	}
	want, wantRows, err := ReadFileKeys(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	before := o.Requests()
	got, rows, err := ReadFromStorage(s)(ctx, DataFile{Path: "d=1/part-0.parquet", Size: int64(len(data))})
	if err != nil {
		t.Fatal(err)
	}
	if rows != wantRows || rows != 60000 || len(got) != len(want) {
		t.Fatalf("read %d rows of %d logs from S3, %d of %d from disk", rows, len(got), wantRows, len(want))
	}
	for u, bm := range want {
		if !bm.Equals(got[u]) {
			t.Errorf("keys of %s differ", u)
		}
	}
	r := o.Requests()
	// The tail, then the two key column chunks of each of the 2 row
	// groups together.
	if gets, heads := r.Get-before.Get, r.Head-before.Head; gets != 3 || heads != 0 {
		t.Errorf("read with %d GETs and %d HEADs, want 3 (tail, one per row group) and none", gets, heads)
	}
}
