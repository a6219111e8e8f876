package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certlake/certlake/internal/scenario"
	"github.com/certlake/certlake/internal/storage"
	"github.com/certlake/certlake/internal/storage/storagetest"
	"github.com/certlake/certlake/workflows"
)

// s3World is an env whose main and staging tables and plans live in a
// bucket of a real S3-compatible server (versitygw): the scenario's main
// table, written on disk, is uploaded file by file first, and the worker
// has its own scratch directory.
type s3World struct {
	*env
	srv                       *storagetest.Server
	bucket                    string
	store                     storage.Store // the bucket's "lake" prefix
	mainURI, stagingURI, plan string
}

func newS3World(t *testing.T, opts scenario.Options) *s3World {
	t.Helper()
	e := newWorld(t, opts, "certlake-e2e-s3")
	srv := storagetest.Start(t)
	w := &s3World{env: e, srv: srv, bucket: srv.Bucket(t)}
	o := &storage.Opener{S3: srv.Config()}
	s, err := o.OpenURI(t.Context(), "lake", "s3://"+w.bucket+"/lake")
	if err != nil {
		t.Fatal(err)
	}
	w.store = s
	storagetest.Upload(t, e.sc.MainPath, storage.Sub(s, "main"))
	w.mainURI = "s3://" + w.bucket + "/lake/main"
	w.stagingURI = "s3://" + w.bucket + "/lake/staging"
	w.plan = "s3://" + w.bucket + "/lake/.certlake-plans"
	e.cfg.Lake.MainPath, e.cfg.Lake.StagingPath, e.cfg.Lake.PlanDir = w.mainURI, w.stagingURI, w.plan
	e.cfg.Storage.S3.Endpoint = srv.Endpoint()
	e.cfg.Storage.S3.Region = "us-east-1"
	e.cfg.Storage.S3.AccessKeyID = srv.Access
	e.cfg.Storage.S3.SecretAccessKey = srv.Secret
	e.cfg.Storage.S3.PathStyle = true
	e.cfg.Storage.S3.AllowHTTP = true
	return w
}

// download copies the objects under prefix to a fresh local directory, so
// the table can be checked key by key with the same code as a local one.
func (w *s3World) download(prefix string) string {
	w.t.Helper()
	dir := filepath.Join(w.t.TempDir(), prefix)
	objs, err := w.store.List(w.t.Context(), prefix+"/", "", 0)
	if err != nil {
		w.t.Fatal(err)
	}
	for _, o := range objs {
		b, err := storage.ReadAll(w.t.Context(), w.store, o.Key)
		if err != nil {
			w.t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(strings.TrimPrefix(o.Key, prefix+"/")))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			w.t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			w.t.Fatal(err)
		}
	}
	return dir
}

// TestS3BackfillThenMergeFillsEveryHoleOnce: the product's main job with
// main, staging and plans in a bucket: every hole is backfilled into
// staging once, merged into main once, the merged staging objects are
// deleted, no plan is left, and nothing was written on local disk outside
// the worker's scratch.
func TestS3BackfillThenMergeFillsEveryHoleOnce(t *testing.T) {
	w := newS3World(t, scenario.Options{Logs: twoLogs(3000, 2000)})
	w.startWorker()
	want := missingTotal(w.sc)
	res, err := w.backfill("backfill", workflows.BackfillInput{StagingPath: w.stagingURI})
	if err != nil {
		t.Fatalf("backfill: %v", err)
	}
	if res.RecordsWritten != want || res.LogsSucceeded != 2 || len(res.FailedRanges) != 0 {
		t.Fatalf("backfill result = %+v, want %d records from 2 logs", res, want)
	}
	if err := w.sc.CheckStaging(w.keys(w.download("staging"))); err != nil {
		t.Fatalf("staging in the bucket after backfill: %v", err)
	}
	mr, err := w.merge("merge", workflows.MergeInput{StagingPath: w.stagingURI})
	if err != nil {
		t.Fatalf("merge: %v", err)
	}
	if mr.TotalStagingRows != want || mr.TotalInserted != want || mr.TotalSkipped != 0 {
		t.Fatalf("merge result = %+v, want %d staged and inserted", mr, want)
	}
	if err := w.sc.CheckComplete(w.keys(w.download("main"))); err != nil {
		t.Fatalf("main in the bucket after merge: %v", err)
	}
	keys := w.srv.Keys(t, w.bucket)
	for k := range keys {
		switch {
		case strings.HasPrefix(k, "lake/staging/") && strings.HasSuffix(k, ".parquet"):
			t.Errorf("merged staging file %s left in the bucket", k)
		case strings.HasPrefix(k, "lake/.certlake-plans/"):
			t.Errorf("plan %s left in the bucket", k)
		case strings.Contains(k, "_certlake_probe"):
			t.Errorf("probe object %s left in the bucket", k)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(w.sc.MainPath), "staging")); err == nil {
		t.Errorf("a local staging directory was created next to the scenario's main")
	}
	// A second run finds nothing left to do.
	res2, err := w.backfill("backfill-again", workflows.BackfillInput{StagingPath: w.stagingURI})
	if err != nil || res2.PlannedEntries != 0 {
		t.Fatalf("second backfill = %+v, %v; want nothing planned", res2, err)
	}
}
