package merge

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certlake/certlake/internal/delta"
	"github.com/certlake/certlake/internal/lake"
	"github.com/certlake/certlake/internal/record"
)

// formatRows are rows that exercise every column: two days, millisecond
// seen values, escaping-prone strings, empty and multi-element lists,
// is_ca both ways, large indices.
func formatRows() []record.Row {
	var out []record.Row
	for i := range uint64(300) {
		seen := day0.Add(time.Duration(i*7919) * time.Millisecond)
		url := logA
		if i%3 == 0 {
			url = logB
			seen = seen.Add(30 * time.Hour) // next day
		}
		r := row(url, 1<<40+i*13, seen)
		r.IsCA = i%5 == 0
		r.NotBefore = -int64(i) * 1000
		switch i % 4 {
		case 0:
			r.AllDomains = nil
			r.Chain = []string{}
		case 1:
			r.AllDomains = []string{"a.example", "b.example", "*.c.example"}
			r.Chain = []string{`{"a":"<&>"}`, `é ü "quoted"`}
		case 2:
			r.SubjectAggregated = "/CN=ünïcødé <tag> & 'quote' \"dq\""
			r.SourceName = "Log <&> \"name\""
		}
		r.AsDER = []byte(fmt.Sprintf("\x00\xff der %d \x01", i))
		out = append(out, r)
	}
	return out
}

// normalized sorts rows by key and makes them comparable with
// reflect.DeepEqual (UTC times, nil for empty lists).
func normalized(rs []record.Row) []record.Row {
	rs = slices.Clone(rs)
	for i := range rs {
		rs[i].Seen = rs[i].Seen.UTC()
		if len(rs[i].AllDomains) == 0 {
			rs[i].AllDomains = nil
		}
		if len(rs[i].Chain) == 0 {
			rs[i].Chain = nil
		}
	}
	slices.SortFunc(rs, func(a, b record.Row) int {
		return strings.Compare(fmt.Sprintf("%s %020d", a.SourceURL, a.CertIndex), fmt.Sprintf("%s %020d", b.SourceURL, b.CertIndex))
	})
	return rs
}

// TestMergeFastPathFileFormat: the files DuckDB writes for a batch hold the
// same values in all 20 columns as files the lake writer writes for the
// same rows, with the same Parquet types and the same add stats, byte for
// byte, whichever way staging and main store as_der.
func TestMergeFastPathFileFormat(t *testing.T) {
	tests := []struct {
		name                   string
		stagingBinary, mainBin bool
	}{
		{"text to text", false, false},
		{"binary to binary", true, true},
		{"text to binary", false, true},
		{"binary to text", true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			dir := t.TempDir()
			mainPath, stagingPath, refPath := filepath.Join(dir, "main"), filepath.Join(dir, "staging"), filepath.Join(dir, "ref")
			want := formatRows()
			st, err := lake.OpenOrCreate(ctx, stagingPath, lake.Options{Role: lake.RoleStaging, AsDERBinary: tc.stagingBinary})
			if err != nil {
				t.Fatal(err)
			}
			// Two commits, so the batch reads several staging files.
			if _, err := st.Append(ctx, want[:150], lake.CommitOptions{}); err != nil {
				t.Fatal(err)
			}
			if _, err := st.Append(ctx, want[150:], lake.CommitOptions{}); err != nil {
				t.Fatal(err)
			}
			if _, err := lake.OpenOrCreate(ctx, mainPath, lake.Options{Role: lake.RoleMain, AsDERBinary: tc.mainBin}); err != nil {
				t.Fatal(err)
			}
			ref, err := lake.OpenOrCreate(ctx, refPath, lake.Options{Role: lake.RoleMain, AsDERBinary: tc.mainBin})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ref.Append(ctx, want, lake.CommitOptions{}); err != nil {
				t.Fatal(err)
			}
			res, err := Merge(ctx, mainPath, stagingPath, Options{})
			if err != nil || res.Inserted != int64(len(want)) {
				t.Fatalf("Merge = %+v, %v; want %d inserted", res.Totals, err, len(want))
			}

			got, exp := normalized(tableRows(t, mainPath)), normalized(tableRows(t, refPath))
			if len(got) != len(exp) {
				t.Fatalf("main has %d rows, lake writer's table %d", len(got), len(exp))
			}
			for i := range got {
				if !reflect.DeepEqual(got[i], exp[i]) {
					t.Fatalf("row %d:\n fast path   %+v\n lake writer %+v", i, got[i], exp[i])
				}
			}

			// One file per day on both sides: the stats must be identical.
			gotAdds, expAdds := addsByDate(t, mainPath), addsByDate(t, refPath)
			if len(gotAdds) != 2 || len(expAdds) != 2 {
				t.Fatalf("files per day: fast path %d, lake writer %d; want 2 days", len(gotAdds), len(expAdds))
			}
			for date, e := range expAdds {
				g, ok := gotAdds[date]
				if !ok {
					t.Fatalf("fast path wrote no file for %s", date)
				}
				if g.Stats != e.Stats {
					t.Errorf("stats of %s:\n fast path   %s\n lake writer %s", date, g.Stats, e.Stats)
				}
				if !strings.HasPrefix(g.Path, "seen_date="+date+"/part-") || !strings.HasSuffix(g.Path, "-c000.zstd.parquet") {
					t.Errorf("fast path file %s, want seen_date=%s/part-NNNNN-<uuid>-c000.zstd.parquet", g.Path, date)
				}
				if fmt.Sprint(g.PartitionValues) != fmt.Sprint(e.PartitionValues) || !g.DataChange {
					t.Errorf("add %+v, want partition values %v and dataChange", g, e.PartitionValues)
				}
				gs, es := parquetTypes(t, filepath.Join(mainPath, g.Path)), parquetTypes(t, filepath.Join(refPath, e.Path))
				if !slices.Equal(gs, es) {
					t.Errorf("Parquet types:\n fast path   %v\n lake writer %v", gs, es)
				}
			}
			entries, _ := os.ReadDir(mainPath)
			for _, e := range entries {
				if strings.HasPrefix(e.Name(), scratchPrefix) {
					t.Errorf("scratch directory %s left in main", e.Name())
				}
			}
		})
	}
}

func addsByDate(t *testing.T, path string) map[string]delta.Add {
	t.Helper()
	tb, err := lake.Open(t.Context(), path, lake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := tb.Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]delta.Add{}
	for _, a := range snap.Files {
		out[a.PartitionValues["seen_date"]] = a
	}
	return out
}

// parquetTypes lists a file's leaf columns as "path physical annotation",
// from DuckDB's parquet_schema. The annotation is the logical type, or the
// one a legacy converted type stands for: DuckDB annotates strings and
// lists with the converted types UTF8 and LIST only (the Parquet format
// defines them as the STRING and LIST logical types) and INT64 with
// INT_64 (a plain signed INT64).
// Repetition is left out: DuckDB marks every column OPTIONAL.
func parquetTypes(t *testing.T, file string) []string {
	t.Helper()
	db, err := openDB(t.Context(), DBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rs, err := db.QueryContext(t.Context(), `SELECT name, coalesce(type, ''),
		CASE WHEN logical_type IS NOT NULL THEN logical_type
		     WHEN converted_type = 'UTF8' THEN 'StringType()'
		     WHEN converted_type = 'LIST' THEN 'ListType()'
		     WHEN converted_type = 'INT_64' OR converted_type IS NULL THEN ''
		     ELSE 'converted ' || converted_type END
		FROM parquet_schema(`+lake.QuoteSQL(file)+`) WHERE name NOT IN ('schema', 'duckdb_schema')`)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var out []string
	for rs.Next() {
		var name, typ, ann string
		if err := rs.Scan(&name, &typ, &ann); err != nil {
			t.Fatal(err)
		}
		out = append(out, name+" "+typ+" "+ann)
	}
	return out
}

// strayFiles lists what main's directory holds beyond its live files and
// log: data files no commit references and scratch directories.
func strayFiles(t *testing.T, mainPath string) []string {
	t.Helper()
	live := map[string]bool{}
	for _, a := range addsByPath(t, mainPath) {
		live[a] = true
	}
	var out []string
	err := filepath.WalkDir(mainPath, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(mainPath, p)
		rel = filepath.ToSlash(rel)
		switch {
		case d.IsDir() && rel == "_delta_log":
			return filepath.SkipDir
		case d.IsDir() && strings.HasPrefix(rel, scratchPrefix):
			out = append(out, rel)
			return filepath.SkipDir
		case !d.IsDir() && strings.HasSuffix(rel, ".parquet") && !live[rel]:
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func addsByPath(t *testing.T, path string) []string {
	t.Helper()
	tb, err := lake.Open(t.Context(), path, lake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := tb.Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range lake.Files(snap) {
		rel, _ := filepath.Rel(path, f.LocalPath)
		out = append(out, filepath.ToSlash(rel))
	}
	return out
}
