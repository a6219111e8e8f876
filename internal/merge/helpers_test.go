package merge

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/certlake/certlake/internal/lake"
	"github.com/certlake/certlake/internal/record"
)

const (
	logA = "https://ct.example.com/logs/a/"
	logB = "https://ct.example.com/logs/b/"
)

var day0 = time.Date(2024, 11, 25, 10, 0, 0, 0, time.UTC)

// row returns a small, valid certstream row for key (url, idx), seen at
// seen.
func row(url string, idx uint64, seen time.Time) record.Row {
	h := fmt.Sprintf("%02X:%06X", len(url)%256, idx)
	return record.Row{
		CertIndex:          idx,
		UpdateType:         "X509LogEntry",
		Seen:               seen.UTC().Truncate(time.Millisecond),
		SourceName:         "Test log " + url,
		SourceURL:          url,
		CertLink:           fmt.Sprintf("%sct/v1/get-entries?start=%d&end=%d", url, idx, idx),
		SerialNumber:       fmt.Sprintf("%X", idx+1),
		Fingerprint:        h,
		SHA256:             "SHA256:" + h + ":" + seen.UTC().Format(time.RFC3339Nano),
		SHA1:               h,
		NotBefore:          1700000000,
		NotAfter:           1707776000,
		SignatureAlgorithm: "sha256, rsa",
		SubjectAggregated:  fmt.Sprintf("/CN=h%d.example.com", idx),
		IssuerAggregated:   "/C=US/CN=Test CA",
		AllDomains:         []string{fmt.Sprintf("h%d.example.com", idx)},
		AsDER:              []byte{0x30, 0x82, byte(idx), byte(idx >> 8)},
		Chain:              []string{`{"subject":{"aggregated":"/CN=Test CA"}}`},
	}
}

// rows returns rows of log url for the given indices, all seen at seen.
func rows(url string, seen time.Time, idx ...uint64) []record.Row {
	out := make([]record.Row, len(idx))
	for i, x := range idx {
		out[i] = row(url, x, seen)
	}
	return out
}

// span returns lo, lo+1, ..., hi.
func span(lo, hi uint64) []uint64 {
	var out []uint64
	for i := lo; i <= hi; i++ {
		out = append(out, i)
	}
	return out
}

// appendTable opens or creates the table at path with role and appends
// each group of rows in its own commit (so, its own files).
func appendTable(t *testing.T, path string, role lake.Role, groups ...[]record.Row) *lake.Table {
	t.Helper()
	ctx := t.Context()
	tb, err := lake.OpenOrCreate(ctx, path, lake.Options{Role: role})
	if err != nil {
		t.Fatalf("OpenOrCreate(%s) = %v", path, err)
	}
	for _, g := range groups {
		if _, err := tb.Append(ctx, g, lake.CommitOptions{}); err != nil {
			t.Fatalf("Append(%s, %d rows) = %v", path, len(g), err)
		}
	}
	return tb
}

type key struct {
	URL string
	Idx uint64
}

// tableRows reads every live row of the table at path, sorted by key.
func tableRows(t *testing.T, path string) []record.Row {
	t.Helper()
	ctx := t.Context()
	tb, err := lake.Open(ctx, path, lake.Options{})
	if err != nil {
		t.Fatalf("Open(%s) = %v", path, err)
	}
	snap, err := tb.Snapshot(ctx)
	if err != nil {
		t.Fatalf("Snapshot(%s) = %v", path, err)
	}
	rs, err := lake.ReadRows(ctx, lake.Files(snap))
	if err != nil {
		t.Fatalf("ReadRows(%s) = %v", path, err)
	}
	slices.SortFunc(rs, func(a, b record.Row) int {
		if a.SourceURL != b.SourceURL {
			if a.SourceURL < b.SourceURL {
				return -1
			}
			return 1
		}
		return int(int64(a.CertIndex) - int64(b.CertIndex))
	})
	return rs
}

// tableKeys lists the keys of the table at path, duplicates kept, sorted.
func tableKeys(t *testing.T, path string) []key {
	t.Helper()
	var out []key
	for _, r := range tableRows(t, path) {
		out = append(out, key{r.SourceURL, r.CertIndex})
	}
	return out
}

func keysOf(url string, idx ...uint64) []key {
	out := make([]key, len(idx))
	for i, x := range idx {
		out[i] = key{url, x}
	}
	return out
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// paths returns fresh main and staging paths in a temp directory.
func paths(t *testing.T) (mainPath, stagingPath string) {
	dir := t.TempDir()
	return filepath.Join(dir, "main"), filepath.Join(dir, "staging")
}

// openPair opens main (created if missing) and staging.
func openPair(t *testing.T, mainPath, stagingPath string) (*lake.Table, *lake.Table) {
	t.Helper()
	ctx := t.Context()
	st, err := OpenStaging(ctx, mainPath, stagingPath, false, lake.Options{})
	if err != nil || st == nil {
		t.Fatalf("OpenStaging(%s) = %v, %v", stagingPath, st, err)
	}
	mt, err := OpenMain(ctx, mainPath, lake.Options{})
	if err != nil {
		t.Fatalf("OpenMain(%s) = %v", mainPath, err)
	}
	return mt, st
}

var _ = context.Background
