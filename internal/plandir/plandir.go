// Package plandir manages the directory of backfill and merge plans
// (lake.plan_dir): one subdirectory per workflow run, named by its plan key.
// A run removes its own plans when it ends; RemoveOlder removes those a run
// could not (a worker that died, a terminated workflow).
package plandir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Path is the directory of one run's plans under root.
func Path(root, key string) string {
	return filepath.Join(root, SafeName(key))
}

// SafeName turns a plan key (a workflow id and run id) into a directory
// name.
func SafeName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, s)
}

// Remove deletes one run's plans. A directory already gone is not an error.
func Remove(root, key string) error {
	if root == "" || SafeName(key) == "" {
		return fmt.Errorf("remove plans: plan dir %q, key %q", root, key)
	}
	if err := os.RemoveAll(Path(root, key)); err != nil {
		return fmt.Errorf("remove plans of %s: %w", key, err)
	}
	return nil
}

// Orphan is a run's plan directory left behind.
type Orphan struct {
	Path     string
	Modified time.Time
}

// RemoveOlder deletes the run directories under root whose newest file is
// older than retention (as of now) and returns them; with dryRun it only
// lists them. A missing root holds nothing.
func RemoveOlder(root string, retention time.Duration, now time.Time, dryRun bool) ([]Orphan, error) {
	ents, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read plan dir: %w", err)
	}
	var out []Orphan
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(root, e.Name())
		mod, err := newest(dir)
		if err != nil {
			return out, err
		}
		if now.Sub(mod) < retention {
			continue
		}
		if !dryRun {
			if err := os.RemoveAll(dir); err != nil {
				return out, fmt.Errorf("remove %s: %w", dir, err)
			}
		}
		out = append(out, Orphan{Path: dir, Modified: mod})
	}
	return out, nil
}

// newest is the latest modification time of dir and the files in it.
func newest(dir string) (time.Time, error) {
	var t time.Time
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.ModTime().After(t) {
			t = info.ModTime()
		}
		return nil
	})
	if err != nil {
		return t, fmt.Errorf("plan dir %s: %w", dir, err)
	}
	return t, nil
}
