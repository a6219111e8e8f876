package storagetest

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/certlake/certlake/internal/storage"
)

// Upload copies the local directory dir into s, file by file, as a user
// copying a table into a bucket would (no directory markers).
func Upload(t testing.TB, dir string, s storage.Store) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return storage.PutBytes(t.Context(), s, filepath.ToSlash(rel), b)
	})
	if err != nil {
		t.Fatalf("upload %s: %v", dir, err)
	}
}
