package gaps

import (
	"context"

	"github.com/RoaringBitmap/roaring/v2/roaring64"
)

// KeysOf returns the present keys (main ∪ staging) of one listed log;
// nil or an empty set when it has none. DetectSets calls it once per log
// and drops the set before asking for the next, so a caller that builds
// each set on demand holds one log's keys at a time.
type KeysOf func(ctx context.Context, url string) (*roaring64.Bitmap, error)

// DetectSets plans the same ranges as Detect, with the same semantics, from
// each log's exact key set instead of a key relation. Its cost is one pass
// over the runs of present and missing keys of each log (roaring bitmaps:
// a few per 65536 indices of a dense CT log), not over the keys.
func DetectSets(ctx context.Context, logs []LogCeiling, keysOf KeysOf, opts Options) ([]Range, error) {
	if err := checkLogs(logs); err != nil {
		return nil, err
	}
	var lo uint64
	if opts.From != nil {
		lo = *opts.From
	}
	found := make(map[string]*walker)
	for _, l := range logs {
		if l.Ceiling <= lo {
			continue // nothing can be planned (see ceilingValues)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		bm, err := keysOf(ctx, l.URL)
		if err != nil {
			return nil, err
		}
		// Keys at or above the ceiling are ignored.
		top := l.Ceiling - 1
		if bm == nil || bm.IsEmpty() || bm.Minimum() > top {
			continue
		}
		w := newWalker(l.URL, opts.From)
		// A key at or above the ceiling caps the upper bound there.
		w.above = bm.Maximum() > top
		if bm.Minimum() < lo {
			// Keys below From count as From-1, as in Detect: the log is
			// present, and nothing below From is planned.
			w.present(lo-1, lo-1)
		}
		walkRuns(bm, max(lo, bm.Minimum()), min(top, bm.Maximum()), w.present)
		found[l.URL] = w
	}
	return finish(logs, found, opts), nil
}

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
