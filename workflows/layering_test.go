package workflows

import (
	"bufio"
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certlake/certlake/internal/config"
)

// TestLayering checks the direction of dependencies (STYLE.md, "Where
// Temporal may be imported"): starter/worker -> workflows -> activities ->
// internal. Workflows stay deterministic by importing no I/O at all; the
// engine in internal/ knows nothing of Temporal.
func TestLayering(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{.Name}}{{range .Imports}} {{.}}{{end}}`, "../...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const mod = "github.com/certlake/certlake/"
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		pkg, name, imports := strings.TrimPrefix(f[0], mod), f[1], f[2:]
		// Commands (the worker, the starter, the demo, the benchmarks) and the
		// end to end tests' harness are edges: they may wire anything
		// together. Only libraries are layered.
		command := name == "main" || strings.HasPrefix(pkg, "e2e/")
		for _, imp := range imports {
			local := strings.TrimPrefix(imp, mod)
			switch {
			case local == "internal/reference" && pkg != "internal/bench":
				t.Errorf("%s imports internal/reference: the original's algorithms are for tests and benchmarks only", pkg)
			case command:
			case strings.HasPrefix(pkg, "internal/") && strings.HasPrefix(imp, "go.temporal.io/"):
				t.Errorf("%s imports %s: the engine must not depend on Temporal", pkg, imp)
			case pkg == "workflows" && (imp == "os" || (strings.HasPrefix(imp, "net") && imp != "net/url") ||
				strings.HasPrefix(local, "internal/") || strings.Contains(imp, "duckdb")):
				t.Errorf("workflows imports %s: workflow code must not touch the disk or the network", imp)
			case pkg == "activities" && local == "workflows":
				t.Errorf("activities imports workflows: dependencies point the other way")
			case imp == "go.temporal.io/sdk/client" || imp == "go.temporal.io/sdk/worker":
				t.Errorf("%s imports %s: only commands dial Temporal", pkg, imp)
			}
		}
	}
}

// TestOperatorBinariesLinkNoTestCode keeps the in-process test logs (and the
// database drivers Trillian pulls in) out of what operators deploy: the demo
// and the tests start those logs, the worker and the starter never do.
func TestOperatorBinariesLinkNoTestCode(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "../starter", "../worker").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{
			"github.com/google/trillian", "github.com/transparency-dev/tessera", "github.com/transparency-dev/tesseract",
			"github.com/certlake/certlake/internal/ctlogtest", "github.com/certlake/certlake/internal/scenario",
			"github.com/go-sql-driver/mysql", "github.com/jackc/pgx",
		} {
			if dep == banned || strings.HasPrefix(dep, banned+"/") {
				t.Errorf("the starter or the worker links %s (test code)", dep)
			}
		}
	}
}

// TestCeilingModesMatchConfig keeps the workflows' public ceiling names (the
// workflow package may not import internal/) equal to the configuration's,
// the one place they are defined for the engine.
func TestCeilingModesMatchConfig(t *testing.T) {
	if CeilingStateFile != config.CeilingStateFile || CeilingTreeSize != config.CeilingTreeSize {
		t.Errorf("workflows ceilings %q, %q; config %q, %q", CeilingStateFile, CeilingTreeSize,
			config.CeilingStateFile, config.CeilingTreeSize)
	}
}

// TestDefaultsMatchConfig keeps the workflows' fallbacks (defaults.go) equal
// to the configuration's defaults they stand in for.
func TestDefaultsMatchConfig(t *testing.T) {
	def := config.Defaults().Backfill
	if defaultFetchAttempts != def.FetchAttempts || defaultHeartbeat != def.HeartbeatTimeout {
		t.Errorf("workflows fall back to %d fetch attempts and a %s heartbeat; config defaults %d and %s",
			defaultFetchAttempts, defaultHeartbeat, def.FetchAttempts, def.HeartbeatTimeout)
	}
}

// TestEdgesStayThin keeps the orchestration and adapter layers short: no
// function in workflows/ or activities/ (tests aside) is longer than 60
// lines; logic that needs more belongs to the engine in internal/.
func TestEdgesStayThin(t *testing.T) {
	const maxLines = 60
	fs := token.NewFileSet()
	for _, dir := range []string{".", "../activities"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			af, err := parser.ParseFile(fs, f, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range af.Decls {
				fd, ok := d.(*ast.FuncDecl)
				if !ok || fd.Body == nil {
					continue
				}
				if n := fs.Position(fd.End()).Line - fs.Position(fd.Pos()).Line + 1; n > maxLines {
					t.Errorf("%s: %s is %d lines, more than %d: move its logic into internal/", f, fd.Name.Name, n, maxLines)
				}
			}
		}
	}
}
