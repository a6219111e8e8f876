package merge

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/certlake/certlake/internal/delta"
)

// KeyRange is a set of (source_url, cert_index) keys: every key with
// source_url == SourceURL and Start <= cert_index <= End. The bounds are
// inclusive.
type KeyRange struct {
	SourceURL string `json:"source_url"`
	Start     uint64 `json:"start"`
	End       uint64 `json:"end"`
}

// String renders the range as "url[start,end]".
func (k KeyRange) String() string { return fmt.Sprintf("%s[%d,%d]", k.SourceURL, k.Start, k.End) }

// fileBox bounds the keys of one Parquet file from its Delta stats: every
// row has URLMin <= source_url <= URLMax and IdxMin <= cert_index <= IdxMax.
// Delta writers that truncate string stats keep max an upper bound (the
// protocol requires it), so a box from stats never excludes a present key.
type fileBox struct {
	URLMin, URLMax string
	IdxMin, IdxMax uint64
	Rows           int64 // numRecords; -1 when the stats do not say
	ok             bool  // false: no usable key stats, the file may hold any key
}

// statsBox parses an add's stats into a box. Missing or unparsable stats
// give a box with ok false, which overlaps everything.
func statsBox(a delta.Add) fileBox {
	b := fileBox{Rows: -1}
	if a.Stats == "" {
		return b
	}
	var st struct {
		NumRecords *json.Number               `json:"numRecords"`
		MinValues  map[string]json.RawMessage `json:"minValues"`
		MaxValues  map[string]json.RawMessage `json:"maxValues"`
	}
	dec := json.NewDecoder(strings.NewReader(a.Stats))
	dec.UseNumber()
	if err := dec.Decode(&st); err != nil {
		return b
	}
	if st.NumRecords != nil {
		if n, err := st.NumRecords.Int64(); err == nil && n >= 0 {
			b.Rows = n
		}
	}
	var okU1, okU2, okI1, okI2 bool
	b.URLMin, okU1 = jsonString(st.MinValues["source_url"])
	b.URLMax, okU2 = jsonString(st.MaxValues["source_url"])
	b.IdxMin, okI1 = jsonIndex(st.MinValues["cert_index"])
	b.IdxMax, okI2 = jsonIndex(st.MaxValues["cert_index"])
	b.ok = okU1 && okU2 && okI1 && okI2 && b.URLMin <= b.URLMax && b.IdxMin <= b.IdxMax
	return b
}

func jsonString(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 {
		return "", false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// jsonIndex parses a cert_index bound exactly (a float64 would round indices
// above 2^53). cert_index is a signed long in the table; negative values do
// not occur and are clamped to 0, which keeps the bound conservative.
func jsonIndex(raw json.RawMessage) (uint64, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] == 'n' {
		return 0, false
	}
	s := string(raw)
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		if v < 0 {
			return 0, true
		}
		return uint64(v), true
	}
	if v, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(v) {
		if v < 0 {
			return 0, true
		}
		if v >= math.MaxUint64 {
			return math.MaxUint64, true
		}
		return uint64(v), true
	}
	return 0, false
}

// mayHold reports whether a file with box b may hold a key of the key set
// ks (sorted by SourceURL, then Start).
func (b fileBox) mayHold(ks keySet) bool {
	if !b.ok {
		return true
	}
	return ks.overlapsBox(b.URLMin, b.URLMax, b.IdxMin, b.IdxMax)
}

// keySet is a batch's keys: per source_url, the hull [Start, End] of its
// ranges (hulls keep the pruning test cheap on tables of many files; a
// batch's ranges of one log are usually one run anyway), sorted by URL.
type keySet struct {
	urls  []string
	hulls []KeyRange
	// exact are the ranges themselves per URL, sorted by Start and
	// merged where they touch, for the key index's per-log ranges.
	exact map[string][]KeyRange
}

func newKeySet(ranges []KeyRange) keySet {
	byURL := map[string]KeyRange{}
	for _, r := range ranges {
		h, seen := byURL[r.SourceURL]
		if !seen {
			byURL[r.SourceURL] = r
			continue
		}
		h.Start = min(h.Start, r.Start)
		h.End = max(h.End, r.End)
		byURL[r.SourceURL] = h
	}
	ks := keySet{exact: map[string][]KeyRange{}}
	for _, r := range ranges {
		ks.exact[r.SourceURL] = append(ks.exact[r.SourceURL], r)
	}
	for u, rs := range ks.exact {
		slices.SortFunc(rs, func(a, b KeyRange) int { return cmp.Compare(a.Start, b.Start) })
		merged := rs[:1]
		for _, r := range rs[1:] {
			last := &merged[len(merged)-1]
			if r.Start <= last.End || r.Start-last.End == 1 {
				last.End = max(last.End, r.End)
				continue
			}
			merged = append(merged, r)
		}
		ks.exact[u] = merged
	}
	for u := range byURL {
		ks.urls = append(ks.urls, u)
	}
	slices.Sort(ks.urls)
	for _, u := range ks.urls {
		ks.hulls = append(ks.hulls, byURL[u])
	}
	return ks
}

// overlapsBox reports whether some key of the set lies in the box
// [urlMin, urlMax] x [idxMin, idxMax].
func (ks keySet) overlapsBox(urlMin, urlMax string, idxMin, idxMax uint64) bool {
	i, _ := slices.BinarySearch(ks.urls, urlMin)
	for ; i < len(ks.urls) && ks.urls[i] <= urlMax; i++ {
		h := ks.hulls[i]
		if h.Start <= idxMax && idxMin <= h.End {
			return true
		}
	}
	return false
}

// minIndex and maxIndex bound the whole set (used to prune row groups).
func (ks keySet) indexHull() (lo, hi uint64) {
	lo = math.MaxUint64
	for _, h := range ks.hulls {
		lo = min(lo, h.Start)
		hi = max(hi, h.End)
	}
	return lo, hi
}
