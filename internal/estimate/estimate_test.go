package estimate

import (
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/certlake/certlake/internal/gaps"
)

func ranges(url string, se ...uint64) []gaps.Range {
	var out []gaps.Range
	for i := 0; i+1 < len(se); i += 2 {
		out = append(out, gaps.Range{SourceURL: url, Start: se[i], End: se[i+1]})
	}
	return out
}

func TestRequests(t *testing.T) {
	tests := []struct {
		name  string
		log   Log
		chunk uint64
		want  uint64
	}{
		{"StaticOneTile", Log{Static: true, Ranges: ranges("s", 0, 255)}, 0, 1},
		{"StaticStraddlesTiles", Log{Static: true, Ranges: ranges("s", 250, 260)}, 0, 2},
		{"StaticTwoRangesOneTile", Log{Static: true, Ranges: ranges("s", 0, 9, 20, 29)}, 0, 2},
		// A chunk border inside a tile fetches it twice.
		{"StaticChunkCutsTile", Log{Static: true, Ranges: ranges("s", 0, 511)}, 300, 3},
		{"RFCAligned", Log{BatchSize: 256, Ranges: ranges("r", 0, 1023)}, 0, 4},
		{"RFCUnaligned", Log{BatchSize: 256, Ranges: ranges("r", 100, 355)}, 0, 2},
		// Google-like: 32 per answer, asked 256 at a time.
		{"RFCShortReads", Log{BatchSize: 256, Served: 32, Ranges: ranges("r", 0, 1023)}, 0, 32},
		{"RFCShortReadsUnaligned", Log{BatchSize: 256, Served: 32, Ranges: ranges("r", 250, 260)}, 0, 2},
		// Chunks of 100 from 0: three of them cross a multiple of 256.
		{"RFCChunked", Log{BatchSize: 256, Ranges: ranges("r", 0, 999)}, 100, 13},
		{"Empty", Log{BatchSize: 256}, 0, 0},
		// Verified: one level-1 hash tile per 65536 entries, once.
		{"StaticVerified", Log{Static: true, Verified: true, Ranges: ranges("s", 0, 511, 600, 700, 70_000, 70_000)}, 0, (2 + 1) + 1 + (1 + 1)},
		// Verified: the first entry's proof and a consistency proof per
		// 16 batches, per chunk.
		{"RFCVerified", Log{BatchSize: 256, Verified: true, Ranges: ranges("r", 0, 8191)}, 4096, 32 + 2*(1+1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Requests(tc.log, tc.chunk); got != tc.want {
				t.Errorf("Requests(%+v, chunk %d) = %d, want %d", tc.log, tc.chunk, got, tc.want)
			}
		})
	}
}

func near(got, want time.Duration) bool {
	return math.Abs(float64(got-want)) <= float64(10*time.Millisecond)
}

func TestPlan(t *testing.T) {
	lat := 100 * time.Millisecond
	tests := []struct {
		name      string
		logs      []Log
		opts      Options
		want      []time.Duration
		wantBound []string
	}{
		{
			// 100 requests at 10/s with a burst of 10: 9 s, plus the
			// last answer's round trip.
			name:      "Rate",
			logs:      []Log{{URL: "a", BatchSize: 10, Ranges: ranges("a", 0, 999), Limit: Limit{Rate: 10, Concurrency: 4}}},
			opts:      Options{Latency: lat},
			want:      []time.Duration{9*time.Second + lat},
			wantBound: []string{"rate"},
		},
		{
			// 4 in flight at 100 ms each: 40 requests/s at most.
			name:      "Concurrency",
			logs:      []Log{{URL: "a", BatchSize: 10, Ranges: ranges("a", 0, 3999), Limit: Limit{Rate: 100, Burst: 1, Concurrency: 4}}},
			opts:      Options{Latency: lat},
			want:      []time.Duration{time.Duration(399.0/40*float64(time.Second)) + lat},
			wantBound: []string{"concurrency"},
		},
		{
			// Two logs of one operator share 10 requests/s: 5 each while
			// both run; b (99 requests after its burst of 1) ends at
			// 19.8 s, then a (199) has the 10/s to itself for its last
			// 100: 29.8 s.
			name: "OperatorShared",
			logs: []Log{
				{URL: "a", Operator: "Op", BatchSize: 10, Ranges: ranges("a", 0, 1999), Limit: Limit{Rate: 10, Burst: 1}},
				{URL: "b", Operator: "op", BatchSize: 10, Ranges: ranges("b", 0, 999), Limit: Limit{Rate: 10, Burst: 1}},
				{URL: "c", BatchSize: 10, Ranges: ranges("c", 0, 99), Limit: Limit{Rate: 1, Burst: 1}},
			},
			opts: Options{Operators: map[string]Limit{"OP": {Rate: 10}}},
			want: []time.Duration{
				29800 * time.Millisecond,
				19800 * time.Millisecond,
				9 * time.Second,
			},
			wantBound: []string{"rate", "operator", "rate"},
		},
		{
			// Chunks of one request each, two in flight: the window, not
			// the concurrency of 4, bounds the log to 2 / 100 ms.
			name:      "Window",
			logs:      []Log{{URL: "a", BatchSize: 10, Ranges: ranges("a", 0, 999), Limit: Limit{Rate: -1, Concurrency: 4}, Window: 2}},
			opts:      Options{Latency: lat, ChunkSize: 10, Window: 8},
			want:      []time.Duration{5*time.Second + lat},
			wantBound: []string{"window"},
		},
		{
			name:      "Unlimited",
			logs:      []Log{{URL: "a", BatchSize: 10, Ranges: ranges("a", 0, 999), Limit: Limit{Rate: -1}}},
			want:      []time.Duration{0},
			wantBound: []string{"rate"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			est := Plan(tc.logs, tc.opts)
			var total time.Duration
			for i, l := range est.Logs {
				total = max(total, l.Duration)
				if !near(l.Duration, tc.want[i]) || l.Bound != tc.wantBound[i] {
					t.Errorf("Plan: log %s = %v bound %q, want %v bound %q", l.URL, l.Duration, l.Bound, tc.want[i], tc.wantBound[i])
				}
			}
			if est.Duration != total {
				t.Errorf("Plan: total %v, want the longest log %v", est.Duration, total)
			}
		})
	}
}

func TestPlanHuge(t *testing.T) {
	// 20 logs of 2 billion entries at Google's 32 per answer: the model
	// stays finite and proportional.
	var logs []Log
	for i := range 20 {
		u := fmt.Sprintf("https://ct.example/%d", i)
		logs = append(logs, Log{URL: u, BatchSize: 256, Served: 32, Ranges: ranges(u, 0, 2_000_000_000-1), Limit: Limit{Rate: 5}})
	}
	est := Plan(logs, Options{ChunkSize: 51_200})
	want := time.Duration((2e9/32 - 5) / 5 * float64(time.Second))
	if math.Abs(float64(est.Duration-want)) > float64(time.Second) || est.Requests != 20*2e9/32 {
		t.Errorf("Plan(20 x 2e9) = %v, %d requests; want %v, %d", est.Duration, est.Requests, want, uint64(20*2e9/32))
	}
}

func TestChunksMatchesGapsChunk(t *testing.T) {
	rs := ranges("r", 0, 0, 5, 104, 200, 1000, 1<<63, 1<<63+250)
	for _, size := range []uint64{0, 1, 7, 100, 1 << 62} {
		var got []gaps.Range
		for c := range chunks(rs, size) {
			got = append(got, c)
		}
		if want := gaps.Chunk(rs, size); !slices.Equal(got, want) {
			t.Errorf("chunks(size %d) = %v, want gaps.Chunk's %v", size, got, want)
		}
	}
}
