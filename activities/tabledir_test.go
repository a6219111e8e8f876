package activities

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/temporal"
)

func TestCheckTableDir(t *testing.T) {
	root := t.TempDir()
	mk := func(name string, files ...string) string {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if err := os.MkdirAll(filepath.Join(p, filepath.Dir(f)), 0o755); err != nil {
				t.Fatal(err)
			}
			if filepath.Base(f) != "." {
				if err := os.WriteFile(filepath.Join(p, f), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		return p
	}
	file := filepath.Join(root, "a-file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, path string
		ok         bool
	}{
		{"missing", filepath.Join(root, "missing"), true},
		{"empty", mk("empty"), true},
		{"table", mk("table", "_delta_log/00000000000000000000.json"), true},
		// A concurrent activity has made _delta_log but not committed yet.
		{"being created", mk("creating", "_delta_log/."), true},
		{"user files", mk("user", "notes.txt"), false},
		{"a file", file, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := toTemporal(checkTableDir(c.path, "staging table path"))
			var app *temporal.ApplicationError
			switch {
			case c.ok && err != nil:
				t.Fatalf("checkTableDir(%s) = %v, want nil", c.name, err)
			case !c.ok && (!errors.As(err, &app) || !app.NonRetryable()):
				t.Fatalf("checkTableDir(%s) = %v, want a non-retryable error", c.name, err)
			}
		})
	}
}
