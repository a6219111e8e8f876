package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certlake/certlake/internal/lake"
	"github.com/certlake/certlake/internal/merge"
	"github.com/certlake/certlake/internal/record"
)

// describeJSON runs table describe --json and decodes its output.
func describeJSON(t *testing.T, args ...string) (tableView, result) {
	t.Helper()
	r := runStarter(t, append([]string{"table", "describe", "--json"}, args...)...)
	var v tableView
	if r.code == 0 {
		if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
			t.Fatalf("table describe --json output %q: %v", r.stdout, err)
		}
	}
	return v, r
}

func TestTableDescribeCertstream(t *testing.T) {
	dir := workdir(t, "")
	const a, b = "https://ct.example.com/logs/a", "https://ct.example.com/logs/b"
	main := filepath.Join(dir, "main")
	appendRows(t, main, lake.RoleMain, a, [2]uint64{0, 39}, [2]uint64{50, 99})
	appendRows(t, main, lake.RoleMain, b, [2]uint64{1000, 1049})
	staging := filepath.Join(dir, "staging")
	appendRows(t, staging, lake.RoleStaging, a, [2]uint64{40, 44})

	v, r := describeJSON(t, main)
	if r.code != 0 {
		t.Fatalf("table describe %s = %d, %q", main, r.code, r.stderr)
	}
	if v.Version != 2 || !v.Certstream || v.Role != "main" || v.AsDERType != "string" {
		t.Errorf("describe(main) version, certstream, role, as_der = %d, %v, %q, %q; want 2, true, main, string",
			v.Version, v.Certstream, v.Role, v.AsDERType)
	}
	if v.Protocol.MinReaderVersion != 1 || v.Protocol.MinWriterVersion != 2 {
		t.Errorf("describe(main) protocol = %+v, want reader 1 writer 2", v.Protocol)
	}
	if len(v.PartitionColumns) != 1 || v.PartitionColumns[0] != "seen_date" {
		t.Errorf("describe(main) partition_columns = %v, want [seen_date]", v.PartitionColumns)
	}
	if len(v.Schema) != 20 {
		t.Fatalf("describe(main) schema has %d fields, want 20", len(v.Schema))
	}
	for i, want := range []fieldView{{"cert_index", "long", false}, {"seen", "timestamp", false}, {"all_domains", "array<string>", false}} {
		idx := map[string]int{"cert_index": 0, "seen": 2, "all_domains": 17}[want.Name]
		if got := v.Schema[idx]; got.Name != want.Name || got.Type != want.Type {
			t.Errorf("describe(main) schema[%d] (case %d) = %+v, want %+v", idx, i, got, want)
		}
		if got := v.Schema[idx].Name; got != record.Columns[idx] {
			t.Errorf("schema[%d] = %q, want %q", idx, got, record.Columns[idx])
		}
	}
	if v.NumRows == nil || *v.NumRows != 140 || v.NumRowsSource != "stats" {
		t.Errorf("describe(main) num_rows = %v from %q, want 140 from stats", v.NumRows, v.NumRowsSource)
	}
	if v.NumFiles != len(v.Files) || v.NumFiles == 0 {
		t.Errorf("describe(main) num_files = %d with %d files listed", v.NumFiles, len(v.Files))
	}
	for _, f := range v.Files {
		if f.PartitionValues["seen_date"] != "2025-11-25" || f.Size <= 0 || !strings.HasPrefix(f.Path, "seen_date=2025-11-25/") {
			t.Errorf("file %+v: want a seen_date=2025-11-25 partition path and size", f)
		}
	}
	wantLogs := []logView{
		{SourceURL: a, MinCertIndex: 0, MaxCertIndex: 99, Count: 90, Distinct: 90, Missing: 10},
		{SourceURL: b, MinCertIndex: 1000, MaxCertIndex: 1049, Count: 50, Distinct: 50, Missing: 0},
	}
	if len(v.Logs) != len(wantLogs) {
		t.Fatalf("describe(main) logs = %+v, want %+v", v.Logs, wantLogs)
	}
	for i := range wantLogs {
		if v.Logs[i] != wantLogs[i] {
			t.Errorf("describe(main) logs[%d] = %+v, want %+v", i, v.Logs[i], wantLogs[i])
		}
	}

	// Time travel, counting, staging.
	v0, r := describeJSON(t, main, "--version", "1", "--count")
	if r.code != 0 || v0.Version != 1 || v0.NumRows == nil || *v0.NumRows != 90 || v0.NumRowsSource != "count" {
		t.Errorf("describe(main --version 1 --count) = %d %q: version %d, num_rows %v from %q; want version 1, 90 from count",
			r.code, r.stderr, v0.Version, v0.NumRows, v0.NumRowsSource)
	}
	vs, r := describeJSON(t, staging, "--no-logs")
	if r.code != 0 || vs.Role != "staging" || vs.Logs != nil || vs.Configuration[lake.ConfigRole] != "staging" {
		t.Errorf("describe(staging --no-logs) = %d %q: role %q, logs %v, configuration %v; want staging, no logs, the staging marker",
			r.code, r.stderr, vs.Role, vs.Logs, vs.Configuration)
	}

	// The text form names the same facts.
	r = runStarter(t, "table", "describe", main)
	for _, want := range []string{"version     2", "140 (from stats)", "yes: main table, as_der stored as string", a, "seen_date"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("table describe %s text output lacks %q:\n%s", main, want, r.stdout)
		}
	}

	// Main's key index, once a merge (here IndexMain alone) built it.
	if v.KeyIndex != nil {
		t.Errorf("describe(main) key_index = %+v before any merge, want none", v.KeyIndex)
	}
	mt, err := lake.Open(t.Context(), main, lake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := merge.IndexMain(t.Context(), mt, merge.IndexOptions{}); err != nil {
		t.Fatal(err)
	}
	appendRows(t, main, lake.RoleMain, b, [2]uint64{1050, 1059}) // a file the index does not hold yet
	vi, _ := describeJSON(t, main, "--no-logs")
	if k := vi.KeyIndex; k == nil || k.Files != v.NumFiles+1 || k.Indexed != v.NumFiles {
		t.Errorf("describe(main) key_index = %+v, want %d of %d files indexed", k, v.NumFiles, v.NumFiles+1)
	}
	r = runStarter(t, "table", "describe", "--no-logs", main)
	if want := fmt.Sprintf("key index   %d of %d files with rows", v.NumFiles, v.NumFiles+1); !strings.Contains(r.stdout, want) {
		t.Errorf("table describe text lacks %q:\n%s", want, r.stdout)
	}
}

// TestTableDescribeConformance describes every table of the Delta
// conformance fixtures and checks what the manifest expects: version, file
// count, row count where the stats give it, and refusal of what certlake
// cannot read.
func TestTableDescribeConformance(t *testing.T) {
	root, err := filepath.Abs("../internal/delta/testdata/delta")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "MANIFEST.json"))
	if err != nil {
		t.Fatal(err)
	}
	var manifest struct {
		Tables map[string]struct {
			LatestVersion    int64           `json:"latest_version"`
			ReaderV1         string          `json:"reader_v1"`
			PartitionColumns []string        `json:"partition_columns"`
			NumActiveFiles   int             `json:"num_active_files"`
			RowCount         json.RawMessage `json:"row_count"`
			FooterRows       *int64          `json:"row_count_parquet_footers"`
			ActiveFiles      []struct {
				Path string `json:"path"`
				Size int64  `json:"size"`
			} `json:"active_files"`
		} `json:"tables"`
	}
	if err := json.Unmarshal(data, &manifest); err != nil {
		t.Fatal(err)
	}
	workdir(t, "")
	for name, want := range manifest.Tables {
		t.Run(name, func(t *testing.T) {
			v, r := describeJSON(t, filepath.Join(root, name))
			if want.ReaderV1 == "refuse" {
				if r.code != 1 || !strings.HasPrefix(r.stderr, "Error: ") || strings.Count(r.stderr, "\n") != 1 {
					t.Errorf("describe(%s) = %d, %q; want exit 1 with one error line", name, r.code, r.stderr)
				}
				return
			}
			if r.code != 0 {
				t.Fatalf("describe(%s) = %d, %q; want success", name, r.code, r.stderr)
			}
			if v.Version != want.LatestVersion || v.NumFiles != want.NumActiveFiles {
				t.Errorf("describe(%s) version, num_files = %d, %d; want %d, %d", name, v.Version, v.NumFiles, want.LatestVersion, want.NumActiveFiles)
			}
			if strings.Join(v.PartitionColumns, ",") != strings.Join(want.PartitionColumns, ",") {
				t.Errorf("describe(%s) partition_columns = %v, want %v", name, v.PartitionColumns, want.PartitionColumns)
			}
			for i, f := range want.ActiveFiles {
				if i < len(v.Files) && (v.Files[i].Path != f.Path || v.Files[i].Size != f.Size) {
					t.Errorf("describe(%s) files[%d] = %s (%d bytes), want %s (%d bytes)", name, i, v.Files[i].Path, v.Files[i].Size, f.Path, f.Size)
				}
			}
			// Every table has a row count: from numRecords, or from the
			// Parquet footers of the files written without it. Only a
			// log-only table (data files absent) without stats has none,
			// and says why.
			var rows int64
			known := json.Unmarshal(want.RowCount, &rows) == nil
			byFooters := !known && want.FooterRows != nil // stats lack numRecords
			if byFooters {
				rows, known = *want.FooterRows, true
			}
			if !known {
				if v.NumRows != nil || !strings.Contains(v.NumRowsError, "no such file") {
					t.Errorf("describe(%s) num_rows = %v, error %q; want null and the missing file named", name, v.NumRows, v.NumRowsError)
				}
				return
			}
			if v.NumRows == nil {
				t.Fatalf("describe(%s) num_rows = null (%s), want %d", name, v.NumRowsError, rows)
			}
			if *v.NumRows != rows {
				t.Errorf("describe(%s) num_rows = %d from %s, want %d", name, *v.NumRows, v.NumRowsSource, rows)
			}
			if byFooters && !strings.Contains(v.NumRowsSource, "footers") {
				t.Errorf("describe(%s) num_rows_source = %q, want footers", name, v.NumRowsSource)
			}
		})
	}
}

func TestTableDescribeErrors(t *testing.T) {
	simple, err := filepath.Abs("../internal/delta/testdata/delta/simple_table")
	if err != nil {
		t.Fatal(err)
	}
	dir := workdir(t, "")
	if err := os.MkdirAll(filepath.Join(dir, "empty", "_delta_log"), 0o755); err != nil {
		t.Fatal(err)
	}
	corrupt := filepath.Join(dir, "corrupt", "_delta_log")
	if err := os.MkdirAll(corrupt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(corrupt, "00000000000000000000.json"), []byte("{not json\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"Missing", []string{filepath.Join(dir, "nope")}, "is not a Delta table"},
		{"EmptyLog", []string{filepath.Join(dir, "empty")}, "is not a Delta table"},
		{"CorruptCommit", []string{filepath.Join(dir, "corrupt")}, "corrupt"},
		{"VersionTooNew", []string{simple, "--version", "99"}, "version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runStarter(t, append([]string{"table", "describe"}, tt.args...)...)
			if r.code != 1 || !strings.HasPrefix(r.stderr, "Error: ") || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("table describe %v = %d, %q; want exit 1 and one line containing %q", tt.args, r.code, r.stderr, tt.want)
			}
		})
	}
	if r := runStarter(t, "table", "describe"); r.code != 2 {
		t.Errorf("table describe without PATH = %d, want 2", r.code)
	}
}

// vacuumJSON runs table vacuum --json and decodes its output.
func vacuumJSON(t *testing.T, args ...string) (vacuumView, result) {
	t.Helper()
	r := runStarter(t, append([]string{"table", "vacuum", "--json"}, args...)...)
	var v vacuumView
	if r.code == 0 {
		if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
			t.Fatalf("table vacuum --json output %q: %v", r.stdout, err)
		}
	}
	return v, r
}

// orphanFile leaves in table a data file no commit of it names, as a worker
// killed between writing and committing does, and returns its relative
// path. The file is written by a side table and moved over.
func orphanFile(t *testing.T, table, url string, start, end uint64) string {
	t.Helper()
	side := filepath.Join(t.TempDir(), "side")
	appendRows(t, side, lake.RoleMain, url, [2]uint64{start, end})
	var rel string
	err := filepath.WalkDir(side, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".parquet") || strings.Contains(p, "_delta_log") {
			return err
		}
		rel, _ = filepath.Rel(side, p)
		to := filepath.Join(table, rel)
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			return err
		}
		return os.Rename(p, to)
	})
	if err != nil || rel == "" {
		t.Fatalf("orphan file: %q, %v", rel, err)
	}
	return filepath.ToSlash(rel)
}

// ageTree sets the modification time of everything under dir to at.
func ageTree(t *testing.T, dir string, at time.Time) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(p, at, at)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestTableVacuum(t *testing.T) {
	dir := workdir(t, "lake:\n  main_path: main\n")
	const a = "https://ct.example.com/logs/a"
	main := filepath.Join(dir, "main")
	appendRows(t, main, lake.RoleMain, a, [2]uint64{0, 39}, [2]uint64{50, 99})
	appendRows(t, main, lake.RoleMain, a, [2]uint64{200, 239})
	orphan := orphanFile(t, main, a, 40, 49)
	scratch := filepath.Join(main, "_certlake_merge_tmp-42", "c0")
	if err := os.MkdirAll(scratch, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(scratch, "part-0.parquet"), []byte("half a COPY"), 0o644); err != nil {
		t.Fatal(err)
	}
	ageTree(t, main, time.Now().Add(-8*24*time.Hour))
	young := orphanFile(t, main, a, 300, 309)
	before, r := describeJSON(t, main, "--count")
	if r.code != 0 {
		t.Fatalf("table describe %s = %d, %q", main, r.code, r.stderr)
	}

	// Dry run, text: one line per file, then the summary; nothing deleted.
	r = runStarter(t, "table", "vacuum", "--path", main, "--dry-run")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 4 {
		t.Fatalf("table vacuum --dry-run = %d, %q, stderr %q; want 2 file lines, the summary and a note", r.code, r.stdout, r.stderr)
	}
	wantFiles := []string{"_certlake_merge_tmp-42/c0/part-0.parquet", orphan}
	for i, want := range wantFiles {
		if f := strings.Fields(lines[i]); len(f) != 2 || f[0] != want {
			t.Errorf("table vacuum --dry-run line %d = %q, want %s and its size", i, lines[i], want)
		}
	}
	if want := "vacuum " + main + ": 2 files, 0.0 MiB would be deleted (dry run, retention 168h0m0s)"; lines[2] != want {
		t.Errorf("table vacuum --dry-run summary = %q, want %q", lines[2], want)
	}
	if want := "would remove 2 emptied directories; kept 1 uncommitted files younger than 168h0m0s"; !strings.Contains(lines[3], want) {
		t.Errorf("table vacuum --dry-run note = %q, want it to contain %q", lines[3], want)
	}
	if _, err := os.Stat(filepath.Join(main, orphan)); err != nil {
		t.Errorf("table vacuum --dry-run deleted %s: %v", orphan, err)
	}

	// Dry run, JSON.
	v, r := vacuumJSON(t, "--path", main, "--dry-run", "--retention", "48h")
	if r.code != 0 || !v.DryRun || v.Count != 2 || len(v.Files) != 2 || v.Files[1].Path != orphan || v.Files[1].Size <= 0 ||
		v.Retention != "48h0m0s" || v.RetentionSeconds != 48*3600 || v.KeptYoung != 1 || v.Version != before.Version {
		t.Errorf("table vacuum --json --dry-run --retention 48h = %d %q: %+v; want a dry run of 2 files (%s second), 48h, 1 young, version %d",
			r.code, r.stderr, v, orphan, before.Version)
	}

	// The real run deletes the orphan and the scratch directory only.
	r = runStarter(t, "table", "vacuum", "--path", main, "--retention", "48h")
	if want := "vacuum " + main + ": 2 files, 0.0 MiB deleted (retention 48h0m0s)\n"; r.code != 0 || !strings.HasPrefix(r.stdout, want) {
		t.Errorf("table vacuum --retention 48h = %d, %q, stderr %q; want the summary %q", r.code, r.stdout, r.stderr, want)
	}
	for _, tt := range []struct {
		rel  string
		want bool
	}{{orphan, false}, {"_certlake_merge_tmp-42", false}, {young, true}, {"_delta_log", true}} {
		if _, err := os.Stat(filepath.Join(main, tt.rel)); (err == nil) != tt.want {
			t.Errorf("after table vacuum, stat(%s) = %v; want present %v", tt.rel, err, tt.want)
		}
	}
	after, r := describeJSON(t, main, "--count")
	if r.code != 0 || after.Version != before.Version || after.NumFiles != before.NumFiles || after.NumRows == nil || *after.NumRows != 130 {
		t.Errorf("table describe after vacuum = %d %q: version %d, %d files, rows %v; want version %d, %d files, 130 rows",
			r.code, r.stderr, after.Version, after.NumFiles, after.NumRows, before.Version, before.NumFiles)
	}
	if v1, r := describeJSON(t, main, "--version", "1", "--count"); r.code != 0 || v1.NumRows == nil || *v1.NumRows != 90 {
		t.Errorf("table describe --version 1 after vacuum = %d %q, rows %v; want 90", r.code, r.stderr, v1.NumRows)
	}
}

func TestTableVacuumErrors(t *testing.T) {
	dir := workdir(t, "lake:\n  allowed_locations: [.]\n")
	main := filepath.Join(dir, "main")
	appendRows(t, main, lake.RoleMain, "https://ct.example.com/logs/a", [2]uint64{0, 9})
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"NotATable", []string{"--path", dir}, 1, "is not a Delta table (no _delta_log with a commit): give --path the table's root directory"},
		{"Missing", []string{"--path", filepath.Join(dir, "nope")}, 1, "is not a Delta table"},
		{"RetentionTooShort", []string{"--path", main, "--retention", "1h"}, 2, "retention 1h0m0s is under 24h0m0s"},
		{"NoPath", nil, 2, "needs --path"},
		{"Positional", []string{main}, 2, "name the table with --path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runStarter(t, append([]string{"table", "vacuum"}, tt.args...)...)
			if r.code != tt.code || !strings.HasPrefix(r.stderr, "Error: ") || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("table vacuum %v = %d, %q; want exit %d and one line containing %q", tt.args, r.code, r.stderr, tt.code, tt.want)
			}
		})
	}
	if r := runStarter(t, "table", "frob"); r.code != 2 || !strings.Contains(r.stderr, "commands: check, describe, vacuum") {
		t.Errorf("table frob = %d, %q; want 2 and the usage naming vacuum", r.code, r.stderr)
	}
}

// table vacuum also removes the plans that ended runs left in lake.plan_dir
// past the retention (a worker that died, a terminated run), and keeps the
// younger ones.
func TestTableVacuumRemovesOrphanPlans(t *testing.T) {
	base := t.TempDir()
	plans := filepath.Join(base, "plans")
	main := filepath.Join(base, "main")
	workdir(t, "lake:\n  main_path: "+main+"\n  plan_dir: "+plans+"\n")
	appendRows(t, main, lake.RoleMain, "https://ct.example.com/logs/a", [2]uint64{0, 9})
	for _, run := range []string{"bf-old-run", "bf-new-run"} {
		if err := os.MkdirAll(filepath.Join(plans, run), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(plans, run, "log-000.jsonl"), []byte("{\"start\":0,\"end\":9}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ageTree(t, filepath.Join(plans, "bf-old-run"), time.Now().Add(-8*24*time.Hour))
	v, r := vacuumJSON(t, "--path", main, "--dry-run")
	if r.code != 0 || len(v.OrphanPlans) != 1 || v.OrphanPlans[0] != "bf-old-run" || v.PlanDir != plans {
		t.Fatalf("table vacuum --dry-run = %d %q: %+v; want bf-old-run as the orphan plan", r.code, r.stderr, v)
	}
	r = runStarter(t, "table", "vacuum", "--path", main)
	if r.code != 0 || !strings.Contains(r.stdout, "removed the plans of 1 ended runs older than 168h0m0s from "+plans) {
		t.Fatalf("table vacuum = %d, %q, %q; want the plans note", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(plans, "bf-old-run")); !os.IsNotExist(err) {
		t.Errorf("old plans still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(plans, "bf-new-run", "log-000.jsonl")); err != nil {
		t.Errorf("young plans removed: %v", err)
	}
}

// table vacuum deletes only under lake.allowed_locations; a dry run may
// inspect any table.
func TestTableVacuumOutsideAllowedLocations(t *testing.T) {
	dir := workdir(t, "lake:\n  main_path: lake/main\n")
	other := filepath.Join(dir, "elsewhere", "table")
	appendRows(t, other, lake.RoleMain, "https://ct.example.com/logs/a", [2]uint64{0, 9})
	orphan := orphanFile(t, other, "https://ct.example.com/logs/a", 10, 19)
	ageTree(t, other, time.Now().Add(-8*24*time.Hour))

	r := runStarter(t, "table", "vacuum", "--path", other)
	if r.code == 0 || !strings.Contains(r.stderr, "outside the allowed locations") || !strings.Contains(r.stderr, "lake.allowed_locations") {
		t.Fatalf("table vacuum of a table outside the lake = %d, %q; want a refusal naming lake.allowed_locations", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(other, orphan)); err != nil {
		t.Fatalf("refused vacuum deleted %s: %v", orphan, err)
	}
	if v, r := vacuumJSON(t, "--path", other, "--dry-run"); r.code != 0 || v.Count != 1 {
		t.Errorf("dry run outside the lake = %d %q, %d files; want 1 file listed", r.code, r.stderr, v.Count)
	}
	r = runStarter(t, "table", "vacuum", "--path", other, "--set", "lake.allowed_locations="+dir+"/lake,"+dir+"/data,"+dir+"/elsewhere")
	if r.code != 0 {
		t.Fatalf("table vacuum with its location allowed = %d, %q", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(other, orphan)); !os.IsNotExist(err) {
		t.Errorf("allowed vacuum kept the orphan %s: %v", orphan, err)
	}
}
