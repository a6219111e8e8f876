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

// TestCommandLineErrors checks that cobra's errors keep the starter's
// contract: one line on stderr naming what is wrong, exit code 2.
func TestCommandLineErrors(t *testing.T) {
	workdir(t, "")
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"gaps", "--frobnicate"}, "Error: unknown flag: --frobnicate (see starter gaps --help)\n"},
		{[]string{"gaps", "--from", "x"}, `Error: invalid argument "x" for "--from" flag: strconv.ParseUint: parsing "x": invalid syntax (see starter gaps --help)` + "\n"},
		{[]string{"gasp"}, `Error: unknown command "gasp" for "starter"; did you mean "gaps"? (commands: backfill, completion, coverage, fetch, gaps, merge, schedule, table; see starter --help)` + "\n"},
		{[]string{"table", "describ"}, `Error: unknown command "describ" for "starter table"; did you mean "describe"? (commands: check, describe, vacuum; see starter table --help)` + "\n"},
		{[]string{"schedule", "frob"}, `Error: unknown command "frob" for "starter schedule" (commands: create, delete, describe, pause, trigger, unpause; see starter schedule --help)` + "\n"},
		{[]string{"gaps", "extra"}, `Error: gaps takes no arguments, got ["extra"]` + "\n"},
	} {
		r := runStarter(t, tt.args...)
		if r.code != 2 || r.stderr != tt.want || r.stdout != "" {
			t.Errorf("starter %v = %d, stdout %q, stderr %q; want 2 and stderr %q", tt.args, r.code, r.stdout, r.stderr, tt.want)
		}
	}
	// Without a subcommand: the usage, listing the subcommands, and exit 2.
	r := runStarter(t, "table")
	if r.code != 2 || !strings.Contains(r.stderr, "starter table [command]") || !strings.Contains(r.stderr, "describe") || !strings.Contains(r.stderr, "vacuum") {
		t.Errorf("starter table = %d, %q; want 2 and the usage", r.code, r.stderr)
	}
}

// TestHelp checks that help comes from cobra, on stdout with exit 0, and
// lists the commands by group and a command's flags with the shared ones.
func TestHelp(t *testing.T) {
	workdir(t, "")
	r := runStarter(t, "--help")
	for _, want := range []string{"Workflows (need a Temporal server and a certlake worker):", "  backfill ", "Local tools (no Temporal):", "  gaps ", "  completion "} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("starter --help = %d, %q; want 0 and %q", r.code, r.stdout, want)
		}
	}
	r = runStarter(t, "help", "gaps")
	for _, want := range []string{"starter gaps [flags]", "--main string", "--ceiling string", "Global Flags:", "--set stringArray"} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("starter help gaps = %d, %q; want 0 and %q", r.code, r.stdout, want)
		}
	}
}

// TestCompletion checks the shell completion scripts and the values
// completion offers: subcommands, flags, and the ceiling's two modes.
func TestCompletion(t *testing.T) {
	workdir(t, "")
	for shell, want := range map[string]string{
		"bash": "# bash completion V2 for starter",
		"zsh":  "#compdef starter",
		"fish": "# fish completion for starter",
	} {
		r := runStarter(t, "completion", shell)
		if r.code != 0 || !strings.HasPrefix(r.stdout, want) {
			t.Errorf("starter completion %s = %d, %.80q; want 0 and a script starting %q", shell, r.code, r.stdout, want)
		}
	}
	complete := func(args ...string) []string {
		t.Helper()
		r := runStarter(t, append([]string{"__complete"}, args...)...)
		if r.code != 0 {
			t.Fatalf("starter __complete %v = %d, %q", args, r.code, r.stderr)
		}
		var out []string
		for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			if !strings.HasPrefix(l, ":") { // the directive line
				out = append(out, strings.SplitN(l, "\t", 2)[0])
			}
		}
		return out
	}
	if got := strings.Join(complete("ta"), " "); got != "table" {
		t.Errorf("completion of %q = %q, want table", "ta", got)
	}
	if got := strings.Join(complete("table", ""), " "); got != "check describe help vacuum" && got != "check describe vacuum" {
		t.Errorf("completion of table subcommands = %q, want check, describe and vacuum", got)
	}
	if got := strings.Join(complete("gaps", "--ceiling", ""), " "); got != "state_file tree_size" {
		t.Errorf("completion of gaps --ceiling = %q, want state_file tree_size", got)
	}
	if got := complete("backfill", "--staging"); len(got) != 1 || got[0] != "--staging-path" {
		t.Errorf("completion of backfill --staging = %q, want --staging-path", got)
	}
}
