package options

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/certlake/certlake/internal/config"
	"github.com/certlake/certlake/internal/ctlog"
)

// TestCatalogLimits checks the limits each log is read with, from the
// configuration: a log's override wins over its operator's, which wins over
// the defaults; override keys match whatever the case and trailing slash.
func TestCatalogLimits(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(file, []byte(`
ct:
  operators:
    DigiCert: {rate_limit: 0.5, concurrency: 1}
  logs:
    "https://Wyvern.ct.digicert.com/2025h1/": {rate_limit: 2, window: 1, verify: false}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	cat := Catalog(cfg)
	tests := []struct {
		url, operator string
		want          ctlog.Limit
		window        int
		verified      bool
	}{
		{"https://other.example/", "Google", ctlog.Limit{Rate: 5, Burst: 5, Concurrency: 4}, 0, true},
		{"https://sphinx.ct.digicert.com/2025h1/", "DigiCert", ctlog.Limit{Rate: 0.5, Burst: 5, Concurrency: 1}, 0, true},
		{"https://wyvern.ct.digicert.com/2025h1/", "DigiCert", ctlog.Limit{Rate: 2, Burst: 5, Concurrency: 1}, 1, false},
		{"https://wyvern.ct.digicert.com/2025h1", "digicert", ctlog.Limit{Rate: 2, Burst: 5, Concurrency: 1}, 1, false},
	}
	for _, tt := range tests {
		l := ctlog.Log{URL: tt.url, Operator: tt.operator}
		if got := cat.Limit(l); got != tt.want {
			t.Errorf("Limit(%q, %q) = %+v, want %+v", tt.url, tt.operator, got, tt.want)
		}
		if got := cat.Window(tt.url); got != tt.window {
			t.Errorf("Window(%q) = %d, want %d", tt.url, got, tt.window)
		}
		if got := !cat.Tune(l).Unverified; got != tt.verified {
			t.Errorf("verified(%q) = %v, want %v", tt.url, got, tt.verified)
		}
	}
	if db := DB(cfg); db.MemoryLimit != "1GB" {
		t.Errorf("DB().MemoryLimit = %q, want the default 1GB", db.MemoryLimit)
	}
}
