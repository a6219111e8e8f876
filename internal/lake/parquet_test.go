package lake

import (
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certlake/certlake/internal/delta"
	"github.com/certlake/certlake/internal/lake/laketest"
	"github.com/certlake/certlake/internal/record"
)

// writeFiles writes rows as data files under dir with the writer's file
// path, without a Delta commit, and lists them.
func writeFiles(t testing.TB, dir string, rows []record.Row, asDERBinary bool, opts WriterOptions) []FileInfo {
	t.Helper()
	tbl := &Table{path: dir, layout: layout{asDERBinary: asDERBinary}}
	w := tbl.NewWriter(opts)
	for _, r := range rows {
		if err := w.Write(r); err != nil {
			t.Fatalf("Write: %v", err)
		}
	}
	if err := w.finish(); err != nil {
		t.Fatalf("finish: %v", err)
	}
	var files []FileInfo
	for _, f := range w.enc.done {
		st, err := f.stats.json()
		if err != nil {
			t.Fatal(err)
		}
		fi := FileInfo{Path: delta.EncodePath(f.rel), LocalPath: dir + "/" + f.rel, SeenDate: f.date, Size: f.size, NumRecords: -1}
		parseStats(st, &fi)
		files = append(files, fi)
	}
	return files
}

// testRows spans two days and two logs, with edge cases: empty lists,
// quotes and non-ASCII in strings, a DER of zero bytes.
func testRows() []record.Row {
	day1 := time.Date(2024, 11, 25, 23, 59, 59, 900_000_000, time.UTC)
	rows := laketest.New(1, "https://ct.example.net/log").Rows(0, 300, day1)
	rows = append(rows, laketest.New(2, "https://ct.example.org/2025h2").Rows(1<<40, 50, day1)...)
	rows[3].AllDomains = []string{}
	rows[4].Chain = nil
	rows[5].SubjectAggregated = `/CN=caf\u00e9 "quoted" 'single' ü`
	rows[6].AsDER = []byte{}
	return rows
}

// normalize makes rows comparable after a round trip: nil and empty lists
// are the same table value, and times compare in UTC.
func normalize(rows []record.Row) []record.Row {
	out := slices.Clone(rows)
	for i := range out {
		r := &out[i]
		if r.AllDomains == nil {
			r.AllDomains = []string{}
		}
		if r.Chain == nil {
			r.Chain = []string{}
		}
		if r.AsDER == nil {
			r.AsDER = []byte{}
		}
		r.Seen = r.Seen.UTC()
	}
	slices.SortFunc(out, func(a, b record.Row) int {
		if c := strings.Compare(a.SourceURL, b.SourceURL); c != 0 {
			return c
		}
		return int(a.CertIndex) - int(b.CertIndex)
	})
	return out
}

func diffRows(t *testing.T, got, want []record.Row) {
	t.Helper()
	got, want = normalize(got), normalize(want)
	if len(got) != len(want) {
		t.Fatalf("got %d rows, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		seenEqual := g.Seen.Equal(w.Seen)
		g.Seen, w.Seen = time.Time{}, time.Time{}
		if !seenEqual || !reflect.DeepEqual(g, w) {
			t.Fatalf("row %d:\n got %#v\nwant %#v", i, got[i], want[i])
		}
	}
}

func TestParquetFilesReadBack(t *testing.T) {
	for _, bin := range []bool{false, true} {
		t.Run(fmt.Sprintf("AsDERBinary=%v", bin), func(t *testing.T) {
			rows := testRows()
			// Small files and row groups to cross every boundary.
			files := writeFiles(t, t.TempDir(), rows, bin, WriterOptions{TargetFileRows: 100, RowGroupRows: 30})
			if len(files) < 4 {
				t.Fatalf("wrote %d files, want at least 4 (two days, 100 rows per file)", len(files))
			}
			got, err := ReadRows(t.Context(), files)
			if err != nil {
				t.Fatalf("ReadRows: %v", err)
			}
			diffRows(t, got, rows)

			db, err := OpenDB(t.Context(), DBOptions{MemoryLimit: "512MB", Threads: 2, TempDir: t.TempDir()})
			if err != nil {
				t.Fatalf("OpenDB: %v", err)
			}
			defer db.Close()
			got = duckRows(t, db, files, bin)
			diffRows(t, got, rows)
			checkParquetSchema(t, db, files[0], bin)
		})
	}
}

// duckRows reads all 20 columns of files with DuckDB's read_parquet.
func duckRows(t *testing.T, db *sql.DB, files []FileInfo, asDERBinary bool) []record.Row {
	t.Helper()
	var out []record.Row
	for _, f := range files {
		list, err := ParquetListSQL([]FileInfo{f})
		if err != nil {
			t.Fatal(err)
		}
		q := `SELECT cert_index, update_type, epoch_us(seen), source_name, source_url, cert_link,
			serial_number, fingerprint, sha256, sha1, not_before, not_after, is_ca,
			signature_algorithm, subject_aggregated, issuer_aggregated,
			to_json(all_domains)::VARCHAR, as_der, to_json(chain)::VARCHAR
			FROM read_parquet(` + list + `, hive_partitioning = false)`
		rs, err := db.QueryContext(t.Context(), q)
		if err != nil {
			t.Fatalf("query: %v", err)
		}
		for rs.Next() {
			var r record.Row
			var seen int64
			var domains, chain string
			var der any
			if err := rs.Scan(&r.CertIndex, &r.UpdateType, &seen, &r.SourceName, &r.SourceURL, &r.CertLink,
				&r.SerialNumber, &r.Fingerprint, &r.SHA256, &r.SHA1, &r.NotBefore, &r.NotAfter, &r.IsCA,
				&r.SignatureAlgorithm, &r.SubjectAggregated, &r.IssuerAggregated, &domains, &der, &chain); err != nil {
				t.Fatalf("scan: %v", err)
			}
			r.Seen = time.UnixMicro(seen).UTC()
			r.SeenDate = f.SeenDate
			r.AllDomains = jsonStrings(t, domains)
			r.Chain = jsonStrings(t, chain)
			switch v := der.(type) {
			case []byte:
				if !asDERBinary {
					t.Fatalf("as_der read as BLOB from a string table")
				}
				r.AsDER = v
			case string:
				if asDERBinary {
					t.Fatalf("as_der read as VARCHAR from a binary table")
				}
				if r.AsDER, err = base64.StdEncoding.DecodeString(v); err != nil {
					t.Fatal(err)
				}
			default:
				t.Fatalf("as_der scanned as %T", der)
			}
			out = append(out, r)
		}
		if err := rs.Err(); err != nil {
			t.Fatal(err)
		}
		rs.Close()
	}
	return out
}

// checkParquetSchema asserts the physical layout of spec 2.1 with DuckDB's
// parquet_schema().
func checkParquetSchema(t *testing.T, db *sql.DB, f FileInfo, asDERBinary bool) {
	t.Helper()
	rs, err := db.QueryContext(t.Context(), `SELECT name, coalesce(type, ''), coalesce(repetition_type, ''),
		coalesce(converted_type, ''), coalesce(logical_type::VARCHAR, '')
		FROM parquet_schema(`+QuoteSQL(f.LocalPath)+`)`)
	if err != nil {
		t.Fatalf("parquet_schema: %v", err)
	}
	defer rs.Close()
	var got []string
	for rs.Next() {
		var name, typ, rep, conv, logical string
		if err := rs.Scan(&name, &typ, &rep, &conv, &logical); err != nil {
			t.Fatal(err)
		}
		got = append(got, strings.Join([]string{name, typ, rep, conv, logical}, " "))
	}
	der := "as_der BYTE_ARRAY REQUIRED UTF8 StringType()"
	if asDERBinary {
		der = "as_der BYTE_ARRAY REQUIRED  "
	}
	want := []string{
		"schema  REQUIRED  ",
		"cert_index INT64 REQUIRED  ",
		"update_type BYTE_ARRAY REQUIRED UTF8 StringType()",
		"seen INT64 REQUIRED TIMESTAMP_MICROS TimestampType(isAdjustedToUTC=1, unit=TimeUnit(MILLIS=<null>, MICROS=MicroSeconds(), NANOS=<null>))",
		"source_name BYTE_ARRAY REQUIRED UTF8 StringType()",
		"source_url BYTE_ARRAY REQUIRED UTF8 StringType()",
		"cert_link BYTE_ARRAY REQUIRED UTF8 StringType()",
		"serial_number BYTE_ARRAY REQUIRED UTF8 StringType()",
		"fingerprint BYTE_ARRAY REQUIRED UTF8 StringType()",
		"sha256 BYTE_ARRAY REQUIRED UTF8 StringType()",
		"sha1 BYTE_ARRAY REQUIRED UTF8 StringType()",
		"not_before INT64 REQUIRED  ",
		"not_after INT64 REQUIRED  ",
		"is_ca BOOLEAN REQUIRED  ",
		"signature_algorithm BYTE_ARRAY REQUIRED UTF8 StringType()",
		"subject_aggregated BYTE_ARRAY REQUIRED UTF8 StringType()",
		"issuer_aggregated BYTE_ARRAY REQUIRED UTF8 StringType()",
		"all_domains  REQUIRED LIST ListType()",
		"list  REPEATED  ",
		"element BYTE_ARRAY OPTIONAL UTF8 StringType()",
		der,
		"chain  REQUIRED LIST ListType()",
		"list  REPEATED  ",
		"element BYTE_ARRAY OPTIONAL UTF8 StringType()",
	}
	if !slices.Equal(got, want) {
		t.Errorf("parquet_schema(%s) =\n%s\nwant\n%s", f.Path, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func jsonStrings(t *testing.T, s string) []string {
	t.Helper()
	var out []string
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		t.Fatalf("list %q: %v", s, err)
	}
	if out == nil {
		out = []string{}
	}
	return out
}
