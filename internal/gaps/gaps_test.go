package gaps

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/RoaringBitmap/roaring/v2/roaring64"
	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/certlake/certlake/internal/keyindex"
)

// key is one (source_url, cert_index) row.
type key struct {
	url   string
	index uint64
}

func openDB(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatalf("open duckdb: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// writeKeys writes keys to a Parquet file (through a CSV file DuckDB converts)
// and returns the file's path.
func writeKeys(t testing.TB, db *sql.DB, dir, name string, keys []key) string {
	t.Helper()
	csvPath := filepath.Join(dir, name+".csv")
	var b strings.Builder
	b.WriteString("source_url,cert_index\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s,%d\n", k.url, k.index)
	}
	if err := os.WriteFile(csvPath, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, name+".parquet")
	q := fmt.Sprintf(`COPY (SELECT source_url, cert_index FROM read_csv('%s',
		header = true, columns = {'source_url': 'VARCHAR', 'cert_index': 'BIGINT'}))
		TO '%s' (FORMAT parquet)`, csvPath, out)
	if _, err := db.ExecContext(t.Context(), q); err != nil {
		t.Fatalf("write %s: %v", out, err)
	}
	return out
}

// union returns a keys relation reading every file (main UNION ALL staging).
func union(files ...string) string {
	quoted := make([]string, len(files))
	for i, f := range files {
		quoted[i] = "'" + f + "'"
	}
	return "read_parquet([" + strings.Join(quoted, ", ") + "])"
}

func keysOf(url string, indices ...uint64) []key {
	out := make([]key, len(indices))
	for i, n := range indices {
		out[i] = key{url, n}
	}
	return out
}

func from(n uint64) *uint64 { return &n }

const logA = "https://ct.example.com/logs/a"
const logB = "https://ct.example.com/logs/b"
const logC = "https://ct.example.com/logs/c"

func fmtRanges(rs []Range) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("%s[%d,%d]", strings.TrimPrefix(r.SourceURL, "https://ct.example.com/logs/"), r.Start, r.End)
	}
	return "{" + strings.Join(parts, " ") + "}"
}

func optsString(o Options) string {
	s := "catch-up"
	if o.From != nil {
		s = fmt.Sprintf("from=%d", *o.From)
	}
	if o.IncludeFrontier {
		s += "+frontier"
	}
	return s
}

type detectCase struct {
	name    string
	main    []key
	staging []key // nil: main only
	logs    []LogCeiling
	opts    Options
	want    []Range
}

// runDetect checks Detect and reference.Gaps (fixed semantics) against want.
func runDetect(t *testing.T, db *sql.DB, tc detectCase) {
	t.Helper()
	dir := t.TempDir()
	files := []string{writeKeys(t, db, dir, "main", tc.main)}
	if tc.staging != nil {
		files = append(files, writeKeys(t, db, dir, "staging", tc.staging))
	}
	rel := union(files...)
	got, err := Detect(t.Context(), db, rel, tc.logs, tc.opts)
	if err != nil {
		t.Fatalf("Detect(%s) error: %v", optsString(tc.opts), err)
	}
	if !slices.Equal(got, tc.want) {
		t.Errorf("Detect(%s) = %s, want %s", optsString(tc.opts), fmtRanges(got), fmtRanges(tc.want))
	}
	ref, err := detectReference(t.Context(), db, rel, tc.logs, tc.opts, false)
	if err != nil {
		t.Fatalf("reference.Gaps(%s) error: %v", optsString(tc.opts), err)
	}
	if !slices.Equal(ref, tc.want) {
		t.Errorf("reference.Gaps(%s) = %s, want %s", optsString(tc.opts), fmtRanges(ref), fmtRanges(tc.want))
	}
	sets, err := DetectSets(t.Context(), tc.logs, fileKeys(t, files...), tc.opts)
	if err != nil {
		t.Fatalf("DetectSets(%s) error: %v", optsString(tc.opts), err)
	}
	if !slices.Equal(sets, tc.want) {
		t.Errorf("DetectSets(%s) = %s, want %s", optsString(tc.opts), fmtRanges(sets), fmtRanges(tc.want))
	}
}

// fileKeys reads the keys of Parquet files as the key index does and
// serves them per log, for DetectSets: one part per file, as DetectLake
// serves main's files and staging (parts that may overlap).
func fileKeys(t testing.TB, files ...string) KeysOf {
	t.Helper()
	all := map[string][]*roaring64.Bitmap{}
	for _, f := range files {
		keys, _, err := keyindex.ReadFileKeys(t.Context(), f)
		if err != nil {
			t.Fatal(err)
		}
		for u, bm := range keys {
			all[u] = append(all[u], bm)
		}
	}
	return func(_ context.Context, url string) ([]*roaring64.Bitmap, error) { return all[url], nil }
}

// TestDetectSeedCriteria covers AC2.1, AC2.3, AC2.4 and AC1.3 of the seed's
// test requirements at the level of key relations.
func TestDetectSeedCriteria(t *testing.T) {
	db := openDB(t)
	ceil20 := []LogCeiling{{logA, 20}}
	for _, tc := range []detectCase{
		{
			name:    "AC2.1UnionExcludesEntriesInEitherTable",
			main:    keysOf(logA, 10, 11, 15, 16),
			staging: keysOf(logA, 12, 13),
			logs:    ceil20,
			want:    []Range{{logA, 14, 14}},
		},
		{
			// The seed's rule: MAX (25) capped at the ceiling, so the holes
			// run up to 19; the frontier rule does not apply when a key is
			// at or above the ceiling.
			name:    "AC2.3CeilingCapsMaxIndex",
			main:    keysOf(logA, 10, 11, 12),
			staging: keysOf(logA, 13, 14, 25),
			logs:    ceil20,
			want:    []Range{{logA, 15, 19}},
		},
		{
			name:    "AC2.3CeilingCapsWithFrontier",
			main:    keysOf(logA, 10, 11, 12),
			staging: keysOf(logA, 13, 14, 25),
			logs:    ceil20,
			opts:    Options{IncludeFrontier: true},
			want:    []Range{{logA, 15, 19}},
		},
		{
			name: "CeilingInsideTheKeys",
			main: keysOf(logA, 0, 1, 5, 9),
			logs: []LogCeiling{{logA, 7}},
			want: []Range{{logA, 2, 4}, {logA, 6, 6}},
		},
		{
			name: "CeilingInsideTheKeysHistorical",
			main: keysOf(logA, 0, 1, 5, 9),
			logs: []LogCeiling{{logA, 7}},
			opts: Options{From: from(3)},
			want: []Range{{logA, 3, 4}, {logA, 6, 6}},
		},
		{
			name: "KeyAtTheCeiling",
			main: keysOf(logA, 10, 12, 20),
			logs: ceil20,
			want: []Range{{logA, 11, 11}, {logA, 13, 19}},
		},
		{
			name: "NoKeyAtOrAboveTheCeilingNoFrontier",
			main: keysOf(logA, 10, 12, 19),
			logs: []LogCeiling{{logA, 30}},
			want: []Range{{logA, 11, 11}, {logA, 13, 18}},
		},
		{
			// Another log's keys above this one's ceiling change nothing.
			name: "OtherLogAboveItsCeiling",
			main: append(keysOf(logA, 10, 12), keysOf(logB, 1, 3, 90)...),
			logs: []LogCeiling{{logA, 20}, {logB, 50}},
			want: []Range{{logA, 11, 11}, {logB, 2, 2}, {logB, 4, 49}},
		},
		{
			name: "AC2.4MainOnly",
			main: keysOf(logA, 10, 11, 15),
			logs: ceil20,
			want: []Range{{logA, 12, 14}},
		},
		{
			name:    "AC1.3CatchUpMode",
			main:    keysOf(logA, 10, 11, 15),
			staging: keysOf(logA, 12),
			logs:    ceil20,
			want:    []Range{{logA, 13, 14}},
		},
		{
			name:    "AC1.3HistoricalMode",
			main:    keysOf(logA, 10, 11, 15),
			staging: keysOf(logA, 12),
			logs:    ceil20,
			opts:    Options{From: from(0)},
			want:    []Range{{logA, 0, 9}, {logA, 13, 14}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) { runDetect(t, db, tc) })
	}
}

// TestDetectSecondRunFewerWorkItems is AC2.2: after staging receives part of
// the first plan, the second plan is a strict subset of the first.
func TestDetectSecondRunFewerWorkItems(t *testing.T) {
	db := openDB(t)
	dir := t.TempDir()
	logs := []LogCeiling{{logA, 20}}
	mainFile := writeKeys(t, db, dir, "main", keysOf(logA, 10, 15))
	first, err := Detect(t.Context(), db, union(mainFile), logs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []Range{{logA, 11, 14}}; !slices.Equal(first, want) {
		t.Fatalf("first Detect = %s, want %s", fmtRanges(first), fmtRanges(want))
	}
	stagingFile := writeKeys(t, db, dir, "staging", keysOf(logA, 11, 12))
	second, err := Detect(t.Context(), db, union(mainFile, stagingFile), logs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []Range{{logA, 13, 14}}; !slices.Equal(second, want) {
		t.Fatalf("second Detect = %s, want %s", fmtRanges(second), fmtRanges(want))
	}
	if planned(second) >= planned(first) {
		t.Errorf("second plan has %d entries, first %d: want fewer", planned(second), planned(first))
	}
}

func planned(rs []Range) uint64 {
	var n uint64
	for _, r := range rs {
		n += r.Len()
	}
	return n
}

func TestDetectHistorical(t *testing.T) {
	db := openDB(t)
	logs := []LogCeiling{{logA, 100}}
	for _, tc := range []detectCase{
		{
			// Quirk Q5: the original searched holes between rows at or above
			// 20 only, so [20, 29] was never planned.
			name: "HoleStartingAtFrom",
			main: keysOf(logA, 0, 1, 2, 30, 31, 35),
			logs: logs,
			opts: Options{From: from(20)},
			want: []Range{{logA, 20, 29}, {logA, 32, 34}},
		},
		{
			name: "FromBelowMin",
			main: keysOf(logA, 30, 31, 35),
			logs: logs,
			opts: Options{From: from(5)},
			want: []Range{{logA, 5, 29}, {logA, 32, 34}},
		},
		{
			name: "FromAtPresentKey",
			main: keysOf(logA, 30, 31, 35),
			logs: logs,
			opts: Options{From: from(31)},
			want: []Range{{logA, 32, 34}},
		},
		{
			name: "FromAboveMax",
			main: keysOf(logA, 30, 31, 35),
			logs: logs,
			opts: Options{From: from(50)},
			want: nil,
		},
		{
			name: "FromAboveMaxWithFrontier",
			main: keysOf(logA, 30, 31, 35),
			logs: logs,
			opts: Options{From: from(50), IncludeFrontier: true},
			want: []Range{{logA, 50, 99}},
		},
		{
			name: "AbsentLogPlannedWhole",
			main: keysOf(logB, 30, 31),
			logs: []LogCeiling{{logA, 100}, {logB, 40}},
			opts: Options{From: from(7)},
			want: []Range{{logA, 7, 99}, {logB, 7, 29}},
		},
		{
			name: "FromAtCeilingPlansNothing",
			main: keysOf(logB, 30, 31),
			logs: []LogCeiling{{logA, 7}, {logB, 40}},
			opts: Options{From: from(7)},
			want: []Range{{logB, 7, 29}},
		},
		{
			name: "KeysOnlyAtOrAboveCeilingCountAsAbsent",
			main: keysOf(logA, 100, 101, 500),
			logs: logs,
			opts: Options{From: from(90)},
			want: []Range{{logA, 90, 99}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) { runDetect(t, db, tc) })
	}
}

// TestReferenceOriginalCapsAtCeiling: the original's planner (the seed's
// rule) plans the holes up to the ceiling when a key lies at or above it,
// as Detect does.
func TestReferenceOriginalCapsAtCeiling(t *testing.T) {
	db := openDB(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		keys []key
		ceil uint64
		want []Range
	}{
		{"AC2.3", keysOf(logA, 10, 11, 12, 13, 14, 25), 20, []Range{{logA, 15, 19}}},
		{"CeilingInsideTheKeys", keysOf(logA, 0, 1, 5, 9), 7, []Range{{logA, 2, 4}, {logA, 6, 6}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rel := union(writeKeys(t, db, dir, tc.name, tc.keys))
			got, err := detectReference(t.Context(), db, rel, []LogCeiling{{logA, tc.ceil}}, Options{}, true)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("reference.Gaps(original) = %s, want %s", fmtRanges(got), fmtRanges(tc.want))
			}
		})
	}
}

// TestReferenceOriginalMissesStartHole shows that reference.Gaps with
// Original reproduces quirk Q5 on the data Detect gets right.
func TestReferenceOriginalMissesStartHole(t *testing.T) {
	db := openDB(t)
	rel := union(writeKeys(t, db, t.TempDir(), "main", keysOf(logA, 0, 1, 2, 30, 31, 35)))
	logs := []LogCeiling{{logA, 100}}
	got, err := detectReference(t.Context(), db, rel, logs, Options{From: from(20)}, true)
	if err != nil {
		t.Fatal(err)
	}
	if want := []Range{{logA, 32, 34}}; !slices.Equal(got, want) {
		t.Errorf("reference.Gaps(from=20, original) = %s, want %s", fmtRanges(got), fmtRanges(want))
	}
}

func TestDetectFrontierAndMultipleLogs(t *testing.T) {
	db := openDB(t)
	main := slices.Concat(keysOf(logA, 5, 6, 9), keysOf(logB, 100, 200), keysOf(logC, 3))
	staging := slices.Concat(keysOf(logB, 150, 150, 201), keysOf(logA, 9))
	logs := []LogCeiling{{logC, 10}, {logB, 1000}, {logA, 12}}
	for _, tc := range []detectCase{
		{
			name: "CatchUp", main: main, staging: staging, logs: logs,
			want: []Range{{logA, 7, 8}, {logB, 101, 149}, {logB, 151, 199}},
		},
		{
			name: "CatchUpFrontier", main: main, staging: staging, logs: logs,
			opts: Options{IncludeFrontier: true},
			want: []Range{
				{logA, 7, 8}, {logA, 10, 11},
				{logB, 101, 149}, {logB, 151, 199}, {logB, 202, 999},
				{logC, 4, 9},
			},
		},
		{
			name: "LogNotListedIsIgnored", main: main, staging: staging,
			logs: []LogCeiling{{logB, 160}},
			want: []Range{{logB, 101, 149}, {logB, 151, 159}}, // keys above 160: up to the ceiling
		},
		{
			name: "NoLogs", main: main, staging: staging, logs: nil, want: nil,
		},
		{
			name: "ZeroCeiling", main: main, logs: []LogCeiling{{logA, 0}},
			opts: Options{From: from(0), IncludeFrontier: true}, want: nil,
		},
	} {
		t.Run(tc.name, func(t *testing.T) { runDetect(t, db, tc) })
	}
}

// TestDetectWordBoundaries puts holes and keys on the edges of the 64-index
// bitmap words.
func TestDetectWordBoundaries(t *testing.T) {
	db := openDB(t)
	span := func(a, b uint64) []uint64 {
		var out []uint64
		for i := a; i <= b; i++ {
			out = append(out, i)
		}
		return out
	}
	without := func(all []uint64, drop ...uint64) []uint64 {
		return slices.DeleteFunc(slices.Clone(all), func(i uint64) bool { return slices.Contains(drop, i) })
	}
	all := span(0, 300)
	logs := []LogCeiling{{logA, 1000}}
	for _, tc := range []detectCase{
		{name: "Hole63", main: keysOf(logA, without(all, 63)...), logs: logs, want: []Range{{logA, 63, 63}}},
		{name: "Hole64", main: keysOf(logA, without(all, 64)...), logs: logs, want: []Range{{logA, 64, 64}}},
		{name: "Hole63To64", main: keysOf(logA, without(all, 63, 64)...), logs: logs, want: []Range{{logA, 63, 64}}},
		{name: "Holes127And128", main: keysOf(logA, without(all, 127, 128)...), logs: logs, want: []Range{{logA, 127, 128}}},
		{
			name: "WholeWordMissing", main: keysOf(logA, without(all, span(128, 191)...)...), logs: logs,
			want: []Range{{logA, 128, 191}},
		},
		{
			name: "WordsMissingAcrossBoundaries", main: keysOf(logA, without(all, span(60, 200)...)...), logs: logs,
			want: []Range{{logA, 60, 200}},
		},
		{
			name: "FullWordsBetweenHoles", main: keysOf(logA, without(all, 1, 290)...), logs: logs,
			want: []Range{{logA, 1, 1}, {logA, 290, 290}},
		},
		{name: "NoHoles", main: keysOf(logA, all...), logs: logs, want: nil},
		{
			name: "NoHolesFrontier", main: keysOf(logA, span(64, 127)...), logs: logs,
			opts: Options{From: from(0), IncludeFrontier: true},
			want: []Range{{logA, 0, 63}, {logA, 128, 999}},
		},
		{name: "SingleKey", main: keysOf(logA, 64), logs: logs, want: nil},
		{
			name: "SingleKeyHistorical", main: keysOf(logA, 64), logs: logs,
			opts: Options{From: from(63), IncludeFrontier: true},
			want: []Range{{logA, 63, 63}, {logA, 65, 999}},
		},
		{name: "KeysOnlyAtCeiling", main: keysOf(logA, 1000), logs: logs, want: nil},
		{
			name: "KeysOnlyAtCeilingFrontier", main: keysOf(logA, 1000), logs: logs,
			opts: Options{IncludeFrontier: true}, want: nil,
		},
		{
			name: "CeilingInsideWord", main: keysOf(logA, 0, 70, 72, 75), logs: []LogCeiling{{logA, 72}},
			opts: Options{IncludeFrontier: true},
			want: []Range{{logA, 1, 69}, {logA, 71, 71}},
		},
		{
			name: "FromInsideWord", main: keysOf(logA, 0, 70, 72, 75), logs: logs,
			opts: Options{From: from(71)},
			want: []Range{{logA, 71, 71}, {logA, 73, 74}},
		},
		{
			name: "LargeIndices", main: keysOf(logA, 1<<40, 1<<40+64, 1<<40+65), logs: []LogCeiling{{logA, 1 << 41}},
			want: []Range{{logA, 1<<40 + 1, 1<<40 + 63}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) { runDetect(t, db, tc) })
	}
}

func TestCheckFrom(t *testing.T) {
	logs := []LogCeiling{{logA, 10}, {logB, 100}}
	for _, tc := range []struct {
		from    uint64
		wantErr bool
	}{{0, false}, {9, false}, {10, true}, {500, true}} {
		err := CheckFrom(tc.from, logs)
		if got := err != nil; got != tc.wantErr {
			t.Errorf("CheckFrom(%d) = %v, want error %v", tc.from, err, tc.wantErr)
		}
		if err != nil && (!errors.Is(err, ErrFromAtCeiling) || !strings.Contains(err.Error(), logA)) {
			t.Errorf("CheckFrom(%d) = %v, want ErrFromAtCeiling naming %s", tc.from, err, logA)
		}
	}
}

func TestDetectRejectsDuplicateLogs(t *testing.T) {
	db := openDB(t)
	_, err := Detect(t.Context(), db, "(SELECT 'x' AS source_url, 1::BIGINT AS cert_index)",
		[]LogCeiling{{logA, 1}, {logA, 2}}, Options{})
	if err == nil {
		t.Errorf("Detect(duplicate logs) = nil error, want one")
	}
}

// bruteForce is Detect's definition, index by index.
func bruteForce(keys []key, logs []LogCeiling, opts Options) []Range {
	var lo uint64
	if opts.From != nil {
		lo = *opts.From
	}
	sorted := slices.Clone(logs)
	slices.SortFunc(sorted, func(a, b LogCeiling) int { return strings.Compare(a.URL, b.URL) })
	var out []Range
	for _, l := range sorted {
		present := map[uint64]bool{}
		first, last, any, below, above := uint64(0), uint64(0), false, false, false
		for _, k := range keys {
			if k.url == l.URL && k.index >= l.Ceiling {
				above = true
			}
			if k.url != l.URL || k.index >= l.Ceiling {
				continue
			}
			if k.index < lo {
				below = true
				continue
			}
			present[k.index] = true
			if !any || k.index < first {
				first = k.index
			}
			if !any || k.index > last {
				last = k.index
			}
			any = true
		}
		if !any {
			if opts.From != nil && lo < l.Ceiling && (!below || opts.IncludeFrontier || above) {
				out = append(out, Range{l.URL, lo, l.Ceiling - 1})
			}
			continue
		}
		start := first
		if opts.From != nil {
			start = lo
		}
		end := last
		if opts.IncludeFrontier || above {
			end = l.Ceiling - 1
		}
		for i := start; i <= end; i++ {
			if present[i] {
				continue
			}
			if n := len(out); n > 0 && out[n-1].SourceURL == l.URL && out[n-1].End+1 == i {
				out[n-1].End = i
			} else {
				out = append(out, Range{l.URL, i, i})
			}
		}
	}
	return out
}

// randomKeys builds logs whose keys alternate present runs and holes of
// lengths from 1 to a few hundred, split between main and staging with some
// keys in both, plus a few keys far beyond any ceiling.
func randomKeys(r *rand.Rand, urls []string, perLog int) (main, staging []key) {
	runLen := func() uint64 {
		switch r.IntN(4) {
		case 0:
			return 1
		case 1:
			return uint64(1 + r.IntN(8))
		case 2:
			return uint64(1 + r.IntN(70))
		default:
			return uint64(1 + r.IntN(400))
		}
	}
	for _, u := range urls {
		i := uint64(r.IntN(1000))
		for n := 0; n < perLog; {
			l := runLen()
			for j := uint64(0); j < l; j++ {
				k := key{u, i + j}
				switch r.IntN(10) {
				case 0:
					main = append(main, k)
					staging = append(staging, k)
				case 1, 2:
					staging = append(staging, k)
				default:
					main = append(main, k)
				}
			}
			n += int(l)
			i += l + runLen()
		}
		main = append(main, key{u, i + 100_000})
	}
	r.Shuffle(len(main), func(i, j int) { main[i], main[j] = main[j], main[i] })
	return main, staging
}

// TestDetectMatchesBruteForce compares Detect and reference.Gaps with the
// index-by-index definition on random data in every mode.
func TestDetectMatchesBruteForce(t *testing.T) {
	db := openDB(t)
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(1, 2))
	urls := []string{logA, logB, logC, "https://ct.example.com/logs/d", "https://ct.example.com/logs/e"}
	main, staging := randomKeys(r, urls, 20_000)
	mainFile, stagingFile := writeKeys(t, db, dir, "main", main), writeKeys(t, db, dir, "staging", staging)
	rel := union(mainFile, stagingFile)
	sets := fileKeys(t, mainFile, stagingFile)
	all := slices.Concat(main, staging)
	t.Logf("%d keys", len(all))

	for round := range 12 {
		var logs []LogCeiling
		for _, u := range urls[:4] { // logs/e is in the lake but not listed
			logs = append(logs, LogCeiling{u, uint64(10_000 + r.IntN(50_000))})
		}
		logs = append(logs, LogCeiling{"https://ct.example.com/logs/absent", 5_000})
		opts := Options{IncludeFrontier: round%3 == 2}
		if round%2 == 1 {
			opts.From = from(uint64(r.IntN(30_000)))
		}
		name := fmt.Sprintf("Round%d", round)
		t.Run(name, func(t *testing.T) {
			want := bruteForce(all, logs, opts)
			got, err := Detect(t.Context(), db, rel, logs, opts)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				t.Errorf("Detect(%s) = %d ranges, want %d; first difference %s", optsString(opts), len(got), len(want), firstDiff(got, want))
			}
			ref, err := detectReference(t.Context(), db, rel, logs, opts, false)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ref, want) {
				t.Errorf("reference.Gaps(%s) = %d ranges, want %d; first difference %s", optsString(opts), len(ref), len(want), firstDiff(ref, want))
			}
			fromSets, err := DetectSets(t.Context(), logs, sets, opts)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(fromSets, want) {
				t.Errorf("DetectSets(%s) = %d ranges, want %d; first difference %s", optsString(opts), len(fromSets), len(want), firstDiff(fromSets, want))
			}
			if len(want) == 0 {
				t.Errorf("bruteForce(%s) planned nothing: the round tests nothing", optsString(opts))
			}
		})
	}
}

func firstDiff(got, want []Range) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("at %d: got %s, want %s", i, fmtRanges(got[i:i+1]), fmtRanges(want[i:i+1]))
		}
	}
	return fmt.Sprintf("lengths %d vs %d", len(got), len(want))
}

func TestDetectCanceled(t *testing.T) {
	db := openDB(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := Detect(ctx, db, "range(0, 100000000) r(cert_index), (SELECT 'x' AS source_url)", []LogCeiling{{"x", 1 << 40}}, Options{})
	if err == nil {
		t.Errorf("Detect(canceled context) = nil error, want one")
	}
}
