package pqwrite

import (
	"bytes"
	"context"
	"crypto/md5"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	_ "github.com/duckdb/duckdb-go/v2"
)

// testRows is a column-wise data set covering every column type.
type testRows struct {
	id      []int64  // Int64, stats
	ts      []int64  // TimestampMicros, dictionary, stats
	flag    []bool   // Boolean, stats
	name    [][]byte // String, dictionary, stats
	blob    [][]byte // Binary, plain, Snappy
	text    [][]byte // String, plain, uncompressed
	tags    [][]string
	tagNull [][]bool   // a null element where true
	words   [][]string // read back: the tags column written without nulls (null elements as "")
}

var testColumns = []Column{
	{Name: "id", Type: Int64, Stats: true, Codec: Zstd},
	{Name: "ts", Type: TimestampMicros, Dictionary: true, Stats: true, Codec: Zstd},
	{Name: "flag", Type: Boolean, Stats: true},
	{Name: "name", Type: String, Dictionary: true, Stats: true, Codec: Zstd},
	{Name: "blob", Type: Binary, Codec: Snappy},
	{Name: "text", Type: String},
	{Name: "tags", Type: StringList, Dictionary: true, Codec: Zstd},
	{Name: "words", Type: StringList, Codec: Snappy},
}

func genRows(seed uint64, n, names int) testRows {
	rng := rand.New(rand.NewPCG(seed, 1))
	var r testRows
	for i := range n {
		r.id = append(r.id, int64(i)*7-int64(n)) // negative and positive
		r.ts = append(r.ts, 1_700_000_000_000_000+int64(i/100)*1000)
		r.flag = append(r.flag, rng.IntN(3) == 0)
		r.name = append(r.name, fmt.Appendf(nil, "name-%d", rng.IntN(names)))
		blob := make([]byte, rng.IntN(300))
		for j := range blob {
			blob[j] = byte(rng.Uint32())
		}
		r.blob = append(r.blob, blob)
		r.text = append(r.text, fmt.Appendf(nil, "text %d %s", i, strings.Repeat("x", rng.IntN(20))))
		var tags []string
		var nulls []bool
		for range rng.IntN(4) {
			null := rng.IntN(10) == 0
			tag := fmt.Sprintf("tag-%d", rng.IntN(50))
			if null {
				tag = "" // what a reader gives for a null element
			}
			tags = append(tags, tag)
			nulls = append(nulls, null)
		}
		r.tags = append(r.tags, tags)
		r.tagNull = append(r.tagNull, nulls)
	}
	return r
}

// levels renders list rows as values and levels; null elements when
// nulls is set.
func levels(rows [][]string, nulls [][]bool, from, to int) (vals [][]byte, def, rep []int16) {
	for i := from; i < to; i++ {
		if len(rows[i]) == 0 {
			def, rep = append(def, 0), append(rep, 0)
			continue
		}
		for j, e := range rows[i] {
			rep = append(rep, min(int16(j), 1))
			if nulls != nil && nulls[i][j] {
				def = append(def, 1)
				continue
			}
			def = append(def, 2)
			vals = append(vals, []byte(e))
		}
	}
	return vals, def, rep
}

// writeTestFile writes rows in batches of batch rows, ending a row group
// every group rows.
func writeTestFile(t *testing.T, path string, r testRows, batch, group int, opts Options) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := NewWriter(f, testColumns, opts)
	if err != nil {
		t.Fatal(err)
	}
	n := len(r.id)
	for lo := 0; lo < n; lo += batch {
		hi := min(lo+batch, n)
		tv, td, tr := levels(r.tags, r.tagNull, lo, hi)
		wv, wd, wr := levels(r.tags, nil, lo, hi)
		for _, err := range []error{
			w.Column(0).Int64s(r.id[lo:hi]),
			w.Column(1).Int64s(r.ts[lo:hi]),
			w.Column(2).Bools(r.flag[lo:hi]),
			w.Column(3).ByteArrays(r.name[lo:hi]),
			w.Column(4).ByteArrays(r.blob[lo:hi]),
			w.Column(5).ByteArrays(r.text[lo:hi]),
			w.Column(6).List(tv, td, tr),
			w.Column(7).List(wv, wd, wr),
		} {
			if err != nil {
				t.Fatal(err)
			}
		}
		if hi%group == 0 {
			if err := w.EndRowGroup(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// readArrow reads a file back with arrow-go's Parquet reader.
func readArrow(t *testing.T, path string) (testRows, *file.Reader) {
	t.Helper()
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() { pf.Close() })
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 1000}, memory.NewGoAllocator())
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	defer tbl.Release()
	var out testRows
	tr := array.NewTableReader(tbl, 1000)
	defer tr.Release()
	for tr.Next() {
		rec := tr.RecordBatch()
		n := int(rec.NumRows())
		for i := range n {
			out.id = append(out.id, rec.Column(0).(*array.Int64).Value(i))
			out.ts = append(out.ts, int64(rec.Column(1).(*array.Timestamp).Value(i)))
			out.flag = append(out.flag, rec.Column(2).(*array.Boolean).Value(i))
			out.name = append(out.name, []byte(rec.Column(3).(*array.String).Value(i)))
			out.blob = append(out.blob, bytes.Clone(rec.Column(4).(*array.Binary).Value(i)))
			out.text = append(out.text, []byte(rec.Column(5).(*array.String).Value(i)))
			for c, dst := range []*[][]string{&out.tags, &out.words} {
				l := rec.Column(6 + c).(*array.List)
				s, e := l.ValueOffsets(i)
				elems := l.ListValues().(*array.String)
				var tags []string
				var nulls []bool
				for k := s; k < e; k++ {
					tags = append(tags, elems.Value(int(k)))
					nulls = append(nulls, elems.IsNull(int(k)))
				}
				*dst = append(*dst, tags)
				if c == 0 {
					out.tagNull = append(out.tagNull, nulls)
				}
			}
		}
	}
	if ts := tbl.Schema().Field(1).Type.(*arrow.TimestampType); ts.Unit != arrow.Microsecond || ts.TimeZone != "UTC" {
		t.Errorf("ts type = %s, want timestamp[us, tz=UTC]", ts)
	}
	return out, pf
}

func TestRoundTripArrow(t *testing.T) {
	for _, tc := range []struct {
		name              string
		n, batch, group   int
		names             int
		page, dictionary  int
		wantGroups, pages int // pages: minimum data pages of the blob column in group 0
	}{
		{name: "one page", n: 1000, batch: 1000, group: 1000, names: 10, wantGroups: 1, pages: 1},
		{name: "many pages and groups", n: 5000, batch: 300, group: 1200, names: 10, page: 4096, wantGroups: 5, pages: 10},
		{name: "dictionary fallback", n: 3000, batch: 100, group: 3000, names: 2000, dictionary: 2048, wantGroups: 1, pages: 1},
		{name: "wide dictionary", n: 70000, batch: 8192, group: 70000, names: 1 << 17, dictionary: 8 << 20, wantGroups: 1, pages: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := genRows(7, tc.n, tc.names)
			path := filepath.Join(t.TempDir(), "f.parquet")
			writeTestFile(t, path, r, tc.batch, tc.group, Options{CreatedBy: "pqwrite test", PageBytes: tc.page, DictionaryBytes: tc.dictionary})
			got, pf := readArrow(t, path)
			if pf.NumRowGroups() != tc.wantGroups {
				t.Errorf("row groups = %d, want %d", pf.NumRowGroups(), tc.wantGroups)
			}
			if !slices.Equal(got.id, r.id) || !slices.Equal(got.ts, r.ts) || !slices.Equal(got.flag, r.flag) {
				t.Errorf("int64, timestamp or boolean column differs")
			}
			for name, pair := range map[string][2][][]byte{"name": {got.name, r.name}, "blob": {got.blob, r.blob}, "text": {got.text, r.text}} {
				if !slices.EqualFunc(pair[0], pair[1], bytes.Equal) {
					t.Errorf("column %s differs", name)
				}
			}
			if !slices.EqualFunc(got.tags, r.tags, slices.Equal) || !slices.EqualFunc(got.tagNull, r.tagNull, func(a, b []bool) bool {
				return slices.Equal(a, b) || len(a) == 0 && len(b) == 0
			}) {
				t.Errorf("list column with nulls differs")
			}
			// words holds the same lists with "" where tags has nulls.
			if !slices.EqualFunc(got.words, r.tags, slices.Equal) {
				t.Errorf("list column differs")
			}
			md := pf.MetaData()
			if md.GetCreatedBy() != "pqwrite test" {
				t.Errorf("created_by = %q", md.GetCreatedBy())
			}
			rg := md.RowGroup(0)
			for i, want := range []string{"ZSTD", "ZSTD", "UNCOMPRESSED", "ZSTD", "SNAPPY", "UNCOMPRESSED"} {
				cc, _ := rg.ColumnChunk(i)
				if got := cc.Compression().String(); got != want {
					t.Errorf("column %d codec = %s, want %s", i, got, want)
				}
			}
			if name, _ := rg.ColumnChunk(3); !name.HasDictionaryPage() {
				t.Errorf("name has no dictionary page")
			}
			pr, err := pf.RowGroup(0).GetColumnPageReader(4)
			if err != nil {
				t.Fatal(err)
			}
			pages := 0
			for pr.Next() {
				pages++
			}
			if err := pr.Err(); err != nil {
				t.Fatal(err)
			}
			if pages < tc.pages {
				t.Errorf("blob pages in group 0 = %d, want >= %d", pages, tc.pages)
			}
		})
	}
}

// TestDuckDBReadsFiles reads a file with DuckDB: every value, the logical
// types and the footer statistics.
func TestDuckDBReadsFiles(t *testing.T) {
	r := genRows(11, 4000, 30)
	path := filepath.Join(t.TempDir(), "f.parquet")
	writeTestFile(t, path, r, 512, 2048, Options{PageBytes: 8192, DictionaryBytes: 1 << 20})
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q := func(query string, dest ...any) {
		t.Helper()
		if err := db.QueryRowContext(t.Context(), strings.ReplaceAll(query, "FILE", "'"+path+"'")).Scan(dest...); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
	}
	var rows, sumID, flags int64
	var minTS, types string
	q(`SELECT count(*), sum(id), count(*) FILTER (flag) FROM FILE`, &rows, &sumID, &flags)
	var wantSum, wantFlags int64
	for i := range r.id {
		wantSum += r.id[i]
		if r.flag[i] {
			wantFlags++
		}
	}
	if rows != 4000 || sumID != wantSum || flags != wantFlags {
		t.Errorf("count, sum(id), flags = %d, %d, %d; want 4000, %d, %d", rows, sumID, flags, wantSum, wantFlags)
	}
	q(`SELECT min(ts)::VARCHAR, string_agg(DISTINCT typeof(ts) || '/' || typeof(name) || '/' || typeof(blob) || '/' || typeof(tags), ',') FROM FILE`, &minTS, &types)
	if minTS != "2023-11-14 22:13:20+00" || types != "TIMESTAMP WITH TIME ZONE/VARCHAR/BLOB/VARCHAR[]" {
		t.Errorf("min(ts), types = %q, %q", minTS, types)
	}
	// Every row's values, hashed on both sides.
	var got, want string
	q(`SELECT md5(string_agg(concat_ws('|', id, epoch_us(ts), flag, name, md5(blob), text, list_transform(tags, x -> coalesce(x, 'nil'))::VARCHAR), ';' ORDER BY id)) FROM FILE`, &got)
	var sb strings.Builder
	for i := range r.id {
		if i > 0 {
			sb.WriteString(";")
		}
		tags := make([]string, len(r.tags[i]))
		for j, e := range r.tags[i] {
			tags[j] = e
			if r.tagNull[i][j] {
				tags[j] = "nil"
			}
		}
		fmt.Fprintf(&sb, "%d|%d|%t|%s|%x|%s|[%s]", r.id[i], r.ts[i], r.flag[i], r.name[i], md5sum(r.blob[i]), r.text[i], strings.Join(tags, ", "))
	}
	if err := db.QueryRowContext(t.Context(), `SELECT md5(?)`, sb.String()).Scan(&want); err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("rows read by DuckDB differ from the rows written")
	}
	// Footer statistics of the first row group.
	var minID, maxID, minName, maxName, minFlag, maxFlag string
	q(`SELECT max(stats_min_value) FILTER (path_in_schema = 'id'), max(stats_max_value) FILTER (path_in_schema = 'id'),
		max(stats_min_value) FILTER (path_in_schema = 'name'), max(stats_max_value) FILTER (path_in_schema = 'name'),
		max(stats_min_value) FILTER (path_in_schema = 'flag'), max(stats_max_value) FILTER (path_in_schema = 'flag')
		FROM parquet_metadata(FILE) WHERE row_group_id = 0`, &minID, &maxID, &minName, &maxName, &minFlag, &maxFlag)
	wantMinName, wantMaxName := r.name[0], r.name[0]
	for _, n := range r.name[:2048] {
		if bytes.Compare(n, wantMinName) < 0 {
			wantMinName = n
		}
		if bytes.Compare(n, wantMaxName) > 0 {
			wantMaxName = n
		}
	}
	if minID != fmt.Sprint(r.id[0]) || maxID != fmt.Sprint(r.id[2047]) || minName != string(wantMinName) || maxName != string(wantMaxName) || minFlag != "false" || maxFlag != "true" {
		t.Errorf("stats id [%s, %s] name [%s, %s] flag [%s, %s]; want [%d, %d] [%s, %s] [false, true]",
			minID, maxID, minName, maxName, minFlag, maxFlag, r.id[0], r.id[2047], wantMinName, wantMaxName)
	}
}

func md5sum(b []byte) [16]byte { return md5.Sum(b) }
