package main

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/certlake/certlake/internal/lake"
)

// TestNarrowFileIsItsDefinition: a pool file written by pqwrite holds
// exactly the rows the narrow pool's definition gives (file k: offsets
// [k*P/F, (k+1)*P/F) of every log, interleaved, without holePredicate's
// holes), in that order, with every column's value and the stats its
// Delta add reports.
func TestNarrowFileIsItsDefinition(t *testing.T) {
	ctx := t.Context()
	s := dataSpec{seed: 7, logs: 3, files: 4, perMain: 200_000, perStage: 2_000}
	db, err := lake.OpenDB(ctx, lake.DBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	dir := t.TempDir()
	var bases []string
	for l := range s.logs {
		bases = append(bases, strconv.FormatInt(s.base(l)+s.perStage/2, 10))
	}
	for _, k := range []int{0, 3} {
		nf, err := genNarrowFile(ctx, db, dir, s, k)
		if err != nil {
			t.Fatal(err)
		}
		lo, n := int64(k)*50_000, int64(50_000*s.logs)
		want := fmt.Sprintf(`SELECT row_number() OVER (ORDER BY i) - 1 AS r, ([%[4]s])[l + 1] + j AS cert_index,
			make_timestamptz(%[5]d::BIGINT + i // 640 * 150000) AS seen,
			'Bench log 0' || l AS source_name, 'https://ct.bench.example/log0' || l || '/' AS source_url
		FROM (SELECT i, (i %% %[1]d)::INTEGER AS l, %[2]d + i // %[1]d AS j FROM range(0, %[3]d) t(i)) WHERE %[6]s`,
			s.logs, lo, n, strings.Join(bases, ","), int64(1748736000000000)+int64(k)*2*3600*1_000_000, holePredicate(s.seed, "l", "j"))
		got := `SELECT file_row_number AS r, cert_index, seen, source_name, source_url FROM read_parquet(` + lake.QuoteSQL(filepath.Join(dir, nf.Rel)) + `, file_row_number = true)
			WHERE update_type = 'PrecertLogEntry' AND cert_link = '' AND as_der = '' AND not_before = 0 AND not_after = 0 AND NOT is_ca
			AND len(all_domains) = 0 AND len(chain) = 0`
		var extra, missing, rows, holes int64
		if err := db.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM (`+got+` EXCEPT ALL `+want+`)), (SELECT count(*) FROM (`+want+` EXCEPT ALL `+got+`)), (SELECT count(*) FROM (`+want+`))`).Scan(&extra, &missing, &rows); err != nil {
			t.Fatal(err)
		}
		holes = n - rows
		if extra != 0 || missing != 0 || nf.Rows != rows || holes == 0 {
			t.Errorf("file %d: %d rows not in the definition, %d missing; add says %d rows, definition %d (%d holes)", k, extra, missing, nf.Rows, rows, holes)
		}
		var idxMin, idxMax int64
		var urlMin, urlMax string
		if err := db.QueryRowContext(ctx, `SELECT min(cert_index), max(cert_index), min(source_url), max(source_url) FROM (`+want+`)`).Scan(&idxMin, &idxMax, &urlMin, &urlMax); err != nil {
			t.Fatal(err)
		}
		if nf.IdxMin != idxMin || nf.IdxMax != idxMax || nf.URLMin != urlMin || nf.URLMax != urlMax {
			t.Errorf("file %d: stats %+v, want cert_index %d-%d, source_url %s-%s", k, nf, idxMin, idxMax, urlMin, urlMax)
		}
	}
}
