// Package coverage summarizes how much of each log a certstream lake holds,
// in a fixed number of bins per log, and renders it as one self-contained
// HTML page: per log a bar over [0, ceiling) showing what main holds, what
// only staging holds, what is missing, and how many keys lie past the
// ceiling.
//
// Its input is range lists (the absent ranges that internal/gaps finds), so
// its cost is the number of ranges plus the number of bins, whatever the
// size of the logs: 20 logs of 2 billion indices draw as 20 bars of a few
// hundred bins each.
package coverage

import (
	"cmp"
	"slices"

	"github.com/certlake/certlake/internal/gaps"
)

// Log is what is known about one log.
type Log struct {
	URL     string
	Name    string
	Ceiling uint64 // exclusive
	// AbsentMain and AbsentAll are the indices of [0, Ceiling) that main
	// lacks, and that main and staging both lack: sorted, disjoint,
	// inclusive ranges.
	AbsentMain, AbsentAll []gaps.Range
	// PastCeiling is the number of distinct indices at or above Ceiling
	// held by main or staging (not planned: the ingester's state lags).
	PastCeiling uint64
	// Planned are the ranges a backfill plans (starter gaps), and
	// PlannedRequests, ETASeconds its estimate.
	Planned         []gaps.Range
	PlannedRequests uint64
	ETASeconds      float64
}

// Report is the coverage of every log.
type Report struct {
	Title string
	Logs  []LogReport
	// Totals over every log.
	Main, Staged, Missing, PastCeiling, PlannedEntries uint64
	PlannedRanges                                      int
	ETASeconds                                         float64
}

// LogReport is one log's bar and counts.
type LogReport struct {
	URL, Name string
	Ceiling   uint64
	// Main is the indices of [0, Ceiling) in main; Staged those only in
	// staging; Missing those in neither.
	Main, Staged, Missing uint64
	PastCeiling           uint64
	PlannedEntries        uint64
	PlannedRanges         int
	PlannedRequests       uint64
	ETASeconds            float64
	// BinWidth is the indices per bin; the last bin may be narrower.
	BinWidth uint64
	// Bins hold, per bin, the indices in main, only in staging, missing.
	BinMain, BinStaged, BinMissing []uint64
	// Holes are the largest missing ranges, largest first, with how much
	// of each a backfill plans.
	Holes []Hole
}

// Hole is one missing range of a log.
type Hole struct {
	Start, End uint64 // inclusive
	Entries    uint64
	Planned    uint64 // entries of it in the plan
}

// Options tune Build.
type Options struct {
	Bins  int // bins per log; default 600
	Holes int // largest holes listed per log; default 10
}

// Build computes the report of logs.
func Build(title string, logs []Log, opts Options) Report {
	if opts.Bins <= 0 {
		opts.Bins = 600
	}
	if opts.Holes <= 0 {
		opts.Holes = 10
	}
	r := Report{Title: title}
	for _, l := range logs {
		lr := buildLog(l, opts)
		r.Main += lr.Main
		r.Staged += lr.Staged
		r.Missing += lr.Missing
		r.PastCeiling += lr.PastCeiling
		r.PlannedEntries += lr.PlannedEntries
		r.PlannedRanges += lr.PlannedRanges
		r.ETASeconds = max(r.ETASeconds, lr.ETASeconds)
		r.Logs = append(r.Logs, lr)
	}
	return r
}

func buildLog(l Log, opts Options) LogReport {
	lr := LogReport{URL: l.URL, Name: l.Name, Ceiling: l.Ceiling, PastCeiling: l.PastCeiling,
		PlannedRanges: len(l.Planned), PlannedRequests: l.PlannedRequests, ETASeconds: l.ETASeconds}
	for _, p := range l.Planned {
		lr.PlannedEntries += p.Len()
	}
	if l.Ceiling == 0 {
		return lr
	}
	nb := uint64(opts.Bins)
	if l.Ceiling < nb {
		nb = l.Ceiling
	}
	lr.BinWidth = (l.Ceiling + nb - 1) / nb
	nb = (l.Ceiling + lr.BinWidth - 1) / lr.BinWidth
	absMain := binCounts(l.AbsentMain, l.Ceiling, lr.BinWidth, nb)
	absAll := binCounts(l.AbsentAll, l.Ceiling, lr.BinWidth, nb)
	lr.BinMain, lr.BinStaged, lr.BinMissing = make([]uint64, nb), make([]uint64, nb), make([]uint64, nb)
	for b := range nb {
		width := min(lr.BinWidth, l.Ceiling-b*lr.BinWidth)
		inMain := width - min(absMain[b], width)
		inAny := width - min(absAll[b], width)
		lr.BinMain[b], lr.BinStaged[b], lr.BinMissing[b] = inMain, inAny-min(inMain, inAny), width-inAny
		lr.Main += lr.BinMain[b]
		lr.Staged += lr.BinStaged[b]
		lr.Missing += lr.BinMissing[b]
	}
	lr.Holes = largestHoles(l.AbsentAll, l.Planned, l.Ceiling, opts.Holes)
	return lr
}

// binCounts counts the indices of ranges below ceiling in each of nb bins
// of width w, in time proportional to len(ranges) + nb: the bins a range
// covers whole get w through a difference array.
func binCounts(ranges []gaps.Range, ceiling, w, nb uint64) []uint64 {
	counts := make([]uint64, nb)
	diff := make([]int64, nb+1)
	for _, r := range ranges {
		if r.Start >= ceiling {
			continue
		}
		end := min(r.End, ceiling-1)
		b0, b1 := r.Start/w, end/w
		if b0 == b1 {
			counts[b0] += end - r.Start + 1
			continue
		}
		counts[b0] += (b0+1)*w - r.Start
		counts[b1] += end - b1*w + 1
		if b1 > b0+1 {
			diff[b0+1]++
			diff[b1]--
		}
	}
	var run int64
	for b := range nb {
		run += diff[b]
		counts[b] += uint64(run) * w
	}
	return counts
}

// largestHoles returns the n largest ranges of absent below ceiling,
// largest first (ties: lower start first), each with how many of its
// entries planned covers.
func largestHoles(absent, planned []gaps.Range, ceiling uint64, n int) []Hole {
	var holes []Hole
	for _, r := range absent {
		if r.Start >= ceiling {
			continue
		}
		end := min(r.End, ceiling-1)
		holes = append(holes, Hole{Start: r.Start, End: end, Entries: end - r.Start + 1})
	}
	slices.SortFunc(holes, func(a, b Hole) int {
		if c := cmp.Compare(b.Entries, a.Entries); c != 0 {
			return c
		}
		return cmp.Compare(a.Start, b.Start)
	})
	holes = holes[:min(n, len(holes))]
	for i := range holes {
		h := &holes[i]
		// planned is sorted by start: skip to the first range that can
		// overlap.
		j, _ := slices.BinarySearchFunc(planned, h.Start, func(p gaps.Range, s uint64) int { return cmp.Compare(p.End, s) })
		for ; j < len(planned) && planned[j].Start <= h.End; j++ {
			lo, hi := max(planned[j].Start, h.Start), min(planned[j].End, h.End)
			if lo <= hi {
				h.Planned += hi - lo + 1
			}
		}
	}
	return holes
}
