package merge

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/certlake/certlake/internal/lake"
	"github.com/duckdb/duckdb-go/v2"
)

// Delta stats of the files the fast path writes, in exactly the lake
// writer's format (internal/lake/stats.go): numRecords; minValues and
// maxValues of cert_index, update_type, seen, source_name, source_url,
// serial_number, fingerprint, sha256, sha1, not_before, not_after and
// signature_algorithm, in table order, seen as ISO-8601 with milliseconds
// and Z (the maximum rounded up); nullCount 0 for every column but the
// list columns.

// statsTimeFormat is how Delta writers render timestamp stats.
const statsTimeFormat = "2006-01-02T15:04:05.000Z"

// statColumns are the columns with min/max stats, in table order, and
// their kinds.
var statColumns = []struct {
	name string
	kind byte // 'i' integer, 's' string, 't' timestamp
}{
	{"cert_index", 'i'}, {"update_type", 's'}, {"seen", 't'}, {"source_name", 's'},
	{"source_url", 's'}, {"serial_number", 's'}, {"fingerprint", 's'}, {"sha256", 's'},
	{"sha1", 's'}, {"not_before", 'i'}, {"not_after", 'i'}, {"signature_algorithm", 's'},
}

// nullCountColumns are the columns with a nullCount (the list columns have
// none), in table order.
var nullCountColumns = []string{
	"cert_index", "update_type", "seen", "source_name", "source_url", "cert_link",
	"serial_number", "fingerprint", "sha256", "sha1", "not_before", "not_after",
	"is_ca", "signature_algorithm", "subject_aggregated", "issuer_aggregated", "as_der",
}

// copyStats are one file's stats as DuckDB renders values (text).
type copyStats struct {
	n        int64
	min, max [12]string // indexed like statColumns
}

// statsFromCopy reads a file's stats from COPY's RETURN_STATS
// column_statistics (column -> {min, max, null_count, ...}, values as
// text). A missing min or max is an error (the caller computes them).
func statsFromCopy(rows int64, cs duckdb.OrderedMap) (copyStats, error) {
	st := copyStats{n: rows}
	byName := map[string]duckdb.OrderedMap{}
	keys, vals := cs.Keys(), cs.Values()
	for i, k := range keys {
		name, _ := k.(string)
		m, ok := vals[i].(duckdb.OrderedMap)
		if !ok {
			continue
		}
		byName[strings.Trim(name, `"`)] = m
	}
	for i, c := range statColumns {
		m, ok := byName[c.name]
		if !ok {
			return st, fmt.Errorf("no statistics for %s", c.name)
		}
		lo, ok1 := m.Get("min")
		hi, ok2 := m.Get("max")
		los, ok3 := lo.(string)
		his, ok4 := hi.(string)
		if !ok1 || !ok2 || !ok3 || !ok4 {
			return st, fmt.Errorf("no min/max for %s", c.name)
		}
		if nc, ok := m.Get("null_count"); ok {
			if s, _ := nc.(string); s != "" && s != "0" {
				return st, fmt.Errorf("%s holds %s nulls", c.name, s)
			}
		}
		st.min[i], st.max[i] = los, his
	}
	return st, nil
}

// statsFromFile computes a written file's stats with DuckDB, rendering
// values as COPY's statistics do.
func (m *batchRun) statsFromFile(ctx context.Context, path string) (copyStats, error) {
	var sel []string
	for _, c := range statColumns {
		sel = append(sel, "min("+c.name+")::VARCHAR", "max("+c.name+")::VARCHAR")
	}
	q := `SELECT count(*), ` + strings.Join(sel, ", ") + ` FROM read_parquet(` + lake.QuoteSQL(path) + `)`
	var st copyStats
	dest := []any{&st.n}
	vals := make([]sql.NullString, 2*len(statColumns))
	for i := range vals {
		dest = append(dest, &vals[i])
	}
	if err := m.db.QueryRowContext(ctx, q).Scan(dest...); err != nil {
		return st, err
	}
	for i := range statColumns {
		st.min[i], st.max[i] = vals[2*i].String, vals[2*i+1].String
	}
	return st, nil
}

// parseDuckTime parses a TIMESTAMPTZ as DuckDB renders it in UTC
// ("2024-11-25 10:00:00.123+00").
func parseDuckTime(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02 15:04:05.999999-07", "2006-01-02 15:04:05.999999-07:00", "2006-01-02 15:04:05.999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("timestamp %q", s)
}

// json renders the stats as the lake writer does.
func (st copyStats) json() (string, error) {
	var b bytes.Buffer
	b.WriteString(`{"numRecords":` + strconv.FormatInt(st.n, 10))
	for side, vals := range [2][12]string{st.min, st.max} {
		if side == 0 {
			b.WriteString(`,"minValues":{`)
		} else {
			b.WriteString(`,"maxValues":{`)
		}
		for i, c := range statColumns {
			if i > 0 {
				b.WriteByte(',')
			}
			k, _ := json.Marshal(c.name)
			b.Write(k)
			b.WriteByte(':')
			var v any
			switch c.kind {
			case 'i':
				n, err := strconv.ParseInt(vals[i], 10, 64)
				if err != nil {
					return "", fmt.Errorf("%s stat %q: %w", c.name, vals[i], err)
				}
				v = n
			case 't':
				t, err := parseDuckTime(vals[i])
				if err != nil {
					return "", fmt.Errorf("%s stat: %w", c.name, err)
				}
				// Millisecond precision; a maximum rounds up so the stat
				// never excludes a value the file holds.
				if tr := t.Truncate(time.Millisecond); side == 1 && !tr.Equal(t) {
					t = tr.Add(time.Millisecond)
				} else {
					t = tr
				}
				v = t.Format(statsTimeFormat)
			default:
				v = vals[i]
			}
			js, err := json.Marshal(v)
			if err != nil {
				return "", err
			}
			b.Write(js)
		}
		b.WriteByte('}')
	}
	b.WriteString(`,"nullCount":{`)
	for i, c := range nullCountColumns {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(c)
		b.Write(k)
		b.WriteString(":0")
	}
	b.WriteString("}}")
	return b.String(), nil
}
