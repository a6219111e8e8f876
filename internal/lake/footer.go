package lake

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/apache/arrow-go/v18/parquet/file"
	"golang.org/x/sync/errgroup"

	"github.com/certlake/certlake/internal/delta"
	"github.com/certlake/certlake/internal/storage"
)

// footerReaders is how many footers are read at once: on a remote store
// each is a round trip, and they do not depend on each other.
const footerReaders = 16

// FooterRows counts the rows of data files of the table whose storage is s
// from their Parquet footers (for files whose add action has no
// numRecords). A remote file's footer is read by one ranged GET of its
// tail, never the whole file. A file the log lists but the store lacks is
// an error naming it.
func FooterRows(ctx context.Context, s storage.Store, files []FileInfo) (int64, error) {
	rows := make([]int64, len(files))
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(footerReaders)
	for i, f := range files {
		g.Go(func() error {
			n, err := footerRows(ctx, s, f)
			if err != nil {
				return fmt.Errorf("data file %s listed in the log: %w", f.Path, err)
			}
			rows[i] = n
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	var n int64
	for _, r := range rows {
		n += r
	}
	return n, nil
}

func footerRows(ctx context.Context, s storage.Store, f FileInfo) (int64, error) {
	key, err := delta.Key(f.Path)
	if err != nil {
		return 0, err
	}
	size := f.Size
	if size <= 0 {
		size = -1 // unknown: Stat it
	}
	// A remote file opened with its size is first fetched by the footer
	// read: a missing one shows there.
	missing := func(err error) error { return fmt.Errorf("no such file in %s: %w", s.Location(), err) }
	r, _, err := storage.OpenSized(ctx, s, key, size)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, missing(err)
	}
	if err != nil {
		return 0, err
	}
	defer r.Close()
	pf, err := file.NewParquetReader(r)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, missing(err)
	}
	if err != nil {
		return 0, fmt.Errorf("read its Parquet footer: %w", err)
	}
	defer pf.Close()
	return pf.NumRows(), nil
}
