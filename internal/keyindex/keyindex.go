// Package keyindex keeps, beside a certlake table's data files, the range of
// cert_index each log (source_url) has in each file.
//
// Delta's per-file stats bound each column on its own. A live ingester's
// files hold every log's entries of one time window, so their source_url
// bounds span all logs and their cert_index bounds span the smallest to the
// largest log: the stats can rule out almost no file for a merge batch, and
// every batch would read the keys of the whole main table. Per file and
// log, the ranges are narrow (a window of each log), so with this index a
// batch reads only the files of the windows its keys fall in, and a merge
// costs what it stages, not what main holds.
//
// The index is a cache. It lives in the table directory (under Dir, which
// Delta readers ignore: its name starts with an underscore), as immutable
// segment files, each written once (temp file, fsync, rename) and naming the
// table's metaData.id. An entry is used only for the file it was computed
// from: same Delta path and size (Delta data files are immutable and their
// names unique). A missing, stale or unreadable segment only means files
// without an entry, which callers read as before; an entry is never guessed.
package keyindex

import (
	"cmp"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Dir is the index directory inside a table's root.
const Dir = "_certlake_keyindex"

// formatVersion is the segment format this package writes and reads.
const formatVersion = 1

// maxSegments is the number of segments past which Save compacts the index
// into one segment of the live files' entries.
const maxSegments = 16

// LogRange is where one log's rows lie in one data file: Rows rows with
// source_url == SourceURL and Min <= cert_index <= Max.
type LogRange struct {
	SourceURL string
	Min, Max  uint64
	Rows      int64
}

// File is the index entry of one data file: its Delta add path and size,
// and its logs' ranges sorted by SourceURL. Rows with a null source_url or
// cert_index are not covered: they hold no key.
type File struct {
	Path string
	Size int64
	Logs []LogRange
}

// MayHold reports whether the file may hold a key of log url with
// lo <= cert_index <= hi.
func (f File) MayHold(url string, lo, hi uint64) bool {
	i, found := slices.BinarySearchFunc(f.Logs, url, func(r LogRange, u string) int { return cmp.Compare(r.SourceURL, u) })
	if !found {
		return false
	}
	r := f.Logs[i]
	return r.Min <= hi && lo <= r.Max
}

// Index is the loaded index of one table.
type Index struct {
	root     string
	tableID  string
	files    map[string]File // by Delta path
	segments []string        // segment file names loaded (this table's or foreign)
	// Skipped counts segment files that could not be read or belong to
	// another table id (a table recreated at the same path); their entries
	// are ignored and the next compaction removes them.
	Skipped int
}

// Load reads the index of the table at root whose metaData.id is tableID.
// A table without an index gives an empty index. Unreadable segments are
// counted in Skipped, not returned as errors: the index is a cache.
func Load(root, tableID string) (*Index, error) {
	ix := &Index{root: root, tableID: tableID, files: map[string]File{}}
	ents, err := os.ReadDir(filepath.Join(root, Dir))
	if errors.Is(err, fs.ErrNotExist) {
		return ix, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read key index of %s: %w", root, err)
	}
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, segmentSuffix) || strings.HasPrefix(name, ".") {
			continue
		}
		ix.segments = append(ix.segments, name)
		seg, err := readSegment(filepath.Join(root, Dir, name))
		if err != nil || seg.TableID != tableID {
			ix.Skipped++
			continue
		}
		for _, f := range seg.files() {
			ix.files[f.Path] = f
		}
	}
	return ix, nil
}

// Len is the number of files with an entry.
func (ix *Index) Len() int { return len(ix.files) }

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
// files' entries and removes the segments it replaced.
func (ix *Index) Save(files []File, live map[string]int64) error {
	for _, f := range files {
		ix.files[f.Path] = f
	}
	dir := filepath.Join(ix.root, Dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create key index directory: %w", err)
	}
	compact := live != nil && len(ix.segments)+1 > maxSegments
	if compact {
		files = files[:0:0]
		for p, f := range ix.files {
			if size, ok := live[p]; ok && size == f.Size {
				files = append(files, f)
			}
		}
	}
	if len(files) == 0 && !compact {
		return nil
	}
	name, err := writeSegment(dir, ix.tableID, files)
	if err != nil {
		return err
	}
	if compact {
		// Only segments this Index loaded: one a concurrent Save wrote
		// meanwhile stays (at worst its entries are read twice).
		for _, s := range ix.segments {
			_ = os.Remove(filepath.Join(dir, s))
		}
		ix.segments = nil
	}
	ix.segments = append(ix.segments, name)
	return nil
}

const segmentSuffix = ".json.gz"

// segment is the on-disk form of a set of entries: URLs are listed once and
// referred to by position, as every file of a main table names the same
// logs.
type segment struct {
	Format  int           `json:"format"`
	TableID string        `json:"table_id"`
	URLs    []string      `json:"urls"`
	Files   []segmentFile `json:"files"`
}

type segmentFile struct {
	Path string `json:"path"`
	Size int64  `json:"size"`
	// Logs are [url position, min, max, rows].
	Logs [][4]uint64 `json:"logs"`
}

func (s *segment) files() []File {
	out := make([]File, 0, len(s.Files))
	for _, sf := range s.Files {
		f := File{Path: sf.Path, Size: sf.Size, Logs: make([]LogRange, 0, len(sf.Logs))}
		for _, l := range sf.Logs {
			f.Logs = append(f.Logs, LogRange{SourceURL: s.URLs[l[0]], Min: l[1], Max: l[2], Rows: int64(l[3])})
		}
		slices.SortFunc(f.Logs, func(a, b LogRange) int { return cmp.Compare(a.SourceURL, b.SourceURL) })
		out = append(out, f)
	}
	return out
}

func readSegment(path string) (*segment, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	var s segment
	dec := json.NewDecoder(zr)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, err
	}
	if s.Format != formatVersion {
		return nil, fmt.Errorf("key index segment format %d, want %d", s.Format, formatVersion)
	}
	for _, sf := range s.Files {
		for _, l := range sf.Logs {
			if l[0] >= uint64(len(s.URLs)) || l[1] > l[2] {
				return nil, fmt.Errorf("key index segment entry of %s is malformed", sf.Path)
			}
		}
	}
	return &s, nil
}

// writeSegment writes files as a new segment in dir and returns its name.
func writeSegment(dir, tableID string, files []File) (string, error) {
	s := segment{Format: formatVersion, TableID: tableID}
	pos := map[string]uint64{}
	for _, f := range files {
		sf := segmentFile{Path: f.Path, Size: f.Size}
		for _, l := range f.Logs {
			p, ok := pos[l.SourceURL]
			if !ok {
				p = uint64(len(s.URLs))
				pos[l.SourceURL] = p
				s.URLs = append(s.URLs, l.SourceURL)
			}
			sf.Logs = append(sf.Logs, [4]uint64{p, l.Min, l.Max, uint64(l.Rows)})
		}
		s.Files = append(s.Files, sf)
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return "", fmt.Errorf("write key index segment: %w", err)
	}
	defer os.Remove(tmp.Name())
	zw := gzip.NewWriter(tmp)
	err = json.NewEncoder(zw).Encode(&s)
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("write key index segment: %w", err)
	}
	// Names sort by creation time; the random part keeps concurrent
	// writers apart.
	name := fmt.Sprintf("%020d-%s%s", time.Now().UnixNano(), strings.TrimPrefix(filepath.Base(tmp.Name()), ".tmp-"), segmentSuffix)
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return "", fmt.Errorf("write key index segment: %w", err)
	}
	return name, nil
}
