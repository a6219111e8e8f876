// Package keyindex keeps, beside a certlake table's data files, the exact
// set of cert_index values each log (source_url) has in each file, as
// roaring bitmaps (github.com/RoaringBitmap/roaring/v2, 64-bit: CT indices
// are below 2^32 today, the table's column is a long).
//
// Gap detection and the merge's anti-join need main's keys. Reading them
// from the data files costs what the lake holds, on every run; with this
// index each file is read once, when first seen, and a run costs what
// changed since. CT logs are dense, so a log's keys in a file compress to a
// few runs: a billion keys with the benchmark's holes take tens of MB.
//
// The index is a cache, never the source of truth. It lives beside the
// table (under Dir, which Delta readers ignore: its name starts with an
// underscore), as immutable segments written whole (see Store), each naming
// the table's metaData.id and checksummed. An entry is used only for the
// file it was computed from: same Delta path and size (Delta data files are
// immutable and their names unique); files the Delta log no longer lists
// are never asked for and drop out at the next compaction. A missing, stale
// or unreadable segment only means files without an entry, which are read
// again; an entry is never guessed. Segments of the earlier format
// (per-file ranges, "*.json.gz") are ignored and deleted at the next Save.
//
// The first build of a large table reads every file once, so reading keys
// is the hot path. A file's two key columns are read with parquet-go's page
// API (github.com/parquet-go/parquet-go), which hands over each page's
// decoded values (source_url's dictionary indices, cert_index's int64s)
// without building Arrow arrays; a log's keys are gathered as runs and set
// into a bit array once per file (builder.go), because adding runs one by
// one to a roaring bitmap copies its container per run. Measured on the
// benchmark's billion-key main (docs/benchmarks.md, item 6): 10-15 ns of
// CPU per row against 53 ns with arrow-go's record reader and per-run adds.
package keyindex

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/RoaringBitmap/roaring/v2/roaring64"
)

// Dir is the index directory inside a table's root.
const Dir = "_certlake_keyindex"

// formatVersion is the segment format this package writes and reads. 1 was
// per-file, per-log ranges (JSON); 2 is exact key sets.
const formatVersion = 2

// maxSegments is the number of segments past which Save compacts the index
// into one segment of the live files' entries.
const maxSegments = 16

// Keys are a file's keys: per source_url, its cert_index values.
type Keys map[string]*roaring64.Bitmap

// LogRange summarizes one log's keys in one file.
type LogRange struct {
	SourceURL string
	Min, Max  uint64
	Rows      int64 // distinct keys
}

// File is the index entry of one data file: its Delta add path and size,
// and its keys. Rows counts the rows holding a key (non-null source_url and
// cert_index); a key held twice counts twice there and once in Keys.
type File struct {
	Path string
	Size int64
	Rows int64
	Keys Keys
}

// urls returns the file's logs, sorted.
func (f File) urls() []string { return slices.Sorted(maps.Keys(f.Keys)) }

// Logs summarizes the file's keys per log, sorted by SourceURL.
func (f File) Logs() []LogRange {
	out := make([]LogRange, 0, len(f.Keys))
	for _, u := range f.urls() {
		bm := f.Keys[u]
		if bm.IsEmpty() {
			continue
		}
		out = append(out, LogRange{SourceURL: u, Min: bm.Minimum(), Max: bm.Maximum(), Rows: int64(bm.GetCardinality())})
	}
	slices.SortFunc(out, func(a, b LogRange) int { return cmp.Compare(a.SourceURL, b.SourceURL) })
	return out
}

// Index is the loaded index of one table. It is not safe for concurrent
// use; separate Index values of one table (other processes) may Save
// concurrently.
type Index struct {
	store    Store
	tableID  string
	files    map[string]File // by Delta path
	segments []string        // segment names loaded, this table's
	// stale are segments to delete at the next Save: unreadable, of
	// another table id (a table recreated at the same path) or of the
	// earlier format.
	stale []string
	// Skipped counts segments that could not be read or belong to
	// another table id; their entries are ignored.
	Skipped int
	// Outdated counts segments of the earlier format (ranges); ignored.
	Outdated int
}

// Load reads the index in store of the table whose metaData.id is tableID.
// A table without an index gives an empty index. Unreadable segments are
// counted in Skipped, not returned as errors: the index is a cache. Only a
// store that cannot be listed is an error.
func Load(ctx context.Context, store Store, tableID string) (*Index, error) {
	ix := &Index{store: store, tableID: tableID, files: map[string]File{}}
	names, err := store.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("read key index: %w", err)
	}
	slices.Sort(names) // oldest first: a later entry of a path wins
	for _, name := range names {
		switch {
		case strings.HasSuffix(name, oldSegmentSuffix):
			ix.Outdated++
			ix.stale = append(ix.stale, name)
			continue
		case !strings.HasSuffix(name, segmentSuffix):
			continue
		}
		id, files, err := readSegment(ctx, store, name)
		if err != nil || id != tableID {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			ix.Skipped++
			ix.stale = append(ix.stale, name)
			continue
		}
		ix.segments = append(ix.segments, name)
		for _, f := range files {
			ix.files[f.Path] = f
		}
	}
	return ix, nil
}

func readSegment(ctx context.Context, store Store, name string) (id string, files []File, err error) {
	defer func() {
		if r := recover(); r != nil { // a bitmap decoder that panics on bad bytes
			err = fmt.Errorf("%w: %v", errCorrupt, r)
		}
	}()
	data, err := store.Read(ctx, name)
	if err != nil {
		return "", nil, err
	}
	return decodeSegment(data)
}

// Len is the number of files with an entry.
func (ix *Index) Len() int { return len(ix.files) }

// Segments is the number of segments the index was loaded from or saved.
func (ix *Index) Segments() int { return len(ix.segments) }

// Lookup returns the entry of the data file with Delta path path and size
// size, if the index has one for exactly that file.
func (ix *Index) Lookup(path string, size int64) (File, bool) {
	f, ok := ix.files[path]
	if !ok || f.Size != size {
		return File{}, false
	}
	return f, true
}

// Save adds files to the index in a new segment. live, when not nil, names
// the table's live data files (Delta path to size): once the index has more
// than maxSegments segments, Save rewrites it as one segment of the live
// files' entries and removes the segments it replaced. Stale segments
// (unreadable, another table's, the earlier format) are deleted.
func (ix *Index) Save(ctx context.Context, files []File, live map[string]int64) error {
	for _, f := range files {
		ix.files[f.Path] = f
	}
	compact := live != nil && len(ix.segments)+1 > maxSegments
	if compact {
		files = files[:0:0]
		for _, p := range slices.Sorted(maps.Keys(ix.files)) {
			if size, ok := live[p]; ok && size == ix.files[p].Size {
				files = append(files, ix.files[p])
			}
		}
	}
	if len(files) > 0 || compact {
		data, err := encodeSegment(ix.tableID, files)
		if err != nil {
			return err
		}
		// Names sort by creation time; the random part keeps concurrent
		// writers apart.
		var rnd [6]byte
		_, _ = rand.Read(rnd[:])
		name := fmt.Sprintf("%020d-%s%s", time.Now().UnixNano(), hex.EncodeToString(rnd[:]), segmentSuffix)
		if err := ix.store.Write(ctx, name, data); err != nil {
			return err
		}
		if compact {
			// Only segments this Index loaded: one a concurrent Save
			// wrote meanwhile stays (at worst its entries are read twice).
			ix.stale = append(ix.stale, ix.segments...)
			ix.segments = nil
			for p, f := range ix.files {
				if size, ok := live[p]; !ok || size != f.Size {
					delete(ix.files, p)
				}
			}
		}
		ix.segments = append(ix.segments, name)
	}
	for _, s := range ix.stale {
		if err := ix.store.Delete(ctx, s); err != nil {
			return err
		}
	}
	ix.stale = nil
	return nil
}

// MayHold reports whether the file may hold a key of log url with
// lo <= cert_index <= hi: the log's keys in the file span that range.
func (f File) MayHold(url string, lo, hi uint64) bool {
	bm := f.Keys[url]
	return bm != nil && !bm.IsEmpty() && bm.Minimum() <= hi && lo <= bm.Maximum()
}
