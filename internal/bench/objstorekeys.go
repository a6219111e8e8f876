package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/certlake/certlake/internal/gaps"
	"github.com/certlake/certlake/internal/planning"
	"github.com/certlake/certlake/internal/storage"
)

// objstoreKeysItem is item 7b: item 7's gap detection, S3 vs local disk,
// at a size where the lake's keys matter rather than a fixed number of
// round trips: item 6's smaller narrow main (its key index current, kept
// in the bucket beside the table as a worker keeps it) and items 1-2's
// staging.
func (b *bench) objstoreKeysItem(ctx context.Context) error {
	top, x := slices.Max(b.size.narrowX), slices.Min(b.size.narrowX)
	s := b.spec(top)
	pool, err := b.narrowPool(ctx, s)
	if err != nil {
		return err
	}
	n := len(pool) * x / top
	mainPath, err := b.linkNarrowMain(ctx, s, pool, n)
	if err != nil {
		return err
	}
	stagingPath := filepath.Join(b.dir, "narrow-staging")
	if err := b.once(ctx, stagingPath, func() error { return genStaging(ctx, stagingPath, b.spec(1)) }); err != nil {
		return fmt.Errorf("generate staging: %w", err)
	}
	d := dataset{mainPath: mainPath, stagingPath: stagingPath, narrow: true}
	for l := range s.logs {
		d.logs = append(d.logs, gaps.LogCeiling{URL: s.url(l), Ceiling: uint64(s.base(l) + 90_000_000)})
	}
	for _, f := range pool[:n] {
		d.mainRows += f.Rows
	}
	if d.stagingRows, err = tableRows(ctx, stagingPath); err != nil {
		return err
	}
	// Bring main's key index current on disk before the upload (a no-op
	// when item 6 left it so), so both sides plan from a current index.
	if _, err := planning.Detect(ctx, planning.Tables{MainPath: mainPath, StagingPath: stagingPath}, d.logs, gaps.Options{}); err != nil {
		return fmt.Errorf("index main: %w", err)
	}

	o, stop, err := b.startObjstore(ctx)
	if err != nil || o == nil {
		return err
	}
	defer stop()
	g, err := o.gapDetections(ctx, d)
	if err != nil {
		return err
	}
	b.table.add(row{what: fmt.Sprintf("object storage: gap detection, narrow main %s keys in %d files (key index current, in the bucket) + %s staging rows, S3 vs local disk (cold scratch cache)", count(d.mainRows), n, count(d.stagingRows)),
		certlake: secs(g.s3), reference: secs(g.local) + " local", ratio: times(g.ratio()),
		target: "S3 <= 2x local", result: passIf(g.ratio() <= 2)})
	b.table.add(row{what: "object storage: S3 requests per gap detection of the narrow main", certlake: requestsText(g.reqs)})
	return nil
}

// startObjstore starts item 7's versitygw and bucket; o is nil (and err
// too) when the server is not installed outside CI, the row saying so.
func (b *bench) startObjstore(ctx context.Context) (o *objstore, stop func(), err error) {
	tmp, err := b.runDir("objstore-")
	if err != nil {
		return nil, nil, err
	}
	srv, err := startS3Server(ctx, tmp)
	if err == errNoS3Server && os.Getenv("CI") == "" {
		os.RemoveAll(tmp)
		b.table.add(row{what: "object storage: not run", certlake: err.Error()})
		return nil, nil, nil
	}
	if err != nil {
		os.RemoveAll(tmp)
		return nil, nil, err
	}
	stop = func() { srv.stop(); os.RemoveAll(tmp) }
	o = &objstore{b: b, srv: srv, opener: &storage.Opener{S3: srv.config()}, bucket: "bench", tmp: tmp}
	if err := srv.createBucket(ctx, o.bucket); err != nil {
		stop()
		return nil, nil, err
	}
	return o, stop, nil
}
