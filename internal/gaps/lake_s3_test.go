package gaps

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/certlake/certlake/internal/lake"
	"github.com/certlake/certlake/internal/storage"
	"github.com/certlake/certlake/internal/storage/storagetest"
)

// TestDetectLakeS3ReadsStagingByRanges: with main and staging in a bucket
// of a real S3-compatible server, DetectLake plans exactly what it plans
// from the same tables on disk, reading staging's files from the store
// (no local copies: their LocalPath is empty) and main's through its key
// index.
func TestDetectLakeS3ReadsStagingByRanges(t *testing.T) {
	srv := storagetest.Start(t)
	bucket := srv.Bucket(t)
	dir := t.TempDir()
	localMain := windowedLake(t, filepath.Join(dir, "main"), 6)
	localStaging := stagingLake(t, filepath.Join(dir, "staging"))
	o := &storage.Opener{S3: srv.Config()}
	for _, name := range []string{"main", "staging"} {
		s, err := o.OpenURI(t.Context(), "test", "s3://"+bucket+"/"+name)
		if err != nil {
			t.Fatal(err)
		}
		storagetest.Upload(t, filepath.Join(dir, name), s)
	}
	opts := lake.Options{Storage: o, Scratch: &lake.Scratch{Dir: t.TempDir()}}
	main, err := lake.Open(t.Context(), "s3://"+bucket+"/main", opts)
	if err != nil {
		t.Fatal(err)
	}
	st, err := lake.Open(t.Context(), "s3://"+bucket+"/staging", opts)
	if err != nil {
		t.Fatal(err)
	}
	staging := liveFiles(t, st)
	if len(staging) != 4 || staging[0].LocalPath != "" {
		t.Fatalf("remote staging files %+v, want 4 without a local path", staging)
	}
	for _, dopts := range []Options{{}, {From: from(0), IncludeFrontier: true}} {
		want, wantStats, err := DetectLake(t.Context(), localMain, localStaging, lakeLogs, dopts, LakeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got, gotStats, err := DetectLake(t.Context(), main, staging, lakeLogs, dopts, LakeOptions{StagingStore: st.Store()})
		if err != nil {
			t.Fatalf("DetectLake in S3 (%s): %v", optsString(dopts), err)
		}
		if !slices.Equal(got, want) || len(want) == 0 {
			t.Errorf("DetectLake in S3 (%s) = %d ranges, on disk %d; first difference %s", optsString(dopts), len(got), len(want), firstDiff(got, want))
		}
		if gotStats.StagingFiles != wantStats.StagingFiles || gotStats.StagingRows != wantStats.StagingRows || gotStats.MainFiles != wantStats.MainFiles {
			t.Errorf("stats in S3 %+v, on disk %+v", gotStats, wantStats)
		}
	}
	if _, _, err := DetectLake(t.Context(), main, staging, lakeLogs, Options{}, LakeOptions{}); err == nil {
		t.Error("DetectLake of remote staging files without StagingStore succeeded")
	}
}
