package plandir

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestRemoveAndRemoveOlder(t *testing.T) {
	root := t.TempDir()
	old, fresh := Path(root, "bf/1-run"), Path(root, "merge-x-run")
	for _, d := range []string{old, fresh} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "log-000.jsonl"), []byte("{}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	week := 7 * 24 * time.Hour
	past := time.Now().Add(-2 * week)
	for _, p := range []string{old, filepath.Join(old, "log-000.jsonl")} {
		if err := os.Chtimes(p, past, past); err != nil {
			t.Fatal(err)
		}
	}
	got, err := RemoveOlder(root, week, time.Now(), true)
	if err != nil || len(got) != 1 || got[0].Path != old {
		t.Fatalf("dry run = %v, %v; want only %s", got, err, old)
	}
	if _, err := os.Stat(old); err != nil {
		t.Fatalf("dry run removed %s: %v", old, err)
	}
	if got, err = RemoveOlder(root, week, time.Now(), false); err != nil || len(got) != 1 {
		t.Fatalf("RemoveOlder = %v, %v", got, err)
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Fatalf("%s still there: %v", old, err)
	}
	if err := Remove(root, "merge-x-run"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(fresh); !os.IsNotExist(err) {
		t.Fatalf("%s still there: %v", fresh, err)
	}
	if err := Remove(root, "merge-x-run"); err != nil {
		t.Fatalf("second Remove: %v", err)
	}
	if got, err := RemoveOlder(filepath.Join(root, "none"), week, time.Now(), false); err != nil || got != nil {
		t.Fatalf("missing root = %v, %v", got, err)
	}
}
