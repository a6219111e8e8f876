package lake_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certlake/certlake/internal/lake"
	"github.com/certlake/certlake/internal/lake/laketest"
	"github.com/certlake/certlake/internal/lake/rsstaging"
)

// TestUnmarkedStaging: a staging table certstream-server-rust wrote (no
// certlake.role marker) opens as staging with AcceptUnmarked, its rows
// readable; without it, opening it as staging fails saying how to adopt.
func TestUnmarkedStaging(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "staging")
	day := time.Date(2024, 11, 25, 10, 0, 0, 0, time.UTC)
	g := laketest.New(1, "https://ct.example.com/logs/a/")
	if err := rsstaging.Write(ctx, path, g.Rows(100, 50, day), g.Rows(150, 30, day.AddDate(0, 0, 1))); err != nil {
		t.Fatal(err)
	}

	_, err := lake.Open(ctx, path, lake.Options{Role: lake.RoleStaging})
	if !errors.Is(err, lake.ErrWrongRole) || !strings.Contains(err.Error(), "--adopt-staging") {
		t.Errorf("Open(rust staging, RoleStaging) = %v, want ErrWrongRole saying how to adopt", err)
	}

	tbl, err := lake.Open(ctx, path, lake.Options{Role: lake.RoleStaging, AcceptUnmarked: true})
	if err != nil {
		t.Fatalf("Open(rust staging, AcceptUnmarked) = %v", err)
	}
	if tbl.Role() != lake.RoleStaging || tbl.Marked() {
		t.Errorf("Role, Marked = %s, %v; want staging, unmarked", tbl.Role(), tbl.Marked())
	}
	snap, err := tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := lake.ReadRows(ctx, tbl.Files(snap))
	if err != nil || len(rows) != 80 {
		t.Fatalf("ReadRows = %d rows, %v; want 80", len(rows), err)
	}
	// A marked table opens with AcceptUnmarked too, as marked.
	marked, err := lake.OpenOrCreate(ctx, filepath.Join(t.TempDir(), "marked"), lake.Options{Role: lake.RoleStaging})
	if err != nil {
		t.Fatal(err)
	}
	if again, err := lake.Open(ctx, marked.Path(), lake.Options{Role: lake.RoleStaging, AcceptUnmarked: true}); err != nil || !again.Marked() {
		t.Errorf("Open(marked, AcceptUnmarked) = %v; want it marked", err)
	}
	// A main table opened as main is still main.
	if m, err := lake.Open(ctx, path, lake.Options{Role: lake.RoleMain}); err != nil || m.Role() != lake.RoleMain {
		t.Errorf("Open(unmarked, RoleMain) = %v", err)
	}
}
