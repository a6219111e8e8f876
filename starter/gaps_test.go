package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/certlake/certlake/internal/gaps"
	"github.com/certlake/certlake/internal/lake"
	"github.com/certlake/certlake/internal/lake/laketest"
	"github.com/certlake/certlake/internal/lake/rsstaging"
	"github.com/certlake/certlake/internal/record"
)

// logKey returns a new log public key as ct.custom_logs[].key takes it: a
// configured log that is verified needs one. No log signs with it.
func logKey(t *testing.T) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(der)
}

// TestGapsJSON plans on a real lake (main with holes, staging filling part
// of one) and a state file, offline.
func TestGapsJSON(t *testing.T) {
	const (
		a = "https://ct.example.com/logs/a"
		b = "https://ct.example.com/logs/b"
		c = "https://ct.example.com/logs/c" // in the state file, not in the lake
	)
	dir := t.TempDir()
	state := filepath.Join(dir, "certstream_state.json")
	stateBody := fmt.Sprintf(`{"version": 1, "logs": {
  %q: {"current_index": 200, "tree_size": 210, "last_success": 1732550400},
  %q: {"current_index": 1040, "tree_size": 1100, "last_success": 1732550400},
  %q: {"current_index": 30, "tree_size": 30, "last_success": 1732550400}}}`, a+"/", b, c)
	if err := os.WriteFile(state, []byte(stateBody), 0o644); err != nil {
		t.Fatal(err)
	}
	main := filepath.Join(dir, "lake", "main")
	staging := filepath.Join(dir, "lake", "staging")
	appendRows(t, main, lake.RoleMain, a, [2]uint64{0, 39}, [2]uint64{50, 99})
	appendRows(t, main, lake.RoleMain, b, [2]uint64{1000, 1009}, [2]uint64{1020, 1049})
	appendRows(t, staging, lake.RoleStaging, b, [2]uint64{1010, 1014})
	workdir(t, fmt.Sprintf("lake:\n  main_path: %s\n  staging_path: %s\nct:\n  state_file: %s\n", main, staging, state))

	tests := []struct {
		name        string
		args        []string
		wantItems   []gaps.Range
		wantLogs    int
		wantSkipped int
	}{
		{
			// b's ceiling 1040 cuts its keys: holes only below it.
			name: "CatchUp",
			wantItems: []gaps.Range{
				{SourceURL: a, Start: 40, End: 49},
				{SourceURL: b, Start: 1015, End: 1019},
			},
			wantLogs: 3,
		},
		{
			name:      "NoStaging",
			args:      []string{"--no-staging", "--logs", "LOGS/B"},
			wantItems: []gaps.Range{{SourceURL: b, Start: 1010, End: 1019}},
			wantLogs:  1,
		},
		{
			name: "Historical",
			args: []string{"--from", "20"},
			wantItems: []gaps.Range{
				{SourceURL: a, Start: 40, End: 49},
				{SourceURL: b, Start: 20, End: 999},
				{SourceURL: b, Start: 1015, End: 1019},
				{SourceURL: c, Start: 20, End: 29},
			},
			wantLogs: 3,
		},
		{
			name: "Frontier",
			args: []string{"--include-frontier", "--logs", "logs/a,logs/c"},
			wantItems: []gaps.Range{
				{SourceURL: a, Start: 40, End: 49},
				{SourceURL: a, Start: 100, End: 199},
			},
			wantLogs: 2,
		},
		{
			// a has keys only below 150: [150, 199] is its frontier, left out.
			name:        "FromAboveOneCeiling",
			args:        []string{"--from", "150"},
			wantItems:   []gaps.Range{{SourceURL: b, Start: 150, End: 999}, {SourceURL: b, Start: 1015, End: 1019}},
			wantLogs:    2,
			wantSkipped: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runStarter(t, append([]string{"gaps", "--json"}, tt.args...)...)
			if r.code != 0 {
				t.Fatalf("gaps %v = %d, %q", tt.args, r.code, r.stderr)
			}
			var v gapsView
			if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
				t.Fatalf("gaps --json output %q: %v", r.stdout, err)
			}
			if !reflect.DeepEqual(v.Items, tt.wantItems) {
				t.Errorf("gaps %v items = %+v, want %+v", tt.args, v.Items, tt.wantItems)
			}
			var total uint64
			for _, it := range tt.wantItems {
				total += it.End - it.Start + 1
			}
			if v.TotalEntries != total || v.TotalRanges != len(tt.wantItems) {
				t.Errorf("gaps %v totals = %d entries, %d ranges; want %d, %d", tt.args, v.TotalEntries, v.TotalRanges, total, len(tt.wantItems))
			}
			if len(v.Logs) != tt.wantLogs || len(v.Skipped) != tt.wantSkipped {
				t.Errorf("gaps %v logs, skipped = %+v, %+v; want %d logs, %d skipped", tt.args, v.Logs, v.Skipped, tt.wantLogs, tt.wantSkipped)
			}
		})
	}

	// The raw JSON has the documented keys.
	r := runStarter(t, "gaps", "--json")
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(r.stdout), &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"items", "total_entries", "logs"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("gaps --json lacks key %q: %s", k, r.stdout)
		}
	}
	var items []map[string]any
	if err := json.Unmarshal(raw["items"], &items); err != nil || len(items) == 0 {
		t.Fatalf("gaps --json items = %s: %v", raw["items"], err)
	}
	if len(items[0]) != 3 || items[0]["source_url"] == nil || items[0]["start"] == nil || items[0]["end"] == nil {
		t.Errorf("gaps --json item = %v, want exactly source_url, start, end", items[0])
	}

	// Text output.
	r = runStarter(t, "gaps")
	for _, want := range []string{"15 missing entries in 2 ranges", "[40, 49]  10 entries", "[1015, 1019]  5 entries",
		"note: 3 logs are neither configured"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("gaps text output lacks %q:\n%s", want, r.stdout)
		}
	}
}

// TestGapsCeilingRule: the two examples of the seed's rule (a key
// at or above the ceiling caps the upper bound at the ceiling), planned by
// starter gaps over real tables.
func TestGapsCeilingRule(t *testing.T) {
	const (
		d = "https://ct.example.com/logs/d" // main {10, 11, 12}, staging {13, 14, 25}, ceiling 20
		e = "https://ct.example.com/logs/e" // main {0, 1, 5, 9}, ceiling 7
	)
	dir := t.TempDir()
	state := filepath.Join(dir, "certstream_state.json")
	stateBody := fmt.Sprintf(`{"version": 1, "logs": {
  %q: {"current_index": 20, "tree_size": 30, "last_success": 1732550400},
  %q: {"current_index": 7, "tree_size": 10, "last_success": 1732550400}}}`, d, e)
	if err := os.WriteFile(state, []byte(stateBody), 0o644); err != nil {
		t.Fatal(err)
	}
	main := filepath.Join(dir, "lake", "main")
	staging := filepath.Join(dir, "lake", "staging")
	appendRows(t, main, lake.RoleMain, d, [2]uint64{10, 12})
	appendRows(t, main, lake.RoleMain, e, [2]uint64{0, 1}, [2]uint64{5, 5}, [2]uint64{9, 9})
	appendRows(t, staging, lake.RoleStaging, d, [2]uint64{13, 14}, [2]uint64{25, 25})
	workdir(t, fmt.Sprintf("lake:\n  main_path: %s\n  staging_path: %s\nct:\n  state_file: %s\n", main, staging, state))
	r := runStarter(t, "gaps", "--json")
	if r.code != 0 {
		t.Fatalf("gaps = %d, %q", r.code, r.stderr)
	}
	var v gapsView
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatal(err)
	}
	want := []gaps.Range{{SourceURL: d, Start: 15, End: 19}, {SourceURL: e, Start: 2, End: 4}, {SourceURL: e, Start: 6, End: 6}}
	if !reflect.DeepEqual(v.Items, want) {
		t.Errorf("gaps items = %+v, want %+v", v.Items, want)
	}
}

// TestGapsRustStaging: a staging table certstream-server-rust wrote (no
// certlake marker) counts as staging: its rows are present. gaps says it
// is unmarked, and table describe reads it as an unmarked staging table.
func TestGapsRustStaging(t *testing.T) {
	const a = "https://ct.example.com/logs/a"
	dir := t.TempDir()
	state := filepath.Join(dir, "certstream_state.json")
	stateBody := fmt.Sprintf(`{"version": 1, "logs": {%q: {"current_index": 40, "tree_size": 40, "last_success": 1732550400}}}`, a)
	if err := os.WriteFile(state, []byte(stateBody), 0o644); err != nil {
		t.Fatal(err)
	}
	main := filepath.Join(dir, "lake", "main")
	staging := filepath.Join(dir, "lake", "rust-staging")
	appendRows(t, main, lake.RoleMain, a, [2]uint64{0, 9}, [2]uint64{20, 29})
	g := laketest.New(3, a)
	if err := rsstaging.Write(t.Context(), staging, g.Rows(10, 5, time.Date(2025, 11, 26, 0, 0, 0, 0, time.UTC))); err != nil {
		t.Fatal(err)
	}
	workdir(t, fmt.Sprintf("lake:\n  main_path: %s\n  staging_path: %s\nct:\n  state_file: %s\n", main, staging, state))
	r := runStarter(t, "gaps", "--json")
	if r.code != 0 {
		t.Fatalf("gaps = %d, %q", r.code, r.stderr)
	}
	var v gapsView
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatal(err)
	}
	if want := []gaps.Range{{SourceURL: a, Start: 15, End: 19}}; !reflect.DeepEqual(v.Items, want) || !v.StagingUnmarked || v.Tables["staging"] != 1 {
		t.Errorf("gaps = items %+v, staging_unmarked %v, %d staging files; want %+v, unmarked, 1 file", v.Items, v.StagingUnmarked, v.Tables["staging"], want)
	}
	if r := runStarter(t, "gaps"); !strings.Contains(r.stdout, "has no certlake marker") || !strings.Contains(r.stdout, "--adopt-staging") {
		t.Errorf("gaps text output lacks the unmarked staging note:\n%s", r.stdout)
	}

	for _, args := range [][]string{{staging}, {"--staging", staging}} {
		r = runStarter(t, append([]string{"table", "describe", "--json", "--no-logs"}, args...)...)
		var tv tableView
		if err := json.Unmarshal([]byte(r.stdout), &tv); err != nil || r.code != 0 {
			t.Fatalf("table describe %v = %d, %q, %v", args, r.code, r.stderr, err)
		}
		if tv.Role != "staging" || !tv.StagingUnmarked || !tv.Certstream {
			t.Errorf("table describe %v = role %q, staging_unmarked %v; want an unmarked staging table", args, tv.Role, tv.StagingUnmarked)
		}
	}
	// Elsewhere, without --staging, an unmarked table is a main table.
	workdir(t, fmt.Sprintf("lake:\n  main_path: %s\n", main))
	r = runStarter(t, "table", "describe", "--json", "--no-logs", staging)
	var tv tableView
	if err := json.Unmarshal([]byte(r.stdout), &tv); err != nil || tv.Role != "main" || tv.StagingUnmarked {
		t.Errorf("table describe (not lake.staging_path) = role %q, unmarked %v, %v; want main", tv.Role, tv.StagingUnmarked, err)
	}
}

func TestGapsErrors(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state.json")
	if err := os.WriteFile(state, []byte(`{"version": 1, "logs": {"https://x.example/log": {"current_index": 5, "tree_size": 5, "last_success": 1}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	workdir(t, "lake:\n  main_path: "+filepath.Join(dir, "main")+"\n")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"MissingStateFile", []string{"--state-file", filepath.Join(dir, "nope.json")}, "state file"},
		{"NoLogMatches", []string{"--state-file", state, "--logs", "zzz"}, `no log matches --logs "zzz"`},
		{"FromAboveEveryCeiling", []string{"--state-file", state, "--from", "9"}, "at or above its ceiling 5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runStarter(t, append([]string{"gaps"}, tt.args...)...)
			if r.code != 1 || !strings.Contains(r.stderr, tt.want) || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("gaps %v = %d, %q; want exit 1 and one line containing %q", tt.args, r.code, r.stderr, tt.want)
			}
		})
	}
	// A missing main table is an empty lake: nothing in catch-up mode.
	r := runStarter(t, "gaps", "--json", "--state-file", state)
	if r.code != 0 || !strings.Contains(r.stdout, `"total_entries": 0`) {
		t.Errorf("gaps on a missing main = %d, %q, %q; want success with 0 entries", r.code, r.stdout, r.stderr)
	}
}

// TestGapsEstimate checks the per-log requests and ETA of gaps --json
// against the limits of the config: a static-ct log (one request per
// tile), an RFC 6962 log with its own rate, one at the default rate.
func TestGapsEstimate(t *testing.T) {
	const (
		a = "https://ct.example.com/logs/a"
		b = "https://ct.example.com/logs/b"
		c = "https://ct.example.com/logs/c"
	)
	dir := t.TempDir()
	state := filepath.Join(dir, "certstream_state.json")
	stateBody := fmt.Sprintf(`{"version": 1, "logs": {
  %q: {"current_index": 200, "tree_size": 210, "last_success": 1732550400},
  %q: {"current_index": 1040, "tree_size": 1100, "last_success": 1732550400},
  %q: {"current_index": 30, "tree_size": 30, "last_success": 1732550400}}}`, a, b, c)
	if err := os.WriteFile(state, []byte(stateBody), 0o644); err != nil {
		t.Fatal(err)
	}
	main := filepath.Join(dir, "main")
	appendRows(t, main, lake.RoleMain, a, [2]uint64{0, 39}, [2]uint64{50, 99})
	appendRows(t, main, lake.RoleMain, b, [2]uint64{1000, 1014}, [2]uint64{1020, 1049})
	workdir(t, fmt.Sprintf(`lake:
  main_path: %s
ct:
  state_file: %s
  batch_size: 4
  rate_limit: 2
  burst: 1
  static_logs:
    - {name: log a, url: %s, key: %s}
  logs:
    %q: {rate_limit: 0.5}
`, main, state, a, logKey(t), b))

	r := runStarter(t, "gaps", "--json", "--from", "20", "--latency", "0s")
	if r.code != 0 {
		t.Fatalf("gaps --json = %d, %q", r.code, r.stderr)
	}
	var v gapsView
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatal(err)
	}
	// Logs are verified (ct.verify defaults to true): proofs are requests.
	// a: its keys start at 0, so only [40, 49]: data tile 0 and the
	// level-1 hash tile above it; at 2/s after a burst of 1: 0.5 s.
	// b: [20, 999] is 245 aligned batches of 4, an inclusion proof and 16
	// consistency proofs (one per 64 entries); [1015, 1019] two batches
	// and two proofs: 266; at 0.5/s after a burst of 1: 265 / 0.5 = 530 s.
	// c: [20, 29] is 3 batches and 2 proofs; at 2/s after a burst of 1: 2 s.
	want := map[string]struct {
		kind     string
		requests uint64
		eta      float64
	}{
		a: {"static-ct", 2, 0.5},
		b: {"rfc6962", 266, 530},
		c: {"rfc6962", 5, 2},
	}
	for _, l := range v.Logs {
		w := want[l.SourceURL]
		if known := l.SourceURL == a; l.KindKnown != known {
			t.Errorf("gaps --json log %s kind_known = %t, want %t (only a is configured)", l.SourceURL, l.KindKnown, known)
		}
		if l.Kind != w.kind || l.Requests != w.requests || math.Abs(l.ETASeconds-w.eta) > 0.01 {
			t.Errorf("gaps --json log %s = %s, %d requests, eta %.2f s; want %s, %d, %.2f", l.SourceURL, l.Kind, l.Requests, l.ETASeconds, w.kind, w.requests, w.eta)
		}
	}
	if v.TotalRequests != 273 || math.Abs(v.ETASeconds-530) > 0.01 {
		t.Errorf("gaps --json totals = %d requests, eta %.2f s; want 273, 530", v.TotalRequests, v.ETASeconds)
	}
	var raw struct {
		Logs []map[string]any `json:"logs"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &raw); err != nil || len(raw.Logs) != 3 {
		t.Fatalf("gaps --json logs = %v, %v", raw.Logs, err)
	}
	for _, k := range []string{"source_url", "name", "ranges", "entries", "requests", "eta_seconds"} {
		if _, ok := raw.Logs[0][k]; !ok {
			t.Errorf("gaps --json logs[0] lacks %q: %v", k, raw.Logs[0])
		}
	}
	r = runStarter(t, "gaps", "--from", "20", "--latency", "0s")
	for _, want := range []string{"static-ct", "8m50s", "total: 273 requests, about 8m50s"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("gaps text output lacks %q:\n%s", want, r.stdout)
		}
	}
}

// TestGapsProbe learns from a log that answers two entries per request how
// many requests its holes take.
func TestGapsProbe(t *testing.T) {
	srv, _ := rfc6962Log(t, fourEntries(t), 2, nil)
	u := record.NormalizeURL(srv.URL)
	dir := t.TempDir()
	state := filepath.Join(dir, "state.json")
	if err := os.WriteFile(state, []byte(fmt.Sprintf(`{"version": 1, "logs": {%q: {"current_index": 4, "tree_size": 4, "last_success": 1}}}`, u)), 0o644); err != nil {
		t.Fatal(err)
	}
	main := filepath.Join(dir, "main")
	appendRows(t, main, lake.RoleMain, u, [2]uint64{3, 3})
	workdir(t, fmt.Sprintf("lake:\n  main_path: %s\nct:\n  state_file: %s\n  batch_size: 4\n", main, state))
	for _, tc := range []struct {
		args     []string
		from     string
		per      uint64
		requests uint64
	}{
		// [0, 2]: get-entries, and two proofs (verified by default).
		{nil, "batch_size", 4, 1 + 2},
		{[]string{"--probe"}, "probed", 2, 2 + 2},
	} {
		r := runStarter(t, append([]string{"gaps", "--json", "--from", "0"}, tc.args...)...)
		var v gapsView
		if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || len(v.Logs) != 1 {
			t.Fatalf("gaps %v = %d %q %q: %v", tc.args, r.code, r.stdout, r.stderr, err)
		}
		if l := v.Logs[0]; l.PerRequestFrom != tc.from || l.EntriesPerRequest != tc.per || l.Requests != tc.requests {
			t.Errorf("gaps %v log = %d per request from %q, %d requests; want %d from %q, %d", tc.args, l.EntriesPerRequest, l.PerRequestFrom, l.Requests, tc.per, tc.from, tc.requests)
		}
	}
}
