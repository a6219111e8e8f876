package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/certlake/certlake/internal/gaps"
	"github.com/certlake/certlake/internal/lake"
	"github.com/certlake/certlake/internal/lake/laketest"
	"github.com/certlake/certlake/internal/merge"
	"github.com/certlake/certlake/internal/planning"
	"github.com/certlake/certlake/internal/storage"
)

// objstoreRuns is how often each side of item 7 is measured (alternating
// local disk and S3, so both see the same machine load); the fastest run
// of each counts.
const objstoreRuns = 3

// objstore is one run of item 7: a versitygw, a bucket and an Opener (one
// S3 client, as a worker has).
type objstore struct {
	b      *bench
	srv    *s3Server
	opener *storage.Opener
	bucket string
	tmp    string // local scratch of this item
}

// sideTimes are one operation's fastest run on each side, and the S3
// requests of the fastest S3 run.
type sideTimes struct {
	local, s3 time.Duration
	reqs      storage.Requests
}

func (t sideTimes) ratio() float64 { return t.s3.Seconds() / t.local.Seconds() }

// objstoreItem is item 7: the same merge, backfill and gap detection with
// the tables in a bucket of a real S3-compatible server (versitygw on this
// machine) and on local disk, side by side in one run, with the S3
// requests each operation sent.
func (b *bench) objstoreItem(ctx context.Context) error {
	d, err := b.ensure(ctx, 1)
	if err != nil {
		return err
	}
	if err := b.ensureIndex(ctx, d); err != nil {
		return err
	}
	o, stop, err := b.startObjstore(ctx)
	if err != nil || o == nil {
		return err
	}
	defer stop()

	m, err := o.merges(ctx, d)
	if err != nil {
		return err
	}
	what := fmt.Sprintf("object storage: merge, %s staging rows into %s main (key index current), S3 vs local disk", count(d.stagingRows), count(d.mainRows))
	b.table.add(row{what: what, certlake: secs(m.s3), reference: secs(m.local) + " local", ratio: times(m.ratio()),
		target: "S3 <= 2x local", result: passIf(m.ratio() <= 2)})
	b.table.add(row{what: "object storage: S3 requests per merge", certlake: requestsText(m.reqs)})

	bf, n, err := o.backfills(ctx)
	if err != nil {
		return err
	}
	b.table.add(row{what: fmt.Sprintf("object storage: backfill (fetch+parse+stage) of %s entries from a static log into staging, S3 vs local disk", count(n)),
		certlake: secs(bf.s3), reference: secs(bf.local) + " local", ratio: times(bf.ratio()),
		target: "S3 <= 1.5x local", result: passIf(bf.ratio() <= 1.5)})
	b.table.add(row{what: "object storage: S3 requests per backfill", certlake: requestsText(bf.reqs)})

	g, err := o.gapDetections(ctx, d)
	if err != nil {
		return err
	}
	b.table.add(row{what: fmt.Sprintf("object storage: gap detection, %s main + %s staging keys, S3 vs local disk (cold scratch cache)", count(d.mainRows), count(d.stagingRows)),
		certlake: secs(g.s3), reference: secs(g.local) + " local", ratio: times(g.ratio()),
		target: "S3 <= 2x local", result: passIf(g.ratio() <= 2)})
	b.table.add(row{what: "object storage: S3 requests per gap detection", certlake: requestsText(g.reqs)})
	b.note("Object storage: versitygw %s (posix backend) on this machine's disk, over loopback HTTP; both sides run in this process, %d alternating runs each, the fastest counts. A remote store adds network latency this does not show; the request counts are what a cloud bill charges.", versitygwInstall[len("go install "):], objstoreRuns)
	return nil
}

// requestsText formats request counts per class.
func requestsText(r storage.Requests) string {
	return fmt.Sprintf("GET %d, PUT %d, LIST %d, HEAD %d, DELETE %d", r.Get, r.Put, r.List, r.Head, r.Delete)
}

// sub returns the difference of two request counts.
func sub(a, b storage.Requests) storage.Requests {
	return storage.Requests{Get: a.Get - b.Get, Put: a.Put - b.Put, List: a.List - b.List, Head: a.Head - b.Head, Delete: a.Delete - b.Delete}
}

// uri is the s3:// location of prefix in the item's bucket.
func (o *objstore) uri(prefix string) string { return "s3://" + o.bucket + "/" + prefix }

// tableOptions open tables at o's URIs with a fresh worker scratch (its
// cache cold, as a worker's is for files it has not read yet).
func (o *objstore) tableOptions() (lake.Options, error) {
	dir, err := os.MkdirTemp(o.tmp, "scratch-")
	if err != nil {
		return lake.Options{}, err
	}
	return lake.Options{Storage: o.opener, Scratch: &lake.Scratch{Dir: dir}}, nil
}

// upload copies the local directory src to prefix in the bucket, through
// the storage layer (not measured).
func (o *objstore) upload(ctx context.Context, src, prefix string) error {
	st, err := o.opener.OpenURI(ctx, "bench", o.uri(prefix))
	if err != nil {
		return err
	}
	var files []string
	err = filepath.WalkDir(src, func(p string, e os.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, p := range files {
		g.Go(func() error {
			rel, err := filepath.Rel(src, p)
			if err != nil {
				return err
			}
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			fi, err := f.Stat()
			if err != nil {
				return err
			}
			return st.Put(ctx, filepath.ToSlash(rel), f, fi.Size())
		})
	}
	return g.Wait()
}

// merges runs item 2's steady-state merge (main's key index current) on
// copies of d on local disk and in the bucket, and checks both mains end
// up with the same keys, each once.
func (o *objstore) merges(ctx context.Context, d dataset) (sideTimes, error) {
	inf := time.Duration(1 << 62)
	t := sideTimes{local: inf, s3: inf}
	for i := range objstoreRuns {
		dir := filepath.Join(o.tmp, fmt.Sprintf("merge-%d", i))
		m, st := filepath.Join(dir, "main"), filepath.Join(dir, "staging")
		if err := laketest.CloneTable(d.mainPath, m); err != nil {
			return t, err
		}
		if err := laketest.CloneTable(d.stagingPath, st); err != nil {
			return t, err
		}
		prefix := fmt.Sprintf("merge-%d", i)
		if err := o.upload(ctx, m, prefix+"/main"); err != nil {
			return t, err
		}
		if err := o.upload(ctx, st, prefix+"/staging"); err != nil {
			return t, err
		}

		t0 := time.Now()
		local, err := merge.Merge(ctx, m, st, merge.Options{})
		if err != nil {
			return t, fmt.Errorf("local merge: %w", err)
		}
		t.local = min(t.local, time.Since(t0))

		opts, err := o.tableOptions()
		if err != nil {
			return t, err
		}
		r0 := o.opener.Requests()
		t0 = time.Now()
		remote, err := merge.Merge(ctx, o.uri(prefix+"/main"), o.uri(prefix+"/staging"), merge.Options{Table: opts})
		if err != nil {
			return t, fmt.Errorf("merge in S3: %w", err)
		}
		if el := time.Since(t0); el < t.s3 {
			t.s3, t.reqs = el, sub(o.opener.Requests(), r0)
		}
		if local.Totals != remote.Totals {
			return t, fmt.Errorf("%w: merge on local disk %+v, in S3 %+v", errAssertion, local.Totals, remote.Totals)
		}
		if i == 0 { // the keys, once: the same data every run
			ld, err := digestTable(ctx, m)
			if err != nil {
				return t, err
			}
			rd, err := digestTableAt(ctx, o.uri(prefix+"/main"), opts)
			if err != nil {
				return t, err
			}
			if ld != rd || rd.Rows != rd.Keys {
				return t, fmt.Errorf("%w: main after the merge on local disk %+v, in S3 %+v", errAssertion, ld, rd)
			}
		}
		os.RemoveAll(dir)
	}
	return t, nil
}

// backfills fetch, parse and stage all of one in-process static log into
// a fresh staging table on local disk and in the bucket (item 3's direct
// backfill), and check each holds every entry once.
func (o *objstore) backfills(ctx context.Context) (sideTimes, int64, error) {
	inf := time.Duration(1 << 62)
	t := sideTimes{local: inf, s3: inf}
	sl, err := o.b.startLogChild(ctx, "static", "objstore", o.b.size.parseN)
	if err != nil {
		return t, 0, err
	}
	defer sl.stop()
	targets := []target{{sl.log, 0, sl.n - 1}}
	for i := range objstoreRuns {
		path := filepath.Join(o.tmp, fmt.Sprintf("backfill-%d", i))
		t0 := time.Now()
		if _, err := directBackfill(ctx, o.b.bufs, path, targets, defaultBackfill); err != nil {
			return t, 0, fmt.Errorf("backfill to local disk: %w", err)
		}
		t.local = min(t.local, time.Since(t0))
		if err := checkStaged(ctx, path, sl.n); err != nil {
			return t, 0, err
		}
		os.RemoveAll(path)

		s := defaultBackfill
		opts, err := o.tableOptions()
		if err != nil {
			return t, 0, err
		}
		s.table = opts
		uri := o.uri(fmt.Sprintf("backfill-%d", i))
		r0 := o.opener.Requests()
		t0 = time.Now()
		if _, err := directBackfill(ctx, o.b.bufs, uri, targets, s); err != nil {
			return t, 0, fmt.Errorf("backfill to S3: %w", err)
		}
		if el := time.Since(t0); el < t.s3 {
			t.s3, t.reqs = el, sub(o.opener.Requests(), r0)
		}
		if err := checkStagedAt(ctx, uri, opts, sl.n); err != nil {
			return t, 0, err
		}
	}
	return t, int64(sl.n), nil
}

// gapDetections plan d's gaps as the planning activity does (main's key
// index current, staging read whole) with both tables on local disk and
// both in the bucket, and check the plans are the same.
func (o *objstore) gapDetections(ctx context.Context, d dataset) (sideTimes, error) {
	inf := time.Duration(1 << 62)
	t := sideTimes{local: inf, s3: inf}
	if err := o.upload(ctx, d.mainPath, "gaps/main"); err != nil {
		return t, err
	}
	if err := o.upload(ctx, d.stagingPath, "gaps/staging"); err != nil {
		return t, err
	}
	var want []gaps.Range
	for range objstoreRuns {
		t0 := time.Now()
		local, err := planning.Detect(ctx, planning.Tables{MainPath: d.mainPath, StagingPath: d.stagingPath}, d.logs, gaps.Options{})
		if err != nil {
			return t, fmt.Errorf("gap detection on local disk: %w", err)
		}
		t.local = min(t.local, time.Since(t0))
		want = local.Ranges

		opts, err := o.tableOptions()
		if err != nil {
			return t, err
		}
		tables := planning.Tables{MainPath: o.uri("gaps/main"), StagingPath: o.uri("gaps/staging"), Storage: opts.Storage, Scratch: opts.Scratch}
		r0 := o.opener.Requests()
		t0 = time.Now()
		remote, err := planning.Detect(ctx, tables, d.logs, gaps.Options{})
		if err != nil {
			return t, fmt.Errorf("gap detection in S3: %w", err)
		}
		if el := time.Since(t0); el < t.s3 {
			t.s3, t.reqs = el, sub(o.opener.Requests(), r0)
		}
		if !slices.Equal(remote.Ranges, want) {
			return t, fmt.Errorf("%w: gap detection in S3 planned %d ranges, on local disk %d; first difference: %s",
				errAssertion, len(remote.Ranges), len(want), firstDiff(remote.Ranges, want))
		}
	}
	if len(want) == 0 {
		return t, fmt.Errorf("%w: no gaps planned in a lake generated with holes", errAssertion)
	}
	return t, nil
}
