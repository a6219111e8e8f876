package merge

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certlake/certlake/internal/lake"
	"github.com/certlake/certlake/internal/lake/laketest"
	"github.com/certlake/certlake/internal/lake/rsstaging"
)

// TestMergeRustStagingNeedsAdoption: a staging table certstream-server-rust
// wrote (no certlake marker) is refused by a plain merge, with an error
// saying how to adopt it, and left untouched; with AdoptStaging it is
// marked, merged (duplicates of main skipped) and retired.
func TestMergeRustStagingNeedsAdoption(t *testing.T) {
	ctx := t.Context()
	mainPath, stagingPath := paths(t)
	appendTable(t, mainPath, lake.RoleMain, rows(logA, day0, 10, 11, 12))
	if err := rsstaging.Write(ctx, stagingPath, rows(logA, day0.Add(time.Hour), 12, 13, 14), rows(logB, day0.Add(2*time.Hour), 0, 1)); err != nil {
		t.Fatal(err)
	}
	before := dirState(t, stagingPath)

	_, err := Merge(ctx, mainPath, stagingPath, Options{})
	if !errors.Is(err, ErrNotStaging) || !strings.Contains(err.Error(), `"adopt_staging": true`) || !strings.Contains(err.Error(), "--adopt-staging") {
		t.Fatalf("Merge(unmarked staging) = %v, want ErrNotStaging saying how to adopt", err)
	}
	if got := dirState(t, stagingPath); !slices.Equal(got, before) {
		t.Errorf("a refused merge changed staging: %v, was %v", got, before)
	}
	if got, want := tableKeys(t, mainPath), keysOf(logA, 10, 11, 12); !slices.Equal(got, want) {
		t.Errorf("main after a refused merge = %v, want %v", got, want)
	}

	res, err := Merge(ctx, mainPath, stagingPath, Options{AdoptStaging: true})
	if err != nil {
		t.Fatalf("Merge(AdoptStaging) = %v", err)
	}
	want := append(keysOf(logA, 10, 11, 12, 13, 14), keysOf(logB, 0, 1)...)
	slices.SortFunc(want, func(a, b key) int { return strings.Compare(a.URL, b.URL) })
	if got := tableKeys(t, mainPath); !slices.Equal(got, want) {
		t.Errorf("main after adoption and merge = %v, want %v", got, want)
	}
	if res.StagingRows != 5 || res.Inserted != 4 || res.Skipped != 1 || !res.Retire.DirectoryDeleted {
		t.Errorf("Merge(AdoptStaging) = %+v, want 5 staged, 4 inserted, 1 skipped, staging deleted", res)
	}
}

// TestAdoptStagingProvesNotMain: adoption refuses main itself, a path
// inside main, a path holding main, and a copy of main (same table id),
// and commits nothing then; a genuine staging table gets the marker.
func TestAdoptStagingProvesNotMain(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	mainPath := filepath.Join(dir, "lake", "main")
	appendTable(t, mainPath, lake.RoleMain, rows(logA, day0, 1, 2, 3))
	copyOfMain := filepath.Join(dir, "copy-of-main")
	if err := laketest.CloneTable(mainPath, copyOfMain); err != nil {
		t.Fatal(err)
	}
	inside := filepath.Join(mainPath, "nested")
	if err := rsstaging.Write(ctx, inside, rows(logA, day0, 4)); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link-to-main")
	if err := os.Symlink(mainPath, link); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, path, want string
	}{
		{"main itself", mainPath, "is the main table"},
		{"symlink to main", link, "is the main table"},
		{"inside main", inside, "inside the main table"},
		{"holds main", filepath.Join(dir, "lake"), "contains the main table"},
		{"copy of main", copyOfMain, "has the main table's id"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := dirState(t, tt.path)
			_, err := AdoptStaging(ctx, mainPath, tt.path, lake.Options{})
			if !errors.Is(err, ErrNotStaging) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("AdoptStaging(%s) = %v, want ErrNotStaging saying %q", tt.path, err, tt.want)
			}
			if got := dirState(t, tt.path); !slices.Equal(got, before) {
				t.Errorf("a refused adoption changed %s", tt.path)
			}
		})
	}

	staging := filepath.Join(dir, "staging")
	if err := rsstaging.Write(ctx, staging, rows(logA, day0, 4, 5)); err != nil {
		t.Fatal(err)
	}
	st, err := AdoptStaging(ctx, mainPath, staging, lake.Options{})
	if err != nil {
		t.Fatalf("AdoptStaging(rust staging) = %v", err)
	}
	snap, err := st.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	conf := snap.Metadata.Configuration
	if !st.Marked() || conf[lake.ConfigRole] != "staging" || conf[lake.ConfigAdoptedAt] == "" || snap.Version != 1 || len(snap.Files) != 1 {
		t.Errorf("adopted table: marked %v, version %d, %d files, configuration %v; want marked at version 1 with its file", st.Marked(), snap.Version, len(snap.Files), conf)
	}
	// Adopting again changes nothing.
	if _, err := AdoptStaging(ctx, mainPath, staging, lake.Options{}); err != nil {
		t.Errorf("AdoptStaging(adopted) = %v", err)
	}
	if v, _ := st.Delta().LatestVersion(ctx); v != 1 {
		t.Errorf("version after a second adoption = %d, want 1", v)
	}
}

// dirState lists every file under dir with its size, to tell it untouched.
func dirState(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		out = append(out, fmt.Sprintf("%s:%s:%d", p, info.ModTime(), info.Size()))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
