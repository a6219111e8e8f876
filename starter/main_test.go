package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certlake/certlake/internal/config"
	"github.com/certlake/certlake/internal/lake"
	"github.com/certlake/certlake/internal/lake/laketest"
	"github.com/certlake/certlake/internal/record"
	"github.com/certlake/certlake/workflows"
)

// result is what one starter invocation printed and returned.
type result struct {
	stdout, stderr string
	code           int
}

// runStarter runs the starter in-process with args, in the current
// directory (tests chdir into a temporary one holding their certlake.yaml).
func runStarter(t *testing.T, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	c := &cli{stdin: strings.NewReader(""), stdout: &out, stderr: &errb}
	code := run(t.Context(), c, args)
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

// workdir makes a temporary working directory holding certlake.yaml with
// body and returns its path.
func workdir(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "certlake.yaml"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	return dir
}

// appendRows writes rows of log url at the given inclusive index ranges to
// the table at path, creating it with role.
func appendRows(t *testing.T, path string, role lake.Role, url string, ranges ...[2]uint64) {
	t.Helper()
	ctx := t.Context()
	tbl, err := lake.OpenOrCreate(ctx, path, lake.Options{Role: role})
	if err != nil {
		t.Fatal(err)
	}
	g := laketest.New(uint64(len(url)), url)
	var rows []record.Row
	seen := time.Date(2025, 11, 25, 12, 0, 0, 0, time.UTC)
	for _, r := range ranges {
		rows = append(rows, g.Rows(r[0], int(r[1]-r[0]+1), seen)...)
	}
	if _, err := tbl.Append(ctx, rows, lake.CommitOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestUnknownCommand(t *testing.T) {
	workdir(t, "")
	r := runStarter(t, "frobnicate")
	if r.code != 2 || !strings.Contains(r.stderr, `Error: unknown command "frobnicate"`) {
		t.Errorf("starter frobnicate = %d, %q; want 2 and an error naming the command", r.code, r.stderr)
	}
}

func TestBadConfigNamesKey(t *testing.T) {
	workdir(t, "lake:\n  mian_path: /x\n")
	r := runStarter(t, "gaps")
	if r.code != 1 || !strings.Contains(r.stderr, "unknown key lake.mian_path in certlake.yaml") {
		t.Errorf("starter gaps with a bad key = %d, %q; want 1 and the key named", r.code, r.stderr)
	}
	if strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Errorf("error output %q is not one line", r.stderr)
	}
}

// TestMergeRequiresStagingPath checks the seed's CLI error (AC4.5, HV4) on a
// real binary: exact stderr line and exit code 1, without Temporal.
func TestMergeRequiresStagingPath(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "starter")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir := t.TempDir()
	for _, args := range [][]string{{"merge"}, {"merge", "--wait"}, {"merge", "--staging-path", ""}} {
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Dir = dir
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := cmd.ProcessState.ExitCode()
		if err == nil || code != 1 {
			t.Errorf("starter %v exit code = %d (%v), want 1", args, code, err)
		}
		if got, want := stderr.String(), "Error: merge requires --staging-path <PATH>\n"; got != want {
			t.Errorf("starter %v stderr = %q, want %q", args, got, want)
		}
		if stdout.Len() != 0 {
			t.Errorf("starter %v stdout = %q, want nothing", args, stdout.String())
		}
	}
}

func TestMergeWorkflowID(t *testing.T) {
	dir := t.TempDir()
	a, err := mergeWorkflowID(filepath.Join(dir, "staging"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := mergeWorkflowID(filepath.Join(dir, "x", "..", "staging") + "/")
	c, _ := mergeWorkflowID(filepath.Join(dir, "staging2"))
	if a != b {
		t.Errorf("mergeWorkflowID of one table spelled two ways = %q, %q; want equal", a, b)
	}
	if a == c {
		t.Errorf("mergeWorkflowID of two tables = %q for both; want different", a)
	}
	if !strings.HasPrefix(a, "merge-staging-") {
		t.Errorf("mergeWorkflowID = %q, want prefix merge-staging-", a)
	}
	// The same table as a file:// URI; a table in a bucket keeps its URI.
	if f, err := mergeWorkflowID("file://" + filepath.Join(dir, "staging")); err != nil || f != a {
		t.Errorf("mergeWorkflowID(file://...) = %q, %v; want %q", f, err, a)
	}
	s3, err := mergeWorkflowID("s3://lake-bucket/ct/staging/")
	if err != nil || s3 != workflows.MergeWorkflowID("s3://lake-bucket/ct/staging") || !strings.HasPrefix(s3, "merge-staging-") {
		t.Errorf("mergeWorkflowID(s3://lake-bucket/ct/staging/) = %q, %v", s3, err)
	}
	if p, err := absPath("s3://lake-bucket/ct/staging"); err != nil || p != "s3://lake-bucket/ct/staging" {
		t.Errorf("absPath(s3 URI) = %q, %v; want it unchanged", p, err)
	}
}

func TestRunURL(t *testing.T) {
	tests := []struct {
		ui, ns, id, run, want string
	}{
		{"http://localhost:8233", "default", "merge-x", "r1", "http://localhost:8233/namespaces/default/workflows/merge-x/r1/history"},
		{"https://cloud.temporal.io/", "ns.acct", "a b", "r", "https://cloud.temporal.io/namespaces/ns.acct/workflows/a%20b/r/history"},
		{"", "default", "x", "r", ""},
	}
	for _, tt := range tests {
		cfg := defaultTemporal()
		cfg.UIURL, cfg.Namespace = tt.ui, tt.ns
		if got := runURL(cfg, tt.id, tt.run); got != tt.want {
			t.Errorf("runURL(%q, %q, %q, %q) = %q, want %q", tt.ui, tt.ns, tt.id, tt.run, got, tt.want)
		}
	}
}

func defaultTemporal() config.Temporal { return config.Defaults().Temporal }
