package delta

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Per-file statistics ("Per-file Statistics" in PROTOCOL.md) are a JSON
// string in add.stats: numRecords plus per-column minValues, maxValues and
// nullCount objects that mirror the schema (nested columns are nested
// objects). Numbers are kept as json.Number so longs round-trip exactly.

// ParseStats parses an add.stats string. ok is false when s is empty (the
// writer recorded no statistics) or has no numRecords; err is set when s is
// not valid statistics JSON.
func ParseStats(s string) (st Stats, ok bool, err error) {
	if strings.TrimSpace(s) == "" {
		return Stats{}, false, nil
	}
	var raw struct {
		NumRecords *json.Number   `json:"numRecords"`
		MinValues  map[string]any `json:"minValues"`
		MaxValues  map[string]any `json:"maxValues"`
		NullCount  map[string]any `json:"nullCount"`
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return Stats{}, false, fmt.Errorf("parse stats: %w", err)
	}
	if dec.More() {
		return Stats{}, false, fmt.Errorf("parse stats: trailing data")
	}
	st = Stats{MinValues: raw.MinValues, MaxValues: raw.MaxValues, NullCount: raw.NullCount}
	if raw.NumRecords == nil {
		return st, false, nil
	}
	n, err := raw.NumRecords.Int64()
	if err != nil || n < 0 {
		return Stats{}, false, fmt.Errorf("parse stats: numRecords %q is not a count", raw.NumRecords.String())
	}
	st.NumRecords = n
	return st, true, nil
}

// ParsedStats parses a.Stats; see ParseStats.
func (a Add) ParsedStats() (Stats, bool, error) { return ParseStats(a.Stats) }

// JSON renders the statistics as an add.stats string.
func (s Stats) JSON() (string, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return "", fmt.Errorf("render stats: %w", err)
	}
	return string(b), nil
}

// lookup finds a column value; a dotted name ("a.b") walks nested objects
// when there is no top-level key with the dots in it.
func lookup(m map[string]any, col string) (any, bool) {
	if v, ok := m[col]; ok {
		return v, true
	}
	cur := m
	parts := strings.Split(col, ".")
	for i, p := range parts {
		v, ok := cur[p]
		if !ok {
			return nil, false
		}
		if i == len(parts)-1 {
			return v, true
		}
		if cur, ok = v.(map[string]any); !ok {
			return nil, false
		}
	}
	return nil, false
}

func asInt64(v any) (int64, bool) {
	switch x := v.(type) {
	case json.Number:
		n, err := x.Int64()
		return n, err == nil
	case float64:
		if x == float64(int64(x)) {
			return int64(x), true
		}
	case int64:
		return x, true
	case int:
		return int64(x), true
	case string:
		n, err := strconv.ParseInt(x, 10, 64)
		return n, err == nil
	}
	return 0, false
}

// MinInt64 returns minValues[col] as an integer.
func (s Stats) MinInt64(col string) (int64, bool) {
	v, ok := lookup(s.MinValues, col)
	if !ok {
		return 0, false
	}
	return asInt64(v)
}

// MaxInt64 returns maxValues[col] as an integer.
func (s Stats) MaxInt64(col string) (int64, bool) {
	v, ok := lookup(s.MaxValues, col)
	if !ok {
		return 0, false
	}
	return asInt64(v)
}

// MinString returns minValues[col] when it is a string (strings, dates and
// timestamps are strings in stats).
func (s Stats) MinString(col string) (string, bool) {
	v, ok := lookup(s.MinValues, col)
	str, isStr := v.(string)
	return str, ok && isStr
}

// MaxString returns maxValues[col] when it is a string.
func (s Stats) MaxString(col string) (string, bool) {
	v, ok := lookup(s.MaxValues, col)
	str, isStr := v.(string)
	return str, ok && isStr
}

// Nulls returns nullCount[col].
func (s Stats) Nulls(col string) (int64, bool) {
	v, ok := lookup(s.NullCount, col)
	if !ok {
		return 0, false
	}
	return asInt64(v)
}

// statsFromParsed renders a checkpoint's add.stats_parsed struct at row i
// as an add.stats JSON string: numRecords, then minValues, maxValues and
// nullCount with the types stats JSON uses (dates "2006-01-02", timestamps
// RFC 3339 in UTC with milliseconds). Values of other types are left out.
// It returns "" when numRecords is missing.
func statsFromParsed(sp structCol, i int) string {
	n, ok := intAt(sp.child("numRecords"), i)
	if !ok {
		return ""
	}
	out := map[string]any{"numRecords": n}
	for _, k := range []string{"minValues", "maxValues", "nullCount"} {
		if c, ok := asStruct(sp.child(k)); ok && c.valid(i) {
			if v := arrowValue(c.arr, i); v != nil {
				out[k] = v
			}
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return ""
	}
	return string(b)
}
