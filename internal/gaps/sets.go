package gaps

import (
	"cmp"
	"context"
	"slices"

	"github.com/RoaringBitmap/roaring/v2/roaring64"
)

// KeysOf returns the present keys (main ∪ staging) of one listed log as
// parts whose union they are: the key sets of main's files and staging's,
// none when it has no keys. Parts may overlap. DetectSets calls it once per
// log and drops the parts before asking for the next, so a caller that
// builds them on demand holds one log's keys at a time.
type KeysOf func(ctx context.Context, url string) ([]*roaring64.Bitmap, error)

// DetectSets plans the same ranges as Detect, with the same semantics, from
// each log's exact key sets instead of a key relation. Its cost is one pass
// over the runs of present keys of each part (roaring bitmaps: a few per
// 65536 indices of a dense CT log), not over the keys; the parts are never
// unioned (a union of a thousand files' sets cost ten times the walk).
func DetectSets(ctx context.Context, logs []LogCeiling, keysOf KeysOf, opts Options) ([]Range, error) {
	if err := checkLogs(logs); err != nil {
		return nil, err
	}
	var lo uint64
	if opts.From != nil {
		lo = *opts.From
	}
	found := make(map[string]*walker)
	var runs []run
	for _, l := range logs {
		if l.Ceiling <= lo {
			continue // nothing can be planned (see ceilingValues)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		parts, err := keysOf(ctx, l.URL)
		if err != nil {
			return nil, err
		}
		parts = slices.DeleteFunc(parts, func(bm *roaring64.Bitmap) bool { return bm == nil || bm.IsEmpty() })
		if len(parts) == 0 {
			continue
		}
		first, last := parts[0].Minimum(), parts[0].Maximum()
		for _, bm := range parts[1:] {
			first, last = min(first, bm.Minimum()), max(last, bm.Maximum())
		}
		// Keys at or above the ceiling are ignored.
		top := l.Ceiling - 1
		if first > top {
			continue
		}
		w := newWalker(l.URL, opts.From)
		// A key at or above the ceiling caps the upper bound there.
		w.above = last > top
		if first < lo {
			// Keys below From count as From-1, as in Detect: the log is
			// present, and nothing below From is planned.
			w.present(lo-1, lo-1)
		}
		// Each part's runs within [lo, top], then all in order of start:
		// the walker takes overlapping and adjacent runs as they come.
		runs = runs[:0]
		for _, bm := range parts {
			walkRuns(bm, max(lo, bm.Minimum()), min(top, bm.Maximum()), func(s, e uint64) {
				runs = append(runs, run{s, e})
			})
		}
		if !slices.IsSortedFunc(runs, run.compare) { // a live writer's files come in order
			slices.SortFunc(runs, run.compare)
		}
		for _, r := range runs {
			w.present(r.start, r.end)
		}
		found[l.URL] = w
	}
	return finish(logs, found, opts), nil
}

// run is a run of present keys, [start, end].
type run struct{ start, end uint64 }

func (r run) compare(o run) int { return cmp.Compare(r.start, o.start) }

// walkRuns calls fn(start, end) for each maximal run of values of bm within
// [a, b] (inclusive), in ascending order. Runs are found by alternating two
// forward iterators, over bm and over its complement in [a, b], so the cost
// is the number of runs plus the containers passed, whatever their lengths.
func walkRuns(bm *roaring64.Bitmap, a, b uint64, fn func(start, end uint64)) {
	if a > b {
		return
	}
	absent := roaring64.Flip(bm, a, b+1) // b < 2^64-1: b is below a ceiling
	present, gaps := bm.Iterator(), absent.Iterator()
	present.AdvanceIfNeeded(a)
	for present.HasNext() {
		s := present.PeekNext()
		if s > b {
			return
		}
		// The run ends before the first absent value after s (absent
		// holds bm's own values outside [a, b]: those are not ends).
		e := b + 1
		gaps.AdvanceIfNeeded(s)
		if gaps.HasNext() {
			if v := gaps.PeekNext(); v <= b {
				e = v
			}
		}
		fn(s, e-1)
		if e > b {
			return
		}
		present.AdvanceIfNeeded(e)
	}
}
