package gaps

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"

	"github.com/RoaringBitmap/roaring/v2/roaring64"
	"golang.org/x/sync/errgroup"

	"github.com/certlake/certlake/internal/keyindex"
	"github.com/certlake/certlake/internal/lake"
	"github.com/certlake/certlake/internal/storage"
)

// LakeOptions tune DetectLake.
type LakeOptions struct {
	// Workers read main's new files, and staging's, in parallel; 0 means
	// GOMAXPROCS.
	Workers int
	// Progress, when set, is called after each main file indexed.
	Progress func(done, total int)
	// Logger receives a warning when the key index cannot be written;
	// nil discards.
	Logger *slog.Logger
	// StagingStore is the staging table's storage when it is remote:
	// staging files without a LocalPath are read from it by ranged reads
	// of their two key columns, not downloaded whole. nil: staging files
	// are read at their LocalPath.
	StagingStore storage.Store
	// StagingIndex, when set, keeps a key index of staging too (in the
	// staging table, whose metaData.id is StagingTableID): each staging
	// file is read once, when first seen, rather than on every run, which
	// on object storage saves two round trips per file. Only for a table
	// certlake owns: the index is written beside its files.
	StagingIndex   keyindex.Store
	StagingTableID string
}

// LakeStats says what DetectLake read.
type LakeStats struct {
	MainFiles    int   `json:"main_files"`     // live data files of main
	Indexed      int   `json:"indexed"`        // main files read into the key index by this run
	MainRowsRead int64 `json:"main_rows_read"` // rows of main read (the indexed files')
	StagingFiles int   `json:"staging_files"`  // live files of staging
	StagingRows  int64 `json:"staging_rows"`   // rows of staging read (with a staging index, its new files')
}

// DetectLake plans the missing ranges of logs over main ∪ staging, as
// Detect does over their keys. Main's keys come from its key index (package
// keyindex), which this brings up to date first: only the files it does not
// hold yet are read (and saved to it), so a run costs what main gained
// since the last, not what it holds. Staging's keys are read from its
// files' two key columns, or, with LakeOptions.StagingIndex, from a key
// index of staging kept the same way. main is nil when the table does not
// exist; staging lists staging's live files (none without staging).
//
// Memory is main's key index (a few bytes per run of present keys) plus one
// log's runs at a time. A main file that cannot be read fails the run, as
// it would fail a scan of main.
func DetectLake(ctx context.Context, main *lake.Table, staging []lake.FileInfo, logs []LogCeiling, opts Options, lo LakeOptions) ([]Range, LakeStats, error) {
	var st LakeStats
	log := lo.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if err := checkLogs(logs); err != nil {
		return nil, st, err
	}
	listed := make(map[string]bool, len(logs))
	for _, l := range logs {
		listed[l.URL] = true
	}
	var (
		ix        *keyindex.Index
		mainFiles []keyindex.DataFile
	)
	if main != nil {
		snap, err := main.Snapshot(ctx)
		if err != nil {
			return nil, st, err
		}
		mainFiles = dataFiles(main.Files(snap))
		st.MainFiles = len(mainFiles)
		var read func(context.Context, keyindex.DataFile) (keyindex.Keys, int64, error)
		if !main.IsLocal() {
			read = keyindex.ReadFromStorage(main.Store()) // ranged reads of the key columns
		}
		var res keyindex.UpdateResult
		ix, res, err = updateIndex(ctx, "main", keyindex.FromStorage(main.Store()), snap.Metadata.ID, mainFiles,
			keyindex.UpdateOptions{Workers: lo.Workers, Progress: lo.Progress, Read: read}, log)
		if err != nil {
			return nil, st, fmt.Errorf("read main's keys: %w", err)
		}
		st.Indexed, st.MainRowsRead = res.Indexed, res.Rows
	}
	// Each log's staging sets are parts of its keys, never unioned.
	stagingKeys := map[string][]*roaring64.Bitmap{}
	if lo.StagingIndex != nil && lo.StagingTableID != "" {
		sx, rows, err := indexStaging(ctx, staging, lo, log)
		if err != nil {
			return nil, st, fmt.Errorf("read staging's keys: %w", err)
		}
		files := dataFiles(staging)
		for u := range listed {
			parts, missing := sx.Parts(files, u)
			if len(missing) > 0 {
				return nil, st, fmt.Errorf("staging file %s is not in staging's key index", missing[0].Path)
			}
			stagingKeys[u] = parts
		}
		st.StagingFiles, st.StagingRows = len(staging), rows
	} else {
		read, err := readStaging(ctx, staging, lo)
		if err != nil {
			return nil, st, fmt.Errorf("read staging's keys: %w", err)
		}
		for _, r := range read {
			st.StagingFiles++
			st.StagingRows += r.rows
			for u, bm := range r.keys {
				if listed[u] {
					stagingKeys[u] = append(stagingKeys[u], bm)
				}
			}
		}
	}
	keysOf := func(ctx context.Context, url string) ([]*roaring64.Bitmap, error) {
		var parts []*roaring64.Bitmap
		if ix != nil {
			var missing []keyindex.DataFile
			if parts, missing = ix.Parts(mainFiles, url); len(missing) > 0 {
				// Update read every file or failed: this cannot happen.
				return nil, fmt.Errorf("main file %s is not in the key index", missing[0].Path)
			}
		}
		return append(parts, stagingKeys[url]...), nil
	}
	ranges, err := DetectSets(ctx, logs, keysOf, opts)
	return ranges, st, err
}

// updateIndex loads the key index of a table (what names it in logs) and
// brings it up to date with its live files.
func updateIndex(ctx context.Context, what string, store keyindex.Store, tableID string, files []keyindex.DataFile, opts keyindex.UpdateOptions, log *slog.Logger) (*keyindex.Index, keyindex.UpdateResult, error) {
	ix, err := keyindex.Load(ctx, store, tableID)
	if err != nil {
		return nil, keyindex.UpdateResult{}, err
	}
	if ix.Skipped > 0 {
		log.WarnContext(ctx, what+"'s key index: segments skipped (unreadable or of an earlier table at this path): their files are read again", "segments", ix.Skipped)
	}
	opts.SaveFailed = func(err error) {
		log.WarnContext(ctx, what+"'s key index not saved: the next run reads these files again", "err", err)
	}
	res, err := ix.Update(ctx, files, opts)
	return ix, res, err
}

// indexStaging brings staging's key index up to date with its live files
// and returns it with the rows it read (those of files new to it).
func indexStaging(ctx context.Context, staging []lake.FileInfo, lo LakeOptions, log *slog.Logger) (*keyindex.Index, int64, error) {
	var read func(context.Context, keyindex.DataFile) (keyindex.Keys, int64, error)
	workers := lo.Workers
	if lo.StagingStore != nil {
		remote := keyindex.ReadFromStorage(lo.StagingStore)
		read = func(ctx context.Context, f keyindex.DataFile) (keyindex.Keys, int64, error) {
			if f.LocalPath != "" {
				return keyindex.ReadFileKeys(ctx, f.LocalPath)
			}
			return remote(ctx, f)
		}
		if len(staging) > 0 && staging[0].LocalPath == "" {
			// Reads of a remote file wait on round trips more than they
			// use a core.
			workers = max(cmp.Or(workers, runtime.GOMAXPROCS(0)), remoteReaders)
		}
	}
	ix, res, err := updateIndex(ctx, "staging", lo.StagingIndex, lo.StagingTableID, dataFiles(staging),
		keyindex.UpdateOptions{Workers: workers, Read: read}, log)
	return ix, res.Rows, err
}

// dataFiles are the key index's view of a table's live files.
func dataFiles(files []lake.FileInfo) []keyindex.DataFile {
	out := make([]keyindex.DataFile, len(files))
	for i, f := range files {
		out[i] = keyindex.DataFile{Path: f.Path, LocalPath: f.LocalPath, Size: f.Size}
	}
	return out
}

// remoteReaders is the least number of files read at once from a remote
// store.
const remoteReaders = 16

// stagingFile is what one staging file holds.
type stagingFile struct {
	keys keyindex.Keys
	rows int64
}

// readStaging reads the keys of the staging files, lo.Workers at a time
// (a remote file's reads are round trips: one after the other, tens of
// files cost tens of round trips in a row). A file with a LocalPath is
// read there, any other from lo.StagingStore.
func readStaging(ctx context.Context, staging []lake.FileInfo, lo LakeOptions) ([]stagingFile, error) {
	out := make([]stagingFile, len(staging))
	var remote func(context.Context, keyindex.DataFile) (keyindex.Keys, int64, error)
	if lo.StagingStore != nil {
		remote = keyindex.ReadFromStorage(lo.StagingStore)
	}
	workers := cmp.Or(lo.Workers, runtime.GOMAXPROCS(0))
	if remote != nil {
		// Reads of a remote file wait on round trips more than they use
		// a core.
		workers = max(workers, remoteReaders)
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	for i, f := range staging {
		g.Go(func() error {
			var err error
			switch {
			case f.LocalPath != "":
				out[i].keys, out[i].rows, err = keyindex.ReadFileKeys(ctx, f.LocalPath)
			case remote != nil:
				out[i].keys, out[i].rows, err = remote(ctx, keyindex.DataFile{Path: f.Path, Size: f.Size})
				if err != nil {
					err = fmt.Errorf("%s: %w", f.Path, err)
				}
			default:
				err = fmt.Errorf("staging file %s has no local copy and no store to read it from", f.Path)
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}
