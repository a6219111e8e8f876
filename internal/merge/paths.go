package merge

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/certlake/certlake/internal/storage"
)

// ErrNotStaging: the staging path is not something merge may read from and
// later delete: not a marked certlake staging table, or the main table itself,
// or a directory nested in (or holding) the main table.
var ErrNotStaging = errors.New("merge: not a certlake staging table")

// ValidatePaths checks that stagingPath can be merged into mainPath and
// later deleted without touching main: both are non-empty, and after
// cleaning and resolving them to absolute paths (symlinks of the existing
// parts included) neither equals nor contains the other. The error wraps
// ErrNotStaging.
func ValidatePaths(mainPath, stagingPath string) error {
	if strings.TrimSpace(stagingPath) == "" {
		return fmt.Errorf("%w: empty staging path", ErrNotStaging)
	}
	if strings.TrimSpace(mainPath) == "" {
		return fmt.Errorf("%w: empty main path", ErrNotStaging)
	}
	ml, merr := storage.ParseLocation("lake.main_path", mainPath)
	sl, serr := storage.ParseLocation("staging_path", stagingPath)
	if merr != nil {
		return merr
	}
	if serr != nil {
		return fmt.Errorf("%w: %w", ErrNotStaging, serr)
	}
	if !ml.IsLocal() || !sl.IsLocal() {
		switch {
		case ml.String() == sl.String():
			return fmt.Errorf("%w: staging path %q is the main table %q", ErrNotStaging, stagingPath, mainPath)
		case ml.Contains(sl):
			return fmt.Errorf("%w: staging path %q is inside the main table %q", ErrNotStaging, stagingPath, mainPath)
		case sl.Contains(ml):
			return fmt.Errorf("%w: staging path %q contains the main table %q", ErrNotStaging, stagingPath, mainPath)
		case !sl.IsLocal() && sl.Prefix == "":
			return fmt.Errorf("%w: staging path %q is a whole bucket", ErrNotStaging, stagingPath)
		}
		return nil
	}
	mainPath, stagingPath = ml.Dir, sl.Dir // file:/// URIs as paths
	m, err := canonical(mainPath)
	if err != nil {
		return fmt.Errorf("main path %q: %w", mainPath, err)
	}
	s, err := canonical(stagingPath)
	if err != nil {
		return fmt.Errorf("staging path %q: %w", stagingPath, err)
	}
	switch {
	case s == m:
		return fmt.Errorf("%w: staging path %q is the main table %q", ErrNotStaging, stagingPath, mainPath)
	case within(s, m):
		return fmt.Errorf("%w: staging path %q is inside the main table %q", ErrNotStaging, stagingPath, mainPath)
	case within(m, s):
		return fmt.Errorf("%w: staging path %q contains the main table %q", ErrNotStaging, stagingPath, mainPath)
	case s == string(filepath.Separator):
		return fmt.Errorf("%w: staging path %q is the file-system root", ErrNotStaging, stagingPath)
	}
	return nil
}

// within reports whether path p lies strictly inside directory dir (both
// clean and absolute).
func within(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	if err != nil {
		return false
	}
	return rel != "." && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// canonical makes p absolute and clean, and resolves symlinks in its longest
// existing prefix, so that "a/../b", "./b" and a link to b compare equal.
func canonical(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	// Resolve the existing part; the rest (a table not created yet) is kept
	// as written.
	head, tail := abs, ""
	for {
		if _, err := os.Lstat(head); err == nil {
			break
		}
		parent := filepath.Dir(head)
		if parent == head {
			return abs, nil
		}
		tail = filepath.Join(filepath.Base(head), tail)
		head = parent
	}
	resolved, err := filepath.EvalSymlinks(head)
	if err != nil {
		return "", err
	}
	return filepath.Join(resolved, tail), nil
}
