package reference

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/certlake/certlake/internal/gaps"
)

// GapsOptions selects Gaps' behaviour.
type GapsOptions struct {
	gaps.Options
	// Original reproduces the original's planner exactly (spec/record-format.md
	// section 8 at 648d679): MIN and MAX over every key, the internal search
	// capped at min(MAX, ceiling) inclusive, in historical mode from
	// max(from, MIN) so a hole starting at from is missed (quirk Q5), and no
	// frontier. False gives gaps.Detect's semantics, for comparing the two.
	Original bool
}

// Gaps plans the same ranges as gaps.Detect with the original's
// algorithm: per log MIN, MAX and COUNT(DISTINCT cert_index), then for each
// log with fewer keys than MAX-MIN+1 a LEAD window over its keys sorted by
// cert_index. It sorts every key of every incomplete log; it exists to check
// Detect and to measure it against.
func Gaps(ctx context.Context, db *sql.DB, keys string, logs []gaps.LogCeiling, opts GapsOptions) ([]gaps.Range, error) {
	if err := checkLogs(logs); err != nil {
		return nil, err
	}
	if opts.Original {
		opts.IncludeFrontier = false
	}
	var lo uint64
	if opts.From != nil && !opts.Original {
		lo = *opts.From
	}
	type stats struct {
		min, max, count uint64
		inWindow        bool // keys at or above from (and below the ceiling) exist
		below           bool // keys below the ceiling exist
		above           bool // keys at or above the ceiling exist
	}
	found := make(map[string]stats)
	values, args := ceilingValues(logs, lo, false)
	if len(args) > 0 {
		// Keys below from only mark the log as present (see Detect); keys
		// at or above the ceiling only cap its upper bound at the ceiling.
		q := `WITH c(url, ceil) AS (VALUES ` + values + `)
SELECT k.source_url,
	min(k.cert_index) FILTER (WHERE k.cert_index >= ? AND k.cert_index < c.ceil),
	max(k.cert_index) FILTER (WHERE k.cert_index >= ? AND k.cert_index < c.ceil),
	count(DISTINCT k.cert_index) FILTER (WHERE k.cert_index >= ? AND k.cert_index < c.ceil),
	bool_or(k.cert_index < c.ceil),
	bool_or(k.cert_index >= c.ceil)
FROM ` + keys + ` AS k JOIN c ON k.source_url = c.url
WHERE k.cert_index >= 0
GROUP BY k.source_url`
		if opts.Original {
			// The original aggregates every key of the log, whatever its ceiling.
			q = `SELECT source_url, min(cert_index), max(cert_index), count(DISTINCT cert_index), true, false
FROM ` + keys + ` AS k WHERE cert_index >= 0 GROUP BY source_url`
			args = nil
		} else {
			l := int64(min(lo, math.MaxInt64))
			args = append(args, l, l, l)
		}
		rows, err := db.QueryContext(ctx, q, args...)
		if err != nil {
			return nil, fmt.Errorf("reference log stats over %s: %w", keys, err)
		}
		for rows.Next() {
			var (
				u            string
				mn, mx       sql.NullInt64
				count        int64
				below, above bool
			)
			if err := rows.Scan(&u, &mn, &mx, &count, &below, &above); err != nil {
				rows.Close()
				return nil, fmt.Errorf("reference log stats over %s: scan: %w", keys, err)
			}
			found[u] = stats{uint64(mn.Int64), uint64(mx.Int64), uint64(count), mn.Valid, below, above}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("reference log stats over %s: %w", keys, err)
		}
	}

	var out []gaps.Range
	for _, l := range logs {
		s, ok := found[l.URL]
		if !ok || !s.below || (!opts.Original && l.Ceiling <= lo) {
			if opts.From != nil && *opts.From < l.Ceiling {
				out = append(out, gaps.Range{SourceURL: l.URL, Start: *opts.From, End: l.Ceiling - 1})
			}
			continue
		}
		if !s.inWindow {
			// Every key of the log below its ceiling lies below from: only
			// the frontier, or up to the ceiling when a key is at or above.
			if opts.IncludeFrontier || s.above {
				out = append(out, gaps.Range{SourceURL: l.URL, Start: *opts.From, End: l.Ceiling - 1})
			}
			continue
		}
		lower, upper := s.min, s.max // the fixed form already filtered by ceiling and from
		sentinel := false
		if opts.Original {
			// The seed caps MAX at the ceiling: a key at or above it makes
			// the search run up to the ceiling.
			upper = min(s.max, l.Ceiling)
			sentinel = s.max >= l.Ceiling
			if opts.From != nil {
				lower = max(*opts.From, s.min)
			}
		}
		if opts.From != nil && *opts.From < s.min {
			out = append(out, gaps.Range{SourceURL: l.URL, Start: *opts.From, End: s.min - 1})
		}
		if s.count < s.max-s.min+1 {
			holes, err := leadHoles(ctx, db, keys, l.URL, lower, upper, sentinel)
			if err != nil {
				return nil, err
			}
			out = append(out, holes...)
		}
		if (opts.IncludeFrontier || s.above) && s.max+1 < l.Ceiling {
			out = append(out, gaps.Range{SourceURL: l.URL, Start: s.max + 1, End: l.Ceiling - 1})
		}
	}
	slices.SortFunc(out, func(a, b gaps.Range) int {
		if c := strings.Compare(a.SourceURL, b.SourceURL); c != 0 {
			return c
		}
		return compareUint(a.Start, b.Start)
	})
	return out, nil
}

// leadHoles is the original's internal-gap query for one log over
// [lower, upper] inclusive. With sentinel, upper counts as present (the
// seed's MAX capped at the ceiling), so a hole can end at upper-1.
func leadHoles(ctx context.Context, db *sql.DB, keys, url string, lower, upper uint64, sentinel bool) ([]gaps.Range, error) {
	if lower > upper {
		return nil, nil
	}
	input := `SELECT cert_index FROM ` + keys + ` AS k
		WHERE source_url = ? AND cert_index >= ? AND cert_index <= ?`
	args := []any{url, int64(min(lower, math.MaxInt64)), int64(min(upper, math.MaxInt64))}
	if sentinel {
		input += ` UNION ALL SELECT ?::BIGINT`
		args = append(args, int64(min(upper, math.MaxInt64)))
	}
	q := `SELECT cert_index + 1 AS gap_start, next_index - 1 AS gap_end
FROM (
	SELECT cert_index, lead(cert_index) OVER (ORDER BY cert_index) AS next_index
	FROM (` + input + `)
)
WHERE next_index - cert_index > 1
ORDER BY gap_start`
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("reference holes of %s over %s: %w", url, keys, err)
	}
	defer rows.Close()
	var out []gaps.Range
	for rows.Next() {
		var start, end int64
		if err := rows.Scan(&start, &end); err != nil {
			return nil, fmt.Errorf("reference holes of %s: scan: %w", url, err)
		}
		out = append(out, gaps.Range{SourceURL: url, Start: uint64(start), End: uint64(end)})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reference holes of %s over %s: %w", url, keys, err)
	}
	return out, nil
}

func compareUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// checkLogs refuses an empty or repeated log URL, as gaps.Detect does.
func checkLogs(logs []gaps.LogCeiling) error {
	seen := make(map[string]bool, len(logs))
	for _, l := range logs {
		if l.URL == "" {
			return errors.New("detect gaps: a log has an empty URL")
		}
		if seen[l.URL] {
			return fmt.Errorf("detect gaps: log %s listed twice", l.URL)
		}
		seen[l.URL] = true
	}
	return nil
}

// ceilingValues renders the VALUES rows and their arguments for the logs
// whose ceiling is above lo. Ceilings are UBIGINT if unsigned, else BIGINT
// clamped to the range of cert_index.
func ceilingValues(logs []gaps.LogCeiling, lo uint64, unsigned bool) (string, []any) {
	var (
		b    strings.Builder
		args []any
	)
	for _, l := range logs {
		if l.Ceiling <= lo {
			continue
		}
		if len(args) > 0 {
			b.WriteString(", ")
		}
		if unsigned {
			b.WriteString("(?::VARCHAR, ?::UBIGINT)")
			args = append(args, l.URL, l.Ceiling)
			continue
		}
		b.WriteString("(?::VARCHAR, ?::BIGINT)")
		args = append(args, l.URL, int64(min(l.Ceiling, math.MaxInt64)))
	}
	return b.String(), args
}
