package keyindex

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/RoaringBitmap/roaring/v2/roaring64"

	"github.com/certlake/certlake/internal/lake"
)

// duckKeys is DuckDB's answer for a file's keys: the reference ReadKeys
// must match.
func duckKeys(t *testing.T, db *sql.DB, path string) (Keys, int64) {
	t.Helper()
	rs, err := db.QueryContext(t.Context(), `SELECT source_url, cert_index FROM read_parquet('`+path+`')
		WHERE source_url IS NOT NULL AND cert_index >= 0`)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	keys := Keys{}
	var rows int64
	for rs.Next() {
		var u string
		var i int64
		if err := rs.Scan(&u, &i); err != nil {
			t.Fatal(err)
		}
		if keys[u] == nil {
			keys[u] = roaring64.New()
		}
		keys[u].Add(uint64(i))
		rows++
	}
	return keys, rows
}

// TestReadKeysMatchesDuckDB: ReadKeys returns exactly the keys DuckDB
// reads, for files as a live ingester writes them (logs interleaved, each
// in order), sorted ones, unsorted ones with duplicates, nulls and
// negatives, several row groups and pages, dictionary and plain strings,
// and indices past 2^32.
func TestReadKeysMatchesDuckDB(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	db, err := lake.OpenDB(ctx, lake.DBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cases := map[string]string{
		"interleaved": `SELECT 'https://log' || (i % 7) || '/' AS source_url, (1000 * (i % 7) + i // 7)::BIGINT AS cert_index
			FROM range(0, 300000) t(i) WHERE hash(i) % 50 <> 0`,
		"sorted-past-2^32": `SELECT 'https://log' || (i // 100000) || '/' AS source_url, (4294967000 + i)::BIGINT AS cert_index
			FROM range(0, 250000) t(i) WHERE i % 333 <> 0 ORDER BY 1, 2`,
		"unsorted-nulls": `SELECT CASE WHEN i % 11 = 0 THEN NULL ELSE 'https://log' || (hash(i) % 3) || '/' END AS source_url,
			CASE WHEN i % 13 = 0 THEN NULL WHEN i % 17 = 0 THEN -5 ELSE (hash(i, 1) % 100000)::BIGINT END AS cert_index
			FROM range(0, 200000) t(i)`,
		"int32-index":  `SELECT 'https://log/' AS source_url, (i * 3)::INTEGER AS cert_index FROM range(0, 5000) t(i)`,
		"uint64-index": `SELECT 'https://log' || (i % 3) || '/' AS source_url, (i * 7)::UBIGINT AS cert_index FROM range(0, 50000) t(i)`,
		// Keys scattered over 10^12 values, more runs than a log holds
		// before they go into its bitmap: the sparse path, in steps.
		"scattered": `SELECT 'https://log/' AS source_url, (hash(i) % 1000000000000)::BIGINT AS cert_index
			FROM range(0, 100000) t(i)`,
		// Unordered keys in a narrow span, more runs than a log holds
		// before they go into its bitmap: the dense path, in steps.
		"dense-unsorted": `SELECT 'https://log/' AS source_url, (hash(i) % 100000)::BIGINT AS cert_index FROM range(0, 150000) t(i)`,
		// Few distinct indices: the writer keeps cert_index in a dictionary.
		"dictionary-index": `SELECT 'https://log' || (i % 5) || '/' AS source_url, (i % 1000)::BIGINT AS cert_index FROM range(0, 100000) t(i)`,
		"empty":            `SELECT 'x' AS source_url, 1::BIGINT AS cert_index WHERE false`,
	}
	for name, q := range cases {
		for i, opts := range []string{
			"ROW_GROUP_SIZE 100000, COMPRESSION zstd",
			"ROW_GROUP_SIZE 30000, COMPRESSION snappy, DICTIONARY_SIZE_LIMIT 1",
			// Data pages v2, cert_index delta-encoded.
			"ROW_GROUP_SIZE 70000, COMPRESSION gzip, PARQUET_VERSION V2",
			"ROW_GROUP_SIZE 100000, COMPRESSION uncompressed",
		} {
			t.Run(name+"/"+strings.TrimSuffix(strings.Fields(opts)[3], ","), func(t *testing.T) {
				path := filepath.Join(dir, fmt.Sprintf("%s-%d.parquet", name, i))
				if _, err := db.ExecContext(ctx, `COPY (`+q+`) TO '`+path+`' (FORMAT parquet, `+opts+`)`); err != nil {
					t.Fatal(err)
				}
				got, rows, err := ReadFileKeys(ctx, path)
				if err != nil {
					t.Fatal(err)
				}
				want, wantRows := duckKeys(t, db, path)
				if rows != wantRows {
					t.Errorf("ReadFileKeys rows = %d, want %d", rows, wantRows)
				}
				if len(got) != len(want) {
					t.Errorf("ReadFileKeys logs = %d, want %d", len(got), len(want))
				}
				for u, bm := range want {
					if g := got[u]; g == nil || !g.Equals(bm) {
						t.Errorf("keys of %s differ: got %d, want %d", u, g.GetCardinality(), bm.GetCardinality())
					}
				}
			})
		}
	}
	if _, _, err := ReadFileKeys(ctx, filepath.Join(dir, "missing.parquet")); err == nil {
		t.Error("ReadFileKeys(missing file) = nil error")
	}
	// A file damaged inside its pages is an error, not a panic.
	data, err := os.ReadFile(filepath.Join(dir, "interleaved-0.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	for i := len(data) / 4; i < len(data)/4+256; i++ {
		data[i] ^= 0x5a
	}
	damaged := filepath.Join(dir, "damaged.parquet")
	os.WriteFile(damaged, data, 0o644)
	if _, _, err := ReadFileKeys(ctx, damaged); err == nil {
		t.Error("ReadFileKeys(damaged pages) = nil error")
	}
	bad := filepath.Join(dir, "bad.parquet")
	os.WriteFile(bad, []byte("PAR1 not really PAR1"), 0o644)
	if _, _, err := ReadFileKeys(ctx, bad); err == nil {
		t.Error("ReadFileKeys(corrupt file) = nil error")
	}
}

// TestUpdateReadsEachFileOnce: Update reads only files without an entry,
// re-reads one whose size changed, and leaves an unreadable one out (with
// Unreadable) or fails (without).
func TestUpdateReadsEachFileOnce(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	store := TableStore(root)
	files := []DataFile{{Path: "a", Size: 1}, {Path: "b", Size: 2}, {Path: "c", Size: 3}}
	reads := map[string]int{}
	opts := UpdateOptions{Read: func(_ context.Context, f DataFile) (Keys, int64, error) {
		reads[f.Path]++
		if f.Path == "bad" {
			return nil, 0, fmt.Errorf("unreadable")
		}
		return Keys{logA: set([2]uint64{uint64(f.Size), uint64(f.Size) + 9})}, 10, nil
	}, Workers: 1}
	ix, _ := Load(ctx, store, "t")
	res, err := ix.Update(ctx, files, opts)
	if err != nil || res.Indexed != 3 || res.Rows != 30 {
		t.Fatalf("first Update = %+v, %v; want 3 indexed, 30 rows", res, err)
	}
	ix, _ = Load(ctx, store, "t")
	files[1].Size = 20 // rewritten in place: a stale entry
	files = append(files, DataFile{Path: "bad", Size: 4})
	var unreadable []string
	opts.Unreadable = func(f DataFile, err error) { unreadable = append(unreadable, f.Path) }
	res, err = ix.Update(ctx, files, opts)
	if err != nil || res.Known != 2 || res.Indexed != 1 || res.Unreadable != 1 {
		t.Fatalf("second Update = %+v, %v; want 2 known, 1 indexed, 1 unreadable", res, err)
	}
	if reads["a"] != 1 || reads["b"] != 2 || reads["c"] != 1 || len(unreadable) != 1 {
		t.Errorf("reads = %v, unreadable %v; want a and c once, b twice, bad reported", reads, unreadable)
	}
	parts, missing := ix.Parts(files, logA)
	bm := roaring64.FastOr(parts...)
	if want := set([2]uint64{1, 12}, [2]uint64{20, 29}); !bm.Equals(want) || len(missing) != 1 || missing[0].Path != "bad" {
		t.Errorf("Parts = %v (union), missing %v; want %v, [bad]", bm, missing, want)
	}
	opts.Unreadable = nil
	if _, err := ix.Update(ctx, files, opts); err == nil || !strings.Contains(err.Error(), "bad") {
		t.Errorf("Update without Unreadable = %v, want an error naming the file", err)
	}
}
