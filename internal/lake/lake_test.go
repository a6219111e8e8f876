package lake

import (
	"bufio"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certlake/certlake/internal/delta"
)

func TestRoundTrip(t *testing.T) {
	for _, bin := range []bool{false, true} {
		t.Run(fmt.Sprintf("AsDERBinary=%v", bin), func(t *testing.T) {
			ctx := t.Context()
			path := filepath.Join(t.TempDir(), "main")
			tbl, err := OpenOrCreate(ctx, path, Options{Role: RoleMain, AsDERBinary: bin})
			if err != nil {
				t.Fatalf("OpenOrCreate: %v", err)
			}
			if tbl.AsDERBinary() != bin {
				t.Fatalf("AsDERBinary() = %v, want %v", tbl.AsDERBinary(), bin)
			}
			rows := testRows()
			w := tbl.NewWriter(WriterOptions{TargetFileRows: 120, RowGroupRows: 50})
			for _, r := range rows {
				if err := w.Write(r); err != nil {
					t.Fatalf("Write: %v", err)
				}
			}
			res, err := w.Commit(ctx, CommitOptions{})
			if err != nil {
				t.Fatalf("Commit: %v", err)
			}
			if res.Version != 1 || res.Skipped || res.Rows != int64(len(rows)) || res.Files < 4 {
				t.Fatalf("Commit = %+v, want version 1, %d rows, >= 4 files", res, len(rows))
			}
			if err := delta.Validate(ctx, path); err != nil {
				t.Fatalf("delta.Validate: %v", err)
			}
			checkLog(t, path)

			// A fresh open sees the same table.
			tbl, err = Open(ctx, path, Options{Role: RoleMain})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			snap, err := tbl.Snapshot(ctx)
			if err != nil {
				t.Fatalf("Snapshot: %v", err)
			}
			files := tbl.Files(snap)
			if len(files) != res.Files {
				t.Fatalf("Files() lists %d files, want %d", len(files), res.Files)
			}
			var n int64
			for _, f := range files {
				if !f.HasKeyStats || f.NumRecords <= 0 {
					t.Errorf("file %s has no key stats: %+v", f.Path, f)
				}
				if !strings.HasPrefix(f.Path, "seen_date="+f.SeenDate+"/part-") || !strings.HasSuffix(f.Path, "-c000.zstd.parquet") {
					t.Errorf("file path %q does not follow seen_date=DATE/part-N-UUID-c000.zstd.parquet", f.Path)
				}
				n += f.NumRecords
			}
			if n != int64(len(rows)) {
				t.Errorf("stats count %d rows, want %d", n, len(rows))
			}

			got, err := ReadRows(ctx, files)
			if err != nil {
				t.Fatalf("ReadRows: %v", err)
			}
			diffRows(t, got, rows)

			db, err := OpenDB(ctx, DBOptions{MemoryLimit: "512MB", Threads: 2})
			if err != nil {
				t.Fatalf("OpenDB: %v", err)
			}
			defer db.Close()
			diffRows(t, duckRows(t, db, files, bin), rows)
			for _, f := range files {
				checkParquetSchema(t, db, f, bin)
				checkParquetMetadata(t, db, f, CompressionSpec)
			}
		})
	}
}

// TestCompressionByRole checks the codecs a Writer picks for each kind of
// table, and that every reader gets the rows back whatever the codecs.
func TestCompressionByRole(t *testing.T) {
	cases := []struct {
		role Role
		opt  Compression
		want Compression
		bin  bool // AsDERBinary
	}{
		{RoleMain, CompressionDefault, CompressionSpec, false},
		{RoleStaging, CompressionDefault, CompressionStaging, false},
		{RoleStaging, CompressionDefault, CompressionStaging, true},
		{RoleStaging, CompressionSpec, CompressionSpec, true},
		{RoleMain, CompressionStaging, CompressionStaging, false},
	}
	db, err := OpenDB(t.Context(), DBOptions{MemoryLimit: "512MB", Threads: 2})
	if err != nil {
		t.Fatalf("OpenDB: %v", err)
	}
	defer db.Close()
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s/%d/binary=%v", c.role, c.opt, c.bin), func(t *testing.T) {
			ctx := t.Context()
			tbl, err := OpenOrCreate(ctx, filepath.Join(t.TempDir(), "t"), Options{Role: c.role, AsDERBinary: c.bin})
			if err != nil {
				t.Fatalf("OpenOrCreate: %v", err)
			}
			rows := testRows()
			w := tbl.NewWriter(WriterOptions{Compression: c.opt})
			for _, r := range rows {
				if err := w.Write(r); err != nil {
					t.Fatalf("Write: %v", err)
				}
			}
			if _, err := w.Commit(ctx, CommitOptions{}); err != nil {
				t.Fatalf("Commit: %v", err)
			}
			snap, err := tbl.Snapshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			files := tbl.Files(snap)
			got, err := ReadRows(ctx, files)
			if err != nil {
				t.Fatalf("ReadRows: %v", err)
			}
			diffRows(t, got, rows)
			diffRows(t, duckRows(t, db, files, c.bin), rows)
			for _, f := range files {
				checkParquetMetadata(t, db, f, c.want)
			}
		})
	}
}

// checkLog checks the commit certlake wrote beyond delta.Validate: the add
// actions' stats hold the columns certlake prunes on, in Delta's formats.
func checkLog(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(filepath.Join(path, "_delta_log", "00000000000000000001.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	adds := 0
	for sc.Scan() {
		var a delta.Action
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			t.Fatalf("commit line %q: %v", sc.Text(), err)
		}
		if a.Add == nil {
			continue
		}
		adds++
		if !a.Add.DataChange || a.Add.Size <= 0 || a.Add.ModificationTime <= 0 {
			t.Errorf("add %s: dataChange %v size %d modificationTime %d", a.Add.Path, a.Add.DataChange, a.Add.Size, a.Add.ModificationTime)
		}
		var st struct {
			NumRecords int64                      `json:"numRecords"`
			MinValues  map[string]json.RawMessage `json:"minValues"`
			MaxValues  map[string]json.RawMessage `json:"maxValues"`
			NullCount  map[string]int64           `json:"nullCount"`
		}
		if err := json.Unmarshal([]byte(a.Add.Stats), &st); err != nil {
			t.Fatalf("stats %q: %v", a.Add.Stats, err)
		}
		for _, c := range []string{"cert_index", "source_url", "seen", "not_before", "not_after", "sha256"} {
			if st.MinValues[c] == nil || st.MaxValues[c] == nil {
				t.Errorf("add %s: stats lack min/max of %s: %s", a.Add.Path, c, a.Add.Stats)
			}
		}
		for _, c := range []string{"all_domains", "chain", "as_der"} {
			if st.MinValues[c] != nil {
				t.Errorf("add %s: stats have min of %s", a.Add.Path, c)
			}
		}
		var seen string
		if err := json.Unmarshal(st.MinValues["seen"], &seen); err != nil {
			t.Fatal(err)
		}
		if _, err := time.Parse("2006-01-02T15:04:05.000Z", seen); err != nil {
			t.Errorf("seen stat %q is not ISO-8601 with ms and Z", seen)
		}
		if st.NullCount["cert_index"] != 0 || len(st.NullCount) == 0 {
			t.Errorf("nullCount = %v", st.NullCount)
		}
	}
	if adds == 0 {
		t.Errorf("commit 1 has no add actions")
	}
}

// checkParquetMetadata asserts the codecs of c on every column chunk (zstd,
// or none on plainColumns for CompressionStaging) and dictionary encoding
// exactly on the columns of spec 2.1 [HEAD] (plus seen).
func checkParquetMetadata(t *testing.T, db *sql.DB, f FileInfo, c Compression) {
	t.Helper()
	rs, err := db.QueryContext(t.Context(), `SELECT path_in_schema, compression, encodings,
		stats_min_value IS NOT NULL AND stats_max_value IS NOT NULL
		FROM parquet_metadata(`+QuoteSQL(f.LocalPath)+`)`)
	if err != nil {
		t.Fatalf("parquet_metadata: %v", err)
	}
	defer rs.Close()
	dict := map[string]bool{}
	for _, c := range dictionaryColumns {
		if columnKinds[c] == kindStringList {
			c += ".list.element"
		}
		dict[c] = true
	}
	n := 0
	for rs.Next() {
		var path, codec, enc string
		var stats bool
		if err := rs.Scan(&path, &codec, &enc, &stats); err != nil {
			t.Fatal(err)
		}
		n++
		path = strings.ReplaceAll(path, ", ", ".")
		want := "ZSTD"
		switch {
		case c != CompressionStaging:
		case slices.Contains(plainColumns, path):
			want = "UNCOMPRESSED"
		case path == "as_der":
			want = "SNAPPY"
		}
		if codec != want {
			t.Errorf("%s: column %s compression %s, want %s", f.Path, path, codec, want)
		}
		if (path == "cert_index" || path == "source_url" || path == "seen") && !stats {
			t.Errorf("%s: column %s has no min/max statistics", f.Path, path)
		}
		if got := strings.Contains(enc, "DICTIONARY"); got != dict[path] {
			t.Errorf("%s: column %s encodings %s, dictionary %v, want %v", f.Path, path, enc, got, dict[path])
		}
	}
	if n == 0 {
		t.Errorf("%s: no column chunks", f.Path)
	}
}

func TestQuoteSQL(t *testing.T) {
	for in, want := range map[string]string{"": "''", "2GB": "'2GB'", "/tmp/o'k": "'/tmp/o''k'", "''": "''''''"} {
		if got := QuoteSQL(in); got != want {
			t.Errorf("QuoteSQL(%q) = %s, want %s", in, got, want)
		}
	}
}
