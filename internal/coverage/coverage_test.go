package coverage

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/certlake/certlake/internal/gaps"
)

// bruteBins counts the indices of ranges below ceiling per bin one by one.
func bruteBins(ranges []gaps.Range, ceiling, w, nb uint64) []uint64 {
	out := make([]uint64, nb)
	for _, r := range ranges {
		for i := r.Start; i <= r.End && i < ceiling; i++ {
			out[i/w]++
		}
	}
	return out
}

func TestBinCountsMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 200 {
		ceiling := uint64(rng.IntN(5000) + 1)
		nb := uint64(rng.IntN(300) + 1)
		w := (ceiling + nb - 1) / nb
		nb = (ceiling + w - 1) / w
		var ranges []gaps.Range
		for pos := uint64(rng.IntN(50)); pos < ceiling+100; {
			n := uint64(rng.IntN(400) + 1)
			ranges = append(ranges, gaps.Range{Start: pos, End: pos + n - 1})
			pos += n + uint64(rng.IntN(300)+1)
		}
		if got, want := binCounts(ranges, ceiling, w, nb), bruteBins(ranges, ceiling, w, nb); !slices.Equal(got, want) {
			t.Fatalf("trial %d: binCounts(ceiling %d, width %d) = %v, want %v", trial, ceiling, w, got, want)
		}
	}
}

func TestBuild(t *testing.T) {
	// [0, 100): main lacks [10, 29] and [90, 99]; staging holds [10, 14].
	l := Log{URL: "u", Ceiling: 100, PastCeiling: 7,
		AbsentMain: []gaps.Range{{Start: 10, End: 29}, {Start: 90, End: 120}},
		AbsentAll:  []gaps.Range{{Start: 15, End: 29}, {Start: 90, End: 120}},
		Planned:    []gaps.Range{{Start: 15, End: 29}},
	}
	r := Build("t", []Log{l}, Options{Bins: 10})
	lr := r.Logs[0]
	if lr.Main != 70 || lr.Staged != 5 || lr.Missing != 25 || lr.PastCeiling != 7 || lr.PlannedEntries != 15 || lr.PlannedRanges != 1 {
		t.Errorf("Build = main %d staged %d missing %d past %d planned %d/%d; want 70 5 25 7 15/1", lr.Main, lr.Staged, lr.Missing, lr.PastCeiling, lr.PlannedEntries, lr.PlannedRanges)
	}
	if want := []uint64{10, 0, 0, 10, 10, 10, 10, 10, 10, 0}; !slices.Equal(lr.BinMain, want) {
		t.Errorf("BinMain = %v, want %v", lr.BinMain, want)
	}
	if want := []uint64{0, 5, 0, 0, 0, 0, 0, 0, 0, 0}; !slices.Equal(lr.BinStaged, want) {
		t.Errorf("BinStaged = %v, want %v", lr.BinStaged, want)
	}
	if want := []Hole{{Start: 15, End: 29, Entries: 15, Planned: 15}, {Start: 90, End: 99, Entries: 10}}; !slices.Equal(lr.Holes, want) {
		t.Errorf("Holes = %+v, want %+v", lr.Holes, want)
	}
	// A ceiling smaller than the bins: one index per bin; the last bin of
	// an uneven split is narrower.
	r = Build("t", []Log{{URL: "u", Ceiling: 7, AbsentAll: []gaps.Range{{Start: 6, End: 6}}, AbsentMain: []gaps.Range{{Start: 6, End: 6}}}}, Options{Bins: 600})
	if n := len(r.Logs[0].BinMain); n != 7 || r.Logs[0].Missing != 1 {
		t.Errorf("Build(ceiling 7) = %d bins, %d missing; want 7, 1", n, r.Logs[0].Missing)
	}
	r = Build("t", []Log{{URL: "u", Ceiling: 10}}, Options{Bins: 4})
	if lr := r.Logs[0]; lr.BinWidth != 3 || !slices.Equal(lr.BinMain, []uint64{3, 3, 3, 1}) {
		t.Errorf("Build(ceiling 10, 4 bins) = width %d, bins %v; want 3, [3 3 3 1]", lr.BinWidth, lr.BinMain)
	}
}
