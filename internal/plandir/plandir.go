// Package plandir manages the store of backfill and merge plans
// (lake.plan_dir, a directory or a prefix in a bucket): one "directory" per
// workflow run, named by its plan key. A run removes its own plans when it
// ends; RemoveOlder removes those a run could not (a worker that died, a
// terminated workflow).
package plandir

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/certlake/certlake/internal/storage"
)

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

// Remove deletes the objects of one run's plans from s, the plan store's
// root. Plans already gone are not an error.
func Remove(ctx context.Context, s storage.Store, key string) error {
	name := SafeName(key)
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("remove plans: bad plan key %q", key)
	}
	objs, err := s.List(ctx, name+"/", "", 0)
	if err != nil {
		return fmt.Errorf("list plans of %s: %w", key, err)
	}
	for _, o := range objs {
		if err := s.Delete(ctx, o.Key); err != nil {
			return fmt.Errorf("remove plans of %s: %w", key, err)
		}
	}
	return nil
}

// Orphan is a run's plans left behind.
type Orphan struct {
	Name     string    // the run's directory under the plan store
	Objects  int       // plan files in it
	Modified time.Time // of its newest file
}

// RemoveOlder deletes the runs' plans in s whose newest file is older than
// retention (as of now) and returns them; with dryRun it only lists them.
// A run still going rewrites no plan file, so retention must exceed the
// longest backfill or merge (the default of table vacuum, 7 days, is the
// Delta vacuum's).
func RemoveOlder(ctx context.Context, s storage.Store, retention time.Duration, now time.Time, dryRun bool) ([]Orphan, error) {
	objs, err := s.List(ctx, "", "", 0)
	if err != nil {
		return nil, fmt.Errorf("list plans: %w", err)
	}
	runs := map[string]*Orphan{}
	keys := map[string][]string{}
	for _, o := range objs {
		name, _, ok := strings.Cut(o.Key, "/")
		if !ok {
			continue // not a run's plan
		}
		r := runs[name]
		if r == nil {
			r = &Orphan{Name: name}
			runs[name] = r
		}
		r.Objects++
		if o.ModTime.After(r.Modified) {
			r.Modified = o.ModTime
		}
		keys[name] = append(keys[name], o.Key)
	}
	var out []Orphan
	for _, name := range sortedNames(runs) {
		r := runs[name]
		if now.Sub(r.Modified) < retention {
			continue
		}
		for _, k := range keys[name] {
			if dryRun {
				break
			}
			if err := s.Delete(ctx, k); err != nil {
				return out, fmt.Errorf("remove plans %s: %w", name, err)
			}
		}
		out = append(out, *r)
	}
	return out, nil
}

func sortedNames(m map[string]*Orphan) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
