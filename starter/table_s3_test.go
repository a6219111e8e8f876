package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certlake/certlake/internal/lake"
	"github.com/certlake/certlake/internal/storage"
	"github.com/certlake/certlake/internal/storage/storagetest"
)

// uploadTable copies the table directory dir to uri, file by file.
func uploadTable(t *testing.T, o *storage.Opener, dir, uri string) {
	t.Helper()
	s, err := o.OpenURI(t.Context(), "test", uri)
	if err != nil {
		t.Fatal(err)
	}
	storagetest.Upload(t, dir, s)
}

// TestTableDescribeS3: a table in a bucket of a real S3-compatible server
// describes as the same table on disk: rows counted from Parquet footers
// (read by ranged GETs of the files' tails) for files without numRecords
// and with --count, per-log ranges, and the missing file of a log-only
// table named.
func TestTableDescribeS3(t *testing.T) {
	// delta-rs wrote this table's stats without numRecords: its rows are
	// counted from the footers.
	fixture, err := filepath.Abs("../internal/delta/testdata/delta/delta-stats-optional")
	if err != nil {
		t.Fatal(err)
	}
	srv := storagetest.Start(t)
	bucket := srv.Bucket(t)
	scratch := t.TempDir()
	dir := workdir(t, fmt.Sprintf(`storage:
  s3:
    endpoint: %s
    region: us-east-1
    access_key_id: %s
    secret_access_key: %s
    path_style: true
    allow_http: true
worker:
  scratch_dir: %s
`, srv.Endpoint(), srv.Access, srv.Secret, scratch))
	o := &storage.Opener{S3: srv.Config()}

	uploadTable(t, o, fixture, "s3://"+bucket+"/stats-optional")
	local, r := describeJSON(t, fixture)
	if r.code != 0 || local.NumRows == nil || *local.NumRows != 2 {
		t.Fatalf("describe %s on disk = %d %q, num_rows %v; want 2", fixture, r.code, r.stderr, local.NumRows)
	}
	remote, r := describeJSON(t, "s3://"+bucket+"/stats-optional")
	if r.code != 0 {
		t.Fatalf("describe s3://%s/stats-optional = %d, %q", bucket, r.code, r.stderr)
	}
	if remote.NumRows == nil || *remote.NumRows != 2 || remote.NumRowsSource != local.NumRowsSource || !strings.Contains(remote.NumRowsSource, "footers") || remote.NumRowsError != "" {
		t.Errorf("describe in S3: num_rows %v from %q (error %q); want 2 from %q", remote.NumRows, remote.NumRowsSource, remote.NumRowsError, local.NumRowsSource)
	}
	if remote.Version != local.Version || remote.NumFiles != local.NumFiles || remote.SizeBytes != local.SizeBytes {
		t.Errorf("describe in S3: version %d, %d files, %d bytes; on disk %d, %d, %d",
			remote.Version, remote.NumFiles, remote.SizeBytes, local.Version, local.NumFiles, local.SizeBytes)
	}

	// A certstream table: --count reads every footer; the per-log ranges
	// are the disk copy's.
	const a = "https://ct.example.com/logs/a"
	main := filepath.Join(dir, "main")
	appendRows(t, main, lake.RoleMain, a, [2]uint64{0, 39}, [2]uint64{50, 99})
	appendRows(t, main, lake.RoleMain, a, [2]uint64{200, 209})
	uploadTable(t, o, main, "s3://"+bucket+"/main")
	want, _ := describeJSON(t, main, "--count")
	got, r := describeJSON(t, "s3://"+bucket+"/main", "--count")
	if r.code != 0 {
		t.Fatalf("describe --count in S3 = %d, %q", r.code, r.stderr)
	}
	if got.NumRows == nil || *got.NumRows != 100 || got.NumRowsSource != "count" || !got.Certstream || got.Role != "main" {
		t.Errorf("describe --count in S3: num_rows %v from %q, certstream %v role %q; want 100 from count, a main table",
			got.NumRows, got.NumRowsSource, got.Certstream, got.Role)
	}
	if len(got.Logs) != 1 || len(want.Logs) != 1 || got.Logs[0] != want.Logs[0] || got.Logs[0].Missing != 110 {
		t.Errorf("per-log ranges in S3 %+v, on disk %+v; want the same, 110 missing", got.Logs, want.Logs)
	}

	// A file the log lists but the bucket lacks is named.
	s, err := o.OpenURI(t.Context(), "test", "s3://"+bucket+"/main")
	if err != nil {
		t.Fatal(err)
	}
	gone := got.Files[0].Path
	if err := s.Delete(t.Context(), gone); err != nil {
		t.Fatal(err)
	}
	r = runStarter(t, "table", "describe", "--count", "--no-logs", "s3://"+bucket+"/main")
	if r.code == 0 || !containsAll(r.stderr, gone, "no such file") {
		t.Errorf("describe --count of a table missing %s = %d, %q; want an error naming the file", gone, r.code, r.stderr)
	}
}

func containsAll(s string, subs ...string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}
