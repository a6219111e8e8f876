package delta

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/certlake/certlake/internal/storage"
	"github.com/certlake/certlake/internal/storage/storagetest"
)

// s3Root starts versitygw, makes a bucket and returns an Options reaching
// it with the root s3://bucket/name.
func s3Root(t *testing.T, srv *storagetest.Server, bucket, name string) (string, Options) {
	t.Helper()
	return "s3://" + bucket + "/" + name, Options{Storage: &storage.Opener{S3: srv.Config()}, ScratchDir: t.TempDir()}
}

// TestS3ReadsDeltaRsTablesAsFromDisk: every fixture table (written by
// Spark, delta-rs and its Python bindings) uploaded to a bucket reads as
// from disk, at its latest version and at every version the disk copy can
// rebuild: the same files, stats, metadata, protocol and txns.
func TestS3ReadsDeltaRsTablesAsFromDisk(t *testing.T) {
	srv := storagetest.Start(t)
	bucket := srv.Bucket(t)
	ents, err := os.ReadDir(fixtures)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		name := e.Name()
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			local, err := Open(ctx, filepath.Join(fixtures, name), Options{})
			if err != nil {
				t.Skipf("not a table on disk either: %v", err)
			}
			root, opts := s3Root(t, srv, bucket, name)
			s, err := opts.Storage.OpenURI(ctx, "root", root)
			if err != nil {
				t.Fatal(err)
			}
			storagetest.Upload(t, filepath.Join(fixtures, name), s)
			remote, err := Open(ctx, root, opts)
			if err != nil {
				t.Fatalf("Open(%s) = %v", root, err)
			}
			latest, lerr := local.LatestVersion(ctx)
			rlatest, rerr := remote.LatestVersion(ctx)
			if lerr != nil || rerr != nil || latest != rlatest {
				t.Fatalf("LatestVersion: disk %d, %v; s3 %d, %v", latest, lerr, rlatest, rerr)
			}
			for v := int64(0); v <= latest; v++ {
				want, werr := local.SnapshotAt(ctx, v)
				got, gerr := remote.SnapshotAt(ctx, v)
				if (werr == nil) != (gerr == nil) {
					t.Fatalf("version %d: disk %v, s3 %v", v, werr, gerr)
				}
				if werr != nil {
					continue
				}
				if !reflect.DeepEqual(want.Files, got.Files) || !reflect.DeepEqual(want.Metadata, got.Metadata) ||
					!reflect.DeepEqual(want.Protocol, got.Protocol) || !reflect.DeepEqual(want.Txns, got.Txns) || want.Version != got.Version {
					t.Errorf("version %d on s3 differs from disk:\n s3 %+v\ndisk %+v", v, got, want)
				}
				for _, a := range got.Files {
					k, err := Key(a.Path)
					if err != nil {
						t.Fatal(err)
					}
					if i, err := s.Stat(ctx, k); err == nil && i.Size != a.Size {
						t.Errorf("version %d: %s is %d bytes in the bucket, add says %d", v, k, i.Size, a.Size)
					}
				}
			}
			n++
		})
	}
	if n < 10 {
		t.Errorf("only %d fixture tables compared", n)
	}
}

// TestS3RacingWritersOneWinsPerVersion: writers in separate processes'
// worth of Tables race for versions of one table in a bucket; every
// commit lands exactly once, at its own version, and the log is whole.
func TestS3RacingWritersOneWinsPerVersion(t *testing.T) {
	srv := storagetest.Start(t)
	bucket := srv.Bucket(t)
	root, opts := s3Root(t, srv, bucket, "race")
	ctx := t.Context()
	tbl, err := Create(ctx, root, testMetadata(), Protocol{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	st := tbl.Store()
	const writers, each = 4, 5
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			// Each writer its own Table and Opener, as separate workers.
			o := Options{Storage: &storage.Opener{S3: srv.Config()}, ScratchDir: t.TempDir(), CheckpointInterval: 7}
			mine, err := Open(ctx, root, o)
			if err != nil {
				errs <- err
				return
			}
			for i := range each {
				name := fmt.Sprintf("part-w%d-%d.parquet", w, i)
				if err := storage.PutBytes(ctx, st, name, []byte(name)); err != nil {
					errs <- err
					return
				}
				a := Add{Path: name, Size: int64(len(name)), ModificationTime: time.Now().UnixMilli(), DataChange: true, PartitionValues: map[string]string{}}
				v, err := mine.LatestVersion(ctx)
				if err != nil {
					errs <- err
					return
				}
				if _, err := mine.Commit(ctx, v, []Action{{Add: &a}}, CommitOptions{}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	snap, err := tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Version != writers*each || len(snap.Files) != writers*each {
		t.Fatalf("after %d racing commits: version %d with %d files, want %d and %d", writers*each, snap.Version, len(snap.Files), writers*each, writers*each)
	}
	// Key by key: commits 0..20 each present once, each add once.
	seen := map[string]int{}
	for v := int64(1); v <= snap.Version; v++ {
		acts, err := tbl.ReadCommit(ctx, v)
		if err != nil {
			t.Fatalf("commit %d: %v", v, err)
		}
		for _, a := range acts {
			if a.Add != nil {
				seen[a.Add.Path]++
			}
		}
	}
	for w := range writers {
		for i := range each {
			if n := seen[fmt.Sprintf("part-w%d-%d.parquet", w, i)]; n != 1 {
				t.Errorf("part-w%d-%d added %d times, want once", w, i, n)
			}
		}
	}
	keys := srv.Keys(t, bucket)
	for k := range keys {
		if len(k) > len("race/_certlake_probe") && k[:len("race/_certlake_probe")] == "race/_certlake_probe" {
			t.Errorf("probe object left behind: %s", k)
		}
	}
	if err := ValidateOptions(ctx, root, opts); err != nil {
		t.Errorf("Validate after the race: %v", err)
	}
	// A checkpoint was written along the way (interval 7) and is read.
	fresh, err := Open(ctx, root, opts)
	if err != nil {
		t.Fatal(err)
	}
	var traced []string
	fresh.trace = func(n string) { traced = append(traced, n) }
	paths := func(s *Snapshot) (out []string) {
		for _, a := range s.Files {
			out = append(out, fmt.Sprintf("%s:%d", a.Path, a.Size))
		}
		return out
	}
	if s2, err := fresh.Snapshot(ctx); err != nil || !reflect.DeepEqual(paths(s2), paths(snap)) {
		t.Errorf("fresh snapshot files = %v, %v; want %v", paths(s2), err, paths(snap))
	}
	if len(traced) == 0 || traced[0] == commitName(0) {
		t.Errorf("fresh load read %v, want a checkpoint first", traced)
	}
}

// TestS3VacuumDeletesObjects: vacuum of a table in a bucket deletes the
// never-committed data file and nothing the log names, object by object.
func TestS3VacuumDeletesObjects(t *testing.T) {
	srv := storagetest.Start(t)
	bucket := srv.Bucket(t)
	root, opts := s3Root(t, srv, bucket, "vac")
	ctx := t.Context()
	tbl, err := Create(ctx, root, testMetadata(), Protocol{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	s := tbl.Store()
	for _, k := range []string{"part-kept.parquet", "part-orphan.parquet", ScratchDirPrefix + "x/part-0.parquet", "_certlake_keyindex/seg"} {
		if err := storage.PutBytes(ctx, s, k, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	a := Add{Path: "part-kept.parquet", Size: int64(len("part-kept.parquet")), ModificationTime: time.Now().UnixMilli(), DataChange: true, PartitionValues: map[string]string{}}
	if _, err := tbl.Commit(ctx, 0, []Action{{Add: &a}}, CommitOptions{}); err != nil {
		t.Fatal(err)
	}
	res, err := vacuumAt(ctx, root, opts, time.Now().Add(DefaultVacuumRetention+time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if res.Count != 2 {
		t.Errorf("vacuum deleted %v, want the orphan and the scratch file", res.Files)
	}
	keys := srv.Keys(t, bucket)
	for _, k := range []string{"vac/part-kept.parquet", "vac/_certlake_keyindex/seg", "vac/_delta_log/00000000000000000001.json"} {
		if _, ok := keys[k]; !ok {
			t.Errorf("%s deleted by the vacuum", k)
		}
	}
	for _, k := range []string{"vac/part-orphan.parquet", "vac/" + ScratchDirPrefix + "x/part-0.parquet"} {
		if _, ok := keys[k]; ok {
			t.Errorf("%s kept by the vacuum", k)
		}
	}
}

// testMetadata is testSchema without partitions.
func testMetadata() Metadata { return Metadata{SchemaString: testSchema} }

func vacuumAt(ctx context.Context, root string, opts Options, now time.Time) (VacuumResult, error) {
	return vacuum(ctx, root, VacuumOptions{Storage: opts.Storage}, now)
}
