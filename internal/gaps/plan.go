package gaps

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/certlake/certlake/internal/storage"
)

// A plan file holds one Range per line as JSON (JSON Lines), in plan order:
//
//	{"source_url":"https://ct.example.com/logs/a","start":14,"end":14}
//
// A path ending in ".gz" is gzip-compressed. A plan of millions of ranges is
// too big for a Temporal payload (2 MB), so it travels by path or URI
// (lake.plan_dir may be a prefix in an object store).

// WritePlan writes ranges as the object key of s. The store's Put is
// atomic: a reader sees the old plan or the new one, never part of one.
func WritePlan(ctx context.Context, s storage.Store, key string, ranges []Range) error {
	var buf bytes.Buffer
	var w io.Writer = &buf
	var zw *gzip.Writer
	if strings.HasSuffix(key, ".gz") {
		zw = gzip.NewWriter(&buf)
		w = zw
	}
	enc := json.NewEncoder(w)
	for _, r := range ranges {
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("write plan %s: %w", storage.Join(s.Location(), key), err)
		}
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			return fmt.Errorf("write plan %s: %w", storage.Join(s.Location(), key), err)
		}
	}
	if err := s.Put(ctx, key, bytes.NewReader(buf.Bytes()), int64(buf.Len())); err != nil {
		return fmt.Errorf("write plan: %w", err)
	}
	return nil
}

// ErrMalformedPlan reports a plan file that is not a list of valid ranges.
var ErrMalformedPlan = errors.New("malformed plan")

// ReadPlan reads a plan WritePlan wrote. A line that is not a range with a
// source_url and start <= end is an error wrapping ErrMalformedPlan that
// names the line.
func ReadPlan(ctx context.Context, s storage.Store, key string) ([]Range, error) {
	path := storage.Join(s.Location(), key)
	f, err := s.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("read plan: %w", err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(key, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("read plan %s: %w", path, err)
		}
		defer zr.Close()
		r = zr
	}
	var out []Range
	urls := make(map[string]string) // one copy of each URL, not one per range
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		b := sc.Bytes()
		if len(strings.TrimSpace(string(b))) == 0 {
			continue
		}
		var rg Range
		if err := json.Unmarshal(b, &rg); err != nil {
			return nil, fmt.Errorf("read plan %s line %d: %w: %v", path, line, ErrMalformedPlan, err)
		}
		if rg.SourceURL == "" || rg.Start > rg.End {
			return nil, fmt.Errorf("read plan %s line %d: %w: want source_url and start <= end, got %s", path, line, ErrMalformedPlan, b)
		}
		if u, ok := urls[rg.SourceURL]; ok {
			rg.SourceURL = u
		} else {
			urls[rg.SourceURL] = rg.SourceURL
		}
		out = append(out, rg)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read plan %s: %w", path, err)
	}
	return out, nil
}

// Summary counts a plan, for logs and payloads that cannot carry the plan.
type Summary struct {
	Logs    int                   `json:"logs"`    // logs with at least one range
	Ranges  int                   `json:"ranges"`  // number of ranges
	Entries uint64                `json:"entries"` // entries in all ranges
	PerLog  map[string]LogSummary `json:"per_log"` // keyed by source_url
}

// LogSummary counts one log's part of a plan.
type LogSummary struct {
	Ranges  int    `json:"ranges"`
	Entries uint64 `json:"entries"`
	First   uint64 `json:"first"` // lowest planned index (inclusive)
	Last    uint64 `json:"last"`  // highest planned index (inclusive)
}

// Summarize counts ranges per log.
func Summarize(ranges []Range) Summary {
	s := Summary{PerLog: make(map[string]LogSummary)}
	for _, r := range ranges {
		l, ok := s.PerLog[r.SourceURL]
		if !ok {
			l.First, l.Last = r.Start, r.End
		}
		l.Ranges++
		l.Entries += r.Len()
		l.First, l.Last = min(l.First, r.Start), max(l.Last, r.End)
		s.PerLog[r.SourceURL] = l
		s.Ranges++
		s.Entries += r.Len()
	}
	s.Logs = len(s.PerLog)
	return s
}

// Chunk splits every range into consecutive pieces of at most size entries,
// keeping the order. Size 0 means no limit. Each piece is one unit of fetch
// work (one FetchRange activity).
func Chunk(ranges []Range, size uint64) []Range {
	if size == 0 {
		return append([]Range(nil), ranges...)
	}
	var out []Range
	for _, r := range ranges {
		for start := r.Start; ; start += size {
			// end = min(start+size-1, r.End) without overflowing near 2^64.
			end := r.End
			if r.End-start >= size {
				end = start + size - 1
			}
			out = append(out, Range{r.SourceURL, start, end})
			if end == r.End {
				break
			}
		}
	}
	return out
}
