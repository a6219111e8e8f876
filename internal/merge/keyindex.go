package merge

import (
	"cmp"
	"context"
	"io"
	"log/slog"
	"slices"

	"github.com/certlake/certlake/internal/keyindex"
	"github.com/certlake/certlake/internal/lake"
)

// IndexOptions tune IndexMain.
type IndexOptions struct {
	// DB.Threads, when set, bounds the files read in parallel (the other
	// fields are unused: the files are read without DuckDB).
	DB DBOptions
	// Progress, when set, is called after each file with the files
	// indexed so far and the files to index.
	Progress func(done, total int)
	// Logger receives a warning per unreadable file; nil discards.
	Logger *slog.Logger
}

// IndexResult counts what IndexMain did.
type IndexResult struct {
	Files      int   `json:"files"`      // live data files of main holding rows
	Known      int   `json:"known"`      // of those, already in the key index
	Indexed    int   `json:"indexed"`    // indexed by this call
	Unreadable int   `json:"unreadable"` // could not be read; left unindexed
	Rows       int64 `json:"rows"`       // rows read to index them
}

// IndexMain brings main's key index (see package keyindex) up to date:
// every live data file not yet in it has its two key columns read once and
// its exact key set per log saved. A merge batch then anti-joins against
// those sets and reads no main file for keys, except the ones added since
// (by the live ingester, while the merge runs).
//
// A file that cannot be read is left out of the index, with a warning: the
// batches that need it read it themselves and fail naming the batch. The
// index is a cache: an error here never makes a merge wrong, only slower.
func IndexMain(ctx context.Context, main *lake.Table, opts IndexOptions) (IndexResult, error) {
	var res IndexResult
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	snap, err := main.Snapshot(ctx)
	if err != nil {
		return res, err
	}
	// The index lives beside the data files, in main's own storage.
	ix, err := keyindex.Load(ctx, keyindex.FromStorage(main.Store()), snap.Metadata.ID)
	if err != nil {
		return res, err
	}
	if ix.Skipped > 0 {
		log.WarnContext(ctx, "key index segments skipped (unreadable or of an earlier table at this path): their files are read again", "segments", ix.Skipped)
	}
	var live []keyindex.DataFile
	for _, a := range snap.Files {
		if statsBox(a).Rows == 0 {
			continue
		}
		df := keyindex.DataFile{Path: a.Path, Size: a.Size}
		if main.IsLocal() {
			df.LocalPath = snap.LocalPath(a)
		}
		live = append(live, df)
	}
	var read func(context.Context, keyindex.DataFile) (keyindex.Keys, int64, error)
	if !main.IsLocal() {
		read = keyindex.ReadFromStorage(main.Store())
	}
	ur, err := ix.Update(ctx, live, keyindex.UpdateOptions{
		Workers:  opts.DB.Threads,
		Progress: opts.Progress,
		Read:     read,
		Unreadable: func(f keyindex.DataFile, err error) {
			log.WarnContext(ctx, "main file not indexed: it could not be read", "file", f.Path, "err", err)
		},
	})
	res = IndexResult{Files: ur.Files, Known: ur.Known, Indexed: ur.Indexed, Unreadable: ur.Unreadable, Rows: ur.Rows}
	return res, err
}

// mayBeIn reports whether a file with index entry f may hold a key of ks:
// some range of ks overlaps the span of the file's keys of the same log.
func (ks keySet) mayBeIn(f keyindex.File) bool {
	for u, bm := range f.Keys {
		if bm.IsEmpty() {
			continue
		}
		lo, hi := bm.Minimum(), bm.Maximum()
		rs := ks.exact[u]
		// The first range ending at or after the file's first index.
		i, _ := slices.BinarySearchFunc(rs, lo, func(r KeyRange, v uint64) int { return cmp.Compare(r.End, v) })
		if i < len(rs) && rs[i].Start <= hi {
			return true
		}
	}
	return false
}
