package workflows

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

// TestLayering checks the direction of dependencies (STYLE.md, "Where
// Temporal may be imported"): starter/worker -> workflows -> activities ->
// internal. Workflows stay deterministic by importing no I/O at all; the
// engine in internal/ knows nothing of Temporal.
func TestLayering(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "../...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const mod = "github.com/certlake/certlake/"
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		pkg, imports := strings.TrimPrefix(f[0], mod), f[1:]
		for _, imp := range imports {
			local := strings.TrimPrefix(imp, mod)
			switch {
			// internal/bench is a command (like e2e): it drives a backfill
			// through Temporal to measure the orchestration overhead.
			case strings.HasPrefix(pkg, "internal/") && pkg != "internal/bench" && strings.HasPrefix(imp, "go.temporal.io/"):
				t.Errorf("%s imports %s: the engine must not depend on Temporal", pkg, imp)
			case pkg == "workflows" && (imp == "os" || (strings.HasPrefix(imp, "net") && imp != "net/url") ||
				strings.HasPrefix(local, "internal/") || strings.Contains(imp, "duckdb")):
				t.Errorf("workflows imports %s: workflow code must not touch the disk or the network", imp)
			case pkg == "activities" && local == "workflows":
				t.Errorf("activities imports workflows: dependencies point the other way")
			case (imp == "go.temporal.io/sdk/client" || imp == "go.temporal.io/sdk/worker") &&
				pkg != "worker" && pkg != "starter" && pkg != "internal/bench":
				t.Errorf("%s imports %s: only the worker and the starter dial Temporal", pkg, imp)
			}
		}
	}
}
