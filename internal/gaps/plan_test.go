package gaps

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/certlake/certlake/internal/storage"
	"github.com/certlake/certlake/internal/storage/storagetest"
)

func TestPlanRoundTrip(t *testing.T) {
	plan := []Range{{logA, 14, 14}, {logA, 20, 1 << 40}, {logB, 0, math.MaxUint64}}
	srv := storagetest.Start(t)
	bucket := srv.Bucket(t)
	for _, where := range []string{"dir", "s3"} {
		for _, name := range []string{"plan.jsonl", "plan.jsonl.gz"} {
			t.Run(where+"/"+name, func(t *testing.T) {
				var s storage.Store = storage.NewDir(t.TempDir())
				if where == "s3" {
					var err error
					s, err = (&storage.Opener{S3: srv.Config()}).OpenURI(t.Context(), "lake.plan_dir", "s3://"+bucket+"/plans/"+name)
					if err != nil {
						t.Fatal(err)
					}
				}
				for _, p := range [][]Range{{{logC, 1, 2}}, plan} { // the second write replaces the first
					if err := WritePlan(t.Context(), s, "k/"+name, p); err != nil {
						t.Fatalf("WritePlan(%s) = %v", name, err)
					}
				}
				got, err := ReadPlan(t.Context(), s, "k/"+name)
				if err != nil {
					t.Fatalf("ReadPlan(%s) = %v", name, err)
				}
				if !slices.Equal(got, plan) {
					t.Errorf("ReadPlan(%s) = %s, want %s", name, fmtRanges(got), fmtRanges(plan))
				}
				l, err := s.List(t.Context(), "", "", 0)
				if err != nil || len(l) != 1 {
					t.Errorf("store holds %v (%v) after WritePlan, want 1 object (no temporary left)", l, err)
				}
			})
		}
	}
}

func TestReadPlanRejectsMalformed(t *testing.T) {
	for _, tc := range []struct{ name, text string }{
		{"NotJSON", `{"source_url":"a","start":1,"end":2}` + "\nnope\n"},
		{"StartAfterEnd", `{"source_url":"a","start":3,"end":2}` + "\n"},
		{"NoURL", `{"start":1,"end":2}` + "\n"},
		{"Negative", `{"source_url":"a","start":-1,"end":2}` + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "plan.jsonl"), []byte(tc.text), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := ReadPlan(t.Context(), storage.NewDir(dir), "plan.jsonl"); !errors.Is(err, ErrMalformedPlan) {
				t.Errorf("ReadPlan(%q) = %v, want ErrMalformedPlan", tc.text, err)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	s := Summarize([]Range{{logA, 14, 14}, {logA, 20, 29}, {logB, 5, 6}})
	if s.Logs != 2 || s.Ranges != 3 || s.Entries != 13 {
		t.Errorf("Summarize = %+v, want 2 logs, 3 ranges, 13 entries", s)
	}
	if got, want := s.PerLog[logA], (LogSummary{Ranges: 2, Entries: 11, First: 14, Last: 29}); got != want {
		t.Errorf("Summarize PerLog[a] = %+v, want %+v", got, want)
	}
}

func TestChunk(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []Range
		size uint64
		want []Range
	}{
		{"Exact", []Range{{logA, 0, 9}}, 5, []Range{{logA, 0, 4}, {logA, 5, 9}}},
		{"Remainder", []Range{{logA, 10, 20}}, 4, []Range{{logA, 10, 13}, {logA, 14, 17}, {logA, 18, 20}}},
		{"Smaller", []Range{{logA, 3, 3}, {logB, 1, 2}}, 4, []Range{{logA, 3, 3}, {logB, 1, 2}}},
		{"NoLimit", []Range{{logA, 0, 1 << 40}}, 0, []Range{{logA, 0, 1 << 40}}},
		{"SizeOne", []Range{{logA, 7, 9}}, 1, []Range{{logA, 7, 7}, {logA, 8, 8}, {logA, 9, 9}}},
		{
			"NearMaxUint64", []Range{{logA, math.MaxUint64 - 4, math.MaxUint64}}, 3,
			[]Range{{logA, math.MaxUint64 - 4, math.MaxUint64 - 2}, {logA, math.MaxUint64 - 1, math.MaxUint64}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Chunk(tc.in, tc.size); !slices.Equal(got, tc.want) {
				t.Errorf("Chunk(%s, %d) = %s, want %s", fmtRanges(tc.in), tc.size, fmtRanges(got), fmtRanges(tc.want))
			}
		})
	}
}

// TestPlanLarge writes and reads a plan of 300k ranges.
func TestPlanLarge(t *testing.T) {
	plan := make([]Range, 300_000)
	for i := range plan {
		plan[i] = Range{logA, uint64(i) * 100, uint64(i)*100 + 37}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "plan.jsonl.gz")
	if err := WritePlan(t.Context(), storage.NewDir(dir), "plan.jsonl.gz", plan); err != nil {
		t.Fatal(err)
	}
	got, err := ReadPlan(t.Context(), storage.NewDir(dir), "plan.jsonl.gz")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, plan) {
		t.Errorf("ReadPlan(300k ranges) differs from what WritePlan wrote")
	}
	if fi, err := os.Stat(path); err == nil {
		t.Logf("300k ranges: %d bytes gzipped", fi.Size())
	}
}
