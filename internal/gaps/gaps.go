// Package gaps plans the missing (source_url, cert_index) ranges of a
// certstream lake: the holes a live ingester left, capped at each log's
// ceiling. The semantics are the staging backfill's (AC1.3, AC2.1-AC2.4 of
// spec/seed-staging-backfill-test-requirements.md and section 8 of
// spec/record-format.md), with quirk Q5 fixed and quirk Q6 (the frontier)
// available as an opt-in; see "Gap semantics" in DESIGN.md.
//
// Detect never sorts the keys: DuckDB folds them into one 64-bit presence
// bitmap per 64 indices (a hash aggregate), and only the words that are not
// full, or that start or end a run of words, come back to Go, which walks them
// in order. reference.Gaps (internal/reference) is the original's
// MIN/MAX/COUNT plus LEAD query, kept to compare results and speed.
package gaps

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strings"
)

// LogCeiling names a log and its ceiling. The ceiling is exclusive: nothing at
// or above it is planned, and keys at or above it are ignored. It is the live
// ingester's current_index (spec/record-format.md section 7) or the log's tree
// size.
type LogCeiling struct {
	URL     string // the log's normalized URL, compared exactly with source_url
	Ceiling uint64 // exclusive upper bound
}

// Range is a run of missing entries of one log, [Start, End] inclusive.
type Range struct {
	SourceURL string `json:"source_url"`
	Start     uint64 `json:"start"` // first missing index (inclusive)
	End       uint64 `json:"end"`   // last missing index (inclusive)
}

// Len returns the number of entries in r.
func (r Range) Len() uint64 { return r.End - r.Start + 1 }

// Options selects the planning mode. The zero value is catch-up mode.
type Options struct {
	// From selects historical mode: plan every missing index from *From up to
	// the log's highest present index, and the whole [*From, ceiling-1] of a
	// log with no keys. Nil means catch-up mode: only holes strictly between a
	// log's lowest and highest present index; logs with no keys are skipped.
	From *uint64
	// IncludeFrontier also plans [max+1, ceiling-1] (from From at least) for
	// each log with keys below its ceiling (quirk Q6). Off by default: while a live ingester runs, those entries
	// may still sit in its unflushed buffer (DESIGN.md, "Gap semantics").
	IncludeFrontier bool
}

// ErrFromAtCeiling reports a historical start at or above a log's ceiling,
// where nothing can be planned. Callers treat it as bad input.
var ErrFromAtCeiling = errors.New("from is at or above the log's ceiling")

// CheckFrom reports, wrapping ErrFromAtCeiling, every log whose ceiling is at
// or below from: Detect plans nothing for such a log in historical mode.
func CheckFrom(from uint64, logs []LogCeiling) error {
	var bad []string
	for _, l := range logs {
		if from >= l.Ceiling {
			bad = append(bad, fmt.Sprintf("%s (ceiling %d)", l.URL, l.Ceiling))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("from %d: %w: %s; choose a smaller from or drop these logs",
		from, ErrFromAtCeiling, strings.Join(bad, ", "))
}

// Detect plans the missing ranges of logs, sorted by (SourceURL, Start) and
// maximal (no two ranges of a log touch).
//
// keys is a table expression usable after FROM: a table or view name, a table
// function such as read_parquet([...]), or a parenthesized subquery. It has the
// columns source_url VARCHAR and cert_index BIGINT, typically main UNION ALL
// staging; duplicated keys are fine. File pruning is up to the caller.
//
// For each log, with K its keys below the ceiling (and at or above From in
// historical mode):
//   - catch-up: the holes strictly between min(K) and max(K); nothing if K is
//     empty;
//   - historical from N: the holes in [N, max(K)], including one starting at N
//     (the original missed it, quirk Q5); [N, ceiling-1] if the log has no
//     key below its ceiling at all, nothing if its keys all lie below N;
//   - a log with a key at or above its ceiling has its upper bound capped
//     at the ceiling (the seed's rule, AC2.3): the holes run up to
//     ceiling-1, [max(N, max+1), ceiling-1] included;
//   - otherwise IncludeFrontier adds [max(N, max+1), ceiling-1] for each
//     log with a key below its ceiling (max being its highest such key).
//
// Keys of logs not listed are ignored, but still aggregated: when most of the
// lake is not listed, filter source_url in keys. DuckDB holds one 8-byte word
// per 64 indices present (about 1/64 of the keys; it spills to disk under
// the database's memory_limit); Go receives only the words that are not full
// or that bound a run, and holds only the planned ranges.
func Detect(ctx context.Context, db *sql.DB, keys string, logs []LogCeiling, opts Options) ([]Range, error) {
	if err := checkLogs(logs); err != nil {
		return nil, err
	}
	var lo uint64
	if opts.From != nil {
		lo = *opts.From
	}
	values, args := ceilingValues(logs, lo, true)
	if len(args) == 0 {
		return finish(logs, nil, opts), nil
	}
	var top uint64 // highest ceiling-1: no listed log plans anything above
	for _, l := range logs {
		if l.Ceiling > lo {
			top = max(top, l.Ceiling-1)
		}
	}
	// In historical mode every key below From counts as From-1: it marks the
	// log as present (a log whose keys all lie below From plans its frontier
	// at most) without DuckDB keeping words below From.
	index := "k.cert_index"
	if lo > 0 {
		index = fmt.Sprintf("greatest(%s, %d)", index, min(lo-1, math.MaxInt64))
	}
	// Keys above every ceiling count as one index past the highest: they
	// only tell that the log has a key at or above its ceiling.
	if top < math.MaxInt64 {
		index = fmt.Sprintf("least(%s, %d)", index, top+1)
	}
	// One pass over the keys: a hash aggregate into one presence word per 64
	// indices (bit i of word w is index 64w+i). The shift operands are both
	// UBIGINT on purpose: with an INTEGER or BIGINT shift amount DuckDB takes
	// a slow path that doubles the cost of the whole query. Only the cheap
	// numeric bound is applied before aggregating (it also prunes row groups
	// by their statistics); the per-log ceilings are applied to the words,
	// since matching source_url row by row costs as much as aggregating.
	//
	// A word comes back to Go when it is not full, or it is the first or last
	// word of its log, or words are missing just before it. Every other word
	// is full and follows a word present: Go infers it.
	q := `WITH c(url, ceil) AS (VALUES ` + values + `),
raw AS (
	SELECT k.source_url AS u, ` + index + `::UBIGINT >> 6 AS w,
		bit_or(1::UBIGINT << (` + index + `::UBIGINT & 63::UBIGINT)) AS m
	FROM ` + keys + ` AS k
	WHERE k.cert_index >= 0
	GROUP BY ALL
),
above AS (
	SELECT DISTINCT u FROM raw JOIN c ON raw.u = c.url
	WHERE w > c.ceil >> 6 OR (w = c.ceil >> 6 AND m >> (c.ceil & 63::UBIGINT) <> 0::UBIGINT)
),
capped AS (
	SELECT u, w, CASE WHEN w < c.ceil >> 6 THEN m
		ELSE m & ((1::UBIGINT << (c.ceil & 63::UBIGINT)) - 1::UBIGINT) END AS m
	FROM raw JOIN c ON raw.u = c.url
	WHERE w <= c.ceil >> 6
),
words AS (SELECT * FROM capped WHERE m <> 0::UBIGINT),
marked AS (
	SELECT u, w, m,
		lag(w) OVER (PARTITION BY u ORDER BY w) AS pw,
		lead(w) OVER (PARTITION BY u ORDER BY w) AS nw
	FROM words
)
SELECT u, w, m, pw, u IN (SELECT u FROM above) AS a FROM marked
WHERE m <> 18446744073709551615::UBIGINT -- not full
	OR pw IS NULL OR nw IS NULL OR pw <> w - 1::UBIGINT
ORDER BY u, w`
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("detect gaps over %s: %w", keys, err)
	}
	defer rows.Close()

	found := make(map[string]*walker)
	var (
		cur   *walker
		lastW uint64
	)
	for rows.Next() {
		var (
			u    string
			w, m uint64
			pw   sql.Null[uint64]
			a    bool
		)
		if err := rows.Scan(&u, &w, &m, &pw, &a); err != nil {
			return nil, fmt.Errorf("detect gaps over %s: scan: %w", keys, err)
		}
		if cur == nil || u != cur.url {
			cur = newWalker(u, opts.From)
			cur.above = a
			found[u] = cur
		} else if pw.V > lastW {
			// Words lastW+1..pw were left out: all full and contiguous.
			cur.present((lastW+1)*64, pw.V*64+63)
		}
		cur.word(w, m)
		lastW = w
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("detect gaps over %s: %w", keys, err)
	}
	return finish(logs, found, opts), nil
}

// checkLogs rejects a log list Detect cannot plan unambiguously.
func checkLogs(logs []LogCeiling) error {
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
// whose ceiling is above lo; the others cannot contribute anything. Ceilings
// are UBIGINT if unsigned, else BIGINT clamped to the range of cert_index.
func ceilingValues(logs []LogCeiling, lo uint64, unsigned bool) (string, []any) {
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

// finish turns the walked logs into the sorted plan: the holes up to the
// ceiling of logs with a key at or above it, frontiers when asked,
// and in historical mode the whole [from, ceiling-1] of logs with no keys.
func finish(logs []LogCeiling, found map[string]*walker, opts Options) []Range {
	sorted := slices.Clone(logs)
	slices.SortFunc(sorted, func(a, b LogCeiling) int { return strings.Compare(a.URL, b.URL) })
	n := len(logs)
	for _, w := range found {
		n += len(w.holes)
	}
	out := make([]Range, 0, n) // millions of holes at a billion keys
	for _, l := range sorted {
		w := found[l.URL]
		switch {
		case w != nil:
			out = append(out, w.holes...)
			if (opts.IncludeFrontier || w.above) && w.next < l.Ceiling {
				out = append(out, Range{l.URL, w.next, l.Ceiling - 1})
			}
		case opts.From != nil && *opts.From < l.Ceiling:
			out = append(out, Range{l.URL, *opts.From, l.Ceiling - 1})
		}
	}
	if len(out) == 0 {
		return nil // as before: no plan is nil
	}
	return out
}

// walker turns one log's present runs, fed in ascending order, into holes.
// Every index below next is either present or already in holes.
type walker struct {
	url     string
	started bool   // next is meaningful: a run was seen, or From was given
	next    uint64 // first index not yet classified
	above   bool   // the log has a key at or above its ceiling
	holes   []Range
}

func newWalker(url string, from *uint64) *walker {
	w := &walker{url: url}
	if from != nil {
		w.started, w.next = true, *from
	}
	return w
}

// present records that [a, b] are all present. Runs come in ascending order;
// the first may start below From (see the clamp in Detect).
func (w *walker) present(a, b uint64) {
	if w.started && a > w.next {
		w.holes = append(w.holes, Range{w.url, w.next, a - 1})
	}
	if !w.started || b >= w.next {
		w.started, w.next = true, b+1
	}
}

// word records the runs of set bits of bitmap word n: bit i is index n*64+i.
func (w *walker) word(n, m uint64) {
	base := n * 64
	for m != 0 {
		start := uint64(bits.TrailingZeros64(m))
		ones := uint64(bits.TrailingZeros64(^(m >> start)))
		w.present(base+start, base+start+ones-1)
		if start+ones == 64 {
			return
		}
		m &^= (uint64(1)<<ones - 1) << start
	}
}
