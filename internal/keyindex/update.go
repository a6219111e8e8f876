package keyindex

import (
	"context"
	"fmt"
	"runtime"
	"sync"

	"github.com/RoaringBitmap/roaring/v2/roaring64"
)

// DataFile is a live data file of the table: its Delta add path and size,
// and where to read it.
type DataFile struct {
	Path      string
	LocalPath string
	Size      int64
}

// UpdateOptions tune Update.
type UpdateOptions struct {
	// Workers read files in parallel; 0 means GOMAXPROCS.
	Workers int
	// SaveRows is the rows read between two saves (segments), so that an
	// interrupted first build keeps most of its work; 0 means 50M.
	SaveRows int64
	// Progress, when set, is called after each file read with the files
	// done and to do.
	Progress func(done, total int)
	// Unreadable, when set, makes a file that cannot be read a warning:
	// it is called and the file left out of the index. When nil, such a
	// file fails Update.
	Unreadable func(f DataFile, err error)
	// SaveFailed, when set, makes a failed save a warning: the index is
	// a cache, and a run that cannot write it (a read-only table) still
	// has the keys it read. When nil, a failed save fails Update.
	SaveFailed func(err error)
	// Read reads a file's keys; nil means ReadFileKeys of its LocalPath.
	Read func(ctx context.Context, f DataFile) (Keys, int64, error)
}

// UpdateResult counts what Update did.
type UpdateResult struct {
	Files      int   // live data files
	Known      int   // of those, already in the index
	Indexed    int   // read and added by this call
	Unreadable int   // could not be read; left out
	Rows       int64 // rows read to index them
}

// Update brings the index up to date with the table's live files: each
// file without an entry is read once and its keys saved. Files that live
// does not list are left alone (and dropped at compaction).
func (ix *Index) Update(ctx context.Context, live []DataFile, opts UpdateOptions) (UpdateResult, error) {
	res := UpdateResult{Files: len(live)}
	sizes := make(map[string]int64, len(live))
	var todo []DataFile
	for _, f := range live {
		sizes[f.Path] = f.Size
		if _, ok := ix.Lookup(f.Path, f.Size); ok {
			res.Known++
			continue
		}
		todo = append(todo, f)
	}
	if len(todo) == 0 {
		if len(ix.stale) > 0 {
			return res, ix.save(ctx, nil, sizes, opts.SaveFailed)
		}
		return res, nil
	}
	read := opts.Read
	if read == nil {
		read = func(ctx context.Context, f DataFile) (Keys, int64, error) { return ReadFileKeys(ctx, f.LocalPath) }
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	saveRows := opts.SaveRows
	if saveRows <= 0 {
		saveRows = 50_000_000
	}
	type result struct {
		f    DataFile
		keys Keys
		rows int64
		err  error
	}
	// Workers read in parallel; this goroutine saves in file order.
	cctx, cancel := context.WithCancel(ctx)
	jobs := make(chan int)
	out := make([]chan result, len(todo))
	for i := range out {
		out[i] = make(chan result, 1)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(jobs)
		for i := range todo {
			select {
			case jobs <- i:
			case <-cctx.Done():
				return
			}
		}
	})
	for range workers {
		wg.Go(func() {
			for i := range jobs {
				k, n, err := read(cctx, todo[i])
				out[i] <- result{todo[i], k, n, err}
			}
		})
	}
	defer func() {
		cancel()
		wg.Wait()
	}()
	var (
		pending     []File
		pendingRows int64
	)
	for i := range todo {
		var r result
		select {
		case r = <-out[i]:
		case <-cctx.Done():
			return res, ctx.Err()
		}
		if r.err != nil {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			if opts.Unreadable == nil {
				return res, fmt.Errorf("index %s: %w", r.f.Path, r.err)
			}
			res.Unreadable++
			opts.Unreadable(r.f, r.err)
			continue
		}
		pending = append(pending, File{Path: r.f.Path, Size: r.f.Size, Rows: r.rows, Keys: r.keys})
		pendingRows += r.rows
		res.Indexed++
		res.Rows += r.rows
		if opts.Progress != nil {
			opts.Progress(i+1, len(todo))
		}
		if pendingRows >= saveRows {
			if err := ix.save(ctx, pending, sizes, opts.SaveFailed); err != nil {
				return res, err
			}
			pending, pendingRows = nil, 0
		}
	}
	return res, ix.save(ctx, pending, sizes, opts.SaveFailed)
}

// save is Save, with failures passed to failed when it is set. The files
// are in the loaded index either way.
func (ix *Index) save(ctx context.Context, files []File, live map[string]int64, failed func(error)) error {
	err := ix.Save(ctx, files, live)
	if err != nil && failed != nil && ctx.Err() == nil {
		failed(err)
		return nil
	}
	return err
}

// Parts returns log url's key sets in the indexed files among files (the
// index's own bitmaps: the caller must not modify them), and the files
// among them that have no entry (their keys are not in the parts).
func (ix *Index) Parts(files []DataFile, url string) ([]*roaring64.Bitmap, []DataFile) {
	var (
		parts   []*roaring64.Bitmap
		missing []DataFile
	)
	for _, f := range files {
		e, ok := ix.Lookup(f.Path, f.Size)
		if !ok {
			missing = append(missing, f)
			continue
		}
		if bm := e.Keys[url]; bm != nil {
			parts = append(parts, bm)
		}
	}
	return parts, missing
}
