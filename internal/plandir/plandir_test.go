package plandir

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/certlake/certlake/internal/storage"
)

func TestRemoveAndRemoveOlder(t *testing.T) {
	root := t.TempDir()
	s := storage.NewDir(root)
	ctx := t.Context()
	for _, k := range []string{"bf_1-run/log-000.jsonl", "bf_1-run/log-001.jsonl", "merge-x-run/merge-plan.json"} {
		if err := s.Put(ctx, k, bytes.NewReader([]byte("{}\n")), 3); err != nil {
			t.Fatal(err)
		}
	}
	week := 7 * 24 * time.Hour
	past := time.Now().Add(-2 * week)
	for _, k := range []string{"bf_1-run/log-000.jsonl", "bf_1-run/log-001.jsonl"} {
		if err := os.Chtimes(filepath.Join(root, k), past, past); err != nil {
			t.Fatal(err)
		}
	}
	got, err := RemoveOlder(ctx, s, week, time.Now(), true)
	if err != nil || len(got) != 1 || got[0].Name != "bf_1-run" || got[0].Objects != 2 {
		t.Fatalf("dry run = %+v, %v; want only bf_1-run with 2 files", got, err)
	}
	if _, err := os.Stat(filepath.Join(root, "bf_1-run")); err != nil {
		t.Fatalf("dry run removed bf_1-run: %v", err)
	}
	if got, err = RemoveOlder(ctx, s, week, time.Now(), false); err != nil || len(got) != 1 {
		t.Fatalf("RemoveOlder = %+v, %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(root, "bf_1-run")); !os.IsNotExist(err) {
		t.Fatalf("bf_1-run still there: %v", err)
	}
	if err := Remove(ctx, s, "merge-x-run"); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(root); len(ents) != 0 {
		t.Fatalf("plan dir holds %d entries, want none", len(ents))
	}
	if err := Remove(ctx, s, "merge-x-run"); err != nil {
		t.Fatalf("second Remove: %v", err)
	}
	if err := Remove(ctx, s, ".."); err == nil {
		t.Fatal("Remove(..) succeeded")
	}
}
