package storage_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certlake/certlake/internal/storage"
	"github.com/certlake/certlake/internal/storage/storagetest"
)

// TestCache: a local store's files are used in place; a remote object is
// downloaded once, reused, and evicted least recently used first once the
// cache is over its bound, but never while in use.
func TestCache(t *testing.T) {
	dir := storage.NewDir(t.TempDir())
	if err := storage.PutBytes(t.Context(), dir, "a/f.parquet", []byte("local")); err != nil {
		t.Fatal(err)
	}
	c, err := storage.NewCache(t.TempDir(), 25)
	if err != nil {
		t.Fatal(err)
	}
	p, release, err := c.Local(t.Context(), dir, "a/f.parquet", 5)
	if err != nil || p != dir.LocalPath("a/f.parquet") {
		t.Fatalf("Local(dir) = %q, %v; want the file itself", p, err)
	}
	release()

	srv := storagetest.Start(t)
	s, err := (&storage.Opener{S3: srv.Config()}).OpenURI(t.Context(), "k", "s3://"+srv.Bucket(t)+"/t")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"p/one.parquet", "p/two.parquet", "p/three.parquet"} {
		if err := storage.PutBytes(t.Context(), s, k, []byte(strings.Repeat("x", 10))); err != nil {
			t.Fatal(err)
		}
	}
	p1, rel1, err := c.Local(t.Context(), s, "p/one.parquet", 10)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p1); string(b) != strings.Repeat("x", 10) || filepath.Dir(p1) != c.Dir() {
		t.Fatalf("cached copy %s holds %q", p1, b)
	}
	again, rel, err := c.Local(t.Context(), s, "p/one.parquet", 10)
	if err != nil || again != p1 {
		t.Fatalf("second Local = %q, %v; want the same copy", again, err)
	}
	rel()
	_, rel2, _ := c.Local(t.Context(), s, "p/two.parquet", 10)
	rel2()
	_, rel3, _ := c.Local(t.Context(), s, "p/three.parquet", 10) // 30 bytes > 25: evict
	rel3()
	if _, err := os.Stat(p1); err != nil {
		t.Errorf("copy in use was evicted: %v", err)
	}
	rel1()
	if _, _, err := c.Local(t.Context(), s, "p/one.parquet", 11); err == nil {
		t.Error("Local with a size the object does not have succeeded")
	}
	ents, _ := os.ReadDir(c.Dir())
	if len(ents) > 3 {
		t.Errorf("cache holds %d files, want at most 3 after eviction", len(ents))
	}
}
