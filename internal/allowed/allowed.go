// Package allowed decides where certlake may create, write and delete: under
// the prefixes of lake.allowed_locations and nowhere else. A workflow input
// (staging_path) or a CLI flag names a location; anyone who can start a
// workflow on the task queue can name any, so every such location is
// resolved and checked here before anything is created or deleted there.
//
// Local paths are made absolute and cleaned, a ".." component is refused
// outright (lexical cleaning and the kernel disagree about ".." after a
// symbolic link), and symbolic links are resolved on the longest part of the
// path that exists, so a link pointing out of an allowed directory is
// outside. s3:// locations are compared by bucket and whole key segments.
package allowed

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/certlake/certlake/internal/storage"
)

// Key is the configuration key that lists the allowed locations.
const Key = "lake.allowed_locations"

// ErrOutside is the error of a location outside every allowed prefix.
var ErrOutside = errors.New("outside the allowed locations")

// List is a set of resolved location prefixes. The zero List allows
// nothing.
type List struct {
	roots []storage.Location
}

// New parses and resolves the allowed prefixes; errors name their entry.
func New(entries []string) (*List, error) {
	l := &List{}
	for i, e := range entries {
		key := fmt.Sprintf("%s[%d]", Key, i)
		loc, err := resolve(key, e)
		if err != nil {
			return nil, err
		}
		l.roots = append(l.roots, loc)
	}
	return l, nil
}

// Defaults are the prefixes used when lake.allowed_locations is empty: the
// locations holding the main and the staging table (their parents), so the
// usual layout (/lake/main, /lake/staging, /lake/.certlake-plans) works
// unchanged. Empty arguments are skipped.
func Defaults(mainPath, stagingPath string) []string {
	var out []string
	for _, p := range []string{mainPath, stagingPath} {
		if p == "" {
			continue
		}
		loc, err := storage.ParseLocation("", p)
		if err != nil {
			continue // reported by the config's own validation
		}
		if s := loc.Parent().String(); !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// Check resolves raw (given as key: "staging_path", "--path", ...) and
// returns it when it lies under an allowed prefix. Outside, the error wraps
// ErrOutside and names the location and the setting to change.
func (l *List) Check(key, raw string) (storage.Location, error) {
	loc, err := resolve(key, raw)
	if err != nil {
		return storage.Location{}, err
	}
	for _, r := range l.roots {
		if contains(r, loc) {
			return loc, nil
		}
	}
	return storage.Location{}, fmt.Errorf("%s %s is %w (%s: %s): add it, or a location holding it, to %s to let certlake create, write and delete there",
		key, loc, ErrOutside, Key, l, Key)
}

// String lists the prefixes.
func (l *List) String() string {
	if len(l.roots) == 0 {
		return "none"
	}
	s := make([]string, len(l.roots))
	for i, r := range l.roots {
		s[i] = r.String()
	}
	return strings.Join(s, ", ")
}

// resolve parses raw and, for a local path, makes it absolute with its
// existing part's symbolic links resolved.
func resolve(key, raw string) (storage.Location, error) {
	loc, err := storage.ParseLocation(key, raw)
	if err != nil {
		return storage.Location{}, err
	}
	if !loc.IsLocal() {
		return loc, nil
	}
	if slices.Contains(strings.Split(filepath.ToSlash(raw), "/"), "..") {
		return storage.Location{}, fmt.Errorf("%s %q holds a \"..\" component: give the location without it", key, raw)
	}
	abs, err := filepath.Abs(loc.Dir)
	if err != nil {
		return storage.Location{}, fmt.Errorf("%s %q: %w", key, raw, err)
	}
	real, err := realPath(abs)
	if err != nil {
		return storage.Location{}, fmt.Errorf("%s %q: %w", key, raw, err)
	}
	loc.Dir = real
	return loc, nil
}

// realPath resolves the symbolic links of the longest existing prefix of
// the absolute, clean path p and appends the rest.
func realPath(p string) (string, error) {
	var rest []string
	for {
		real, err := filepath.EvalSymlinks(p)
		if err == nil {
			return filepath.Join(append([]string{real}, rest...)...), nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		// A dangling link would be followed by whatever creates the
		// missing part: it cannot be judged, so it is refused.
		if fi, lerr := os.Lstat(p); lerr == nil && fi.Mode()&os.ModeSymlink != 0 {
			return "", fmt.Errorf("%s is a symbolic link to a missing target", p)
		}
		parent := filepath.Dir(p)
		if parent == p {
			return "", err
		}
		rest = append([]string{filepath.Base(p)}, rest...)
		p = parent
	}
}

// contains reports whether loc is root or lies below it, by whole path or
// key segments.
func contains(root, loc storage.Location) bool {
	if root.IsLocal() != loc.IsLocal() {
		return false
	}
	if !root.IsLocal() {
		return root.Contains(loc)
	}
	rel, err := filepath.Rel(root.Dir, loc.Dir)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}
