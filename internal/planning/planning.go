// Package planning decides what a backfill fetches: which logs, each up to
// which ceiling, and their missing ranges over main and staging. The
// backfill's ResolveLogs and DetectGaps activities and `starter gaps` both
// call it, so a preview is the plan the workflow runs.
package planning

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/certlake/certlake/internal/config"
	"github.com/certlake/certlake/internal/ctlog"
	"github.com/certlake/certlake/internal/statefile"
)

// Ceiling modes: where a log's exclusive ceiling comes from.
const (
	CeilingStateFile = config.CeilingStateFile // the live ingester's current_index
	CeilingTreeSize  = config.CeilingTreeSize  // the log's tree size (read-only logs: their final one)
)

// Errors of Resolve that callers report as bad input.
var (
	// ErrNoLogMatches: the filter matched no log.
	ErrNoLogMatches = errors.New("no log matches")
	// ErrCeilingMode: the ceiling mode is neither state_file nor tree_size.
	ErrCeilingMode = errors.New("unknown ceiling mode")
)

// Logs are the log catalog (which logs, how to read each) and the live
// ingester's state file, the two sources of a plan's logs and ceilings.
type Logs struct {
	*ctlog.Catalog
	StateFile string // the live ingester's state file
}

// Request selects the logs of a plan.
type Request struct {
	Filter  string // comma-separated substrings of URL or name; empty: all
	Ceiling string // CeilingStateFile or CeilingTreeSize
}

// Target is a log to plan with its exclusive ceiling.
type Target struct {
	ctlog.Log
	Ceiling uint64 // exclusive: nothing at or above is planned
	Window  int    // FetchRange window of its override; 0 = default
	// Known: the catalog lists the log (a log of the state file only is
	// read as RFC 6962 with the default limits).
	Known bool
}

// Skipped is a log left out of a plan, with the reason.
type Skipped struct {
	URL    string
	Reason string
}

// Resolved is the logs of a plan, sorted by URL.
type Resolved struct {
	Logs    []Target
	Skipped []Skipped
}

// TreeSizeFunc asks a log for its tree size.
type TreeSizeFunc func(ctx context.Context, l ctlog.Log) (uint64, error)

// Resolve lists the logs of a plan from catalog (see ctlog.Catalog.List) with their
// ceilings. With state_file ceilings the logs are the catalog's and the
// state file's (a log the live ingester reads is planned even when the
// catalog does not list it: RFC 6962, default limits); a catalog log
// without a state-file entry is skipped. With tree_size ceilings they are
// the catalog's, each asked by treeSize (nil: a new ctlog reader); one that
// does not answer is skipped. A read-only log's final tree size caps its
// ceiling in both modes.
func (s *Logs) Resolve(ctx context.Context, catalog []ctlog.Log, req Request, treeSize TreeSizeFunc) (Resolved, error) {
	var res Resolved
	var state statefile.State
	switch req.Ceiling {
	case CeilingStateFile:
		var err error
		if state, err = statefile.Load(s.StateFile); err != nil {
			return res, fmt.Errorf("ceiling from state file: %w", err)
		}
	case CeilingTreeSize:
		if treeSize == nil {
			treeSize = func(ctx context.Context, l ctlog.Log) (uint64, error) { return s.Reader(l).TreeSize(ctx) }
		}
	default:
		return res, fmt.Errorf("%w: ceiling must be %q or %q, got %q", ErrCeilingMode, CeilingStateFile, CeilingTreeSize, req.Ceiling)
	}
	known := make(map[string]bool, len(catalog))
	for _, l := range catalog {
		known[l.URL] = true
	}
	if req.Ceiling == CeilingStateFile {
		catalog = s.withStateLogs(catalog, state)
	}
	logs := ctlog.Filter(catalog, req.Filter)
	if len(logs) == 0 && req.Filter != "" {
		return res, fmt.Errorf("%w logs filter %q", ErrNoLogMatches, req.Filter)
	}
	for _, l := range logs {
		ceiling, reason, err := s.ceiling(ctx, l, req.Ceiling, state, treeSize)
		if err != nil {
			return res, err
		}
		if reason != "" {
			res.Skipped = append(res.Skipped, Skipped{URL: l.URL, Reason: reason})
			continue
		}
		if l.ReadOnlyTreeSize != nil && *l.ReadOnlyTreeSize < ceiling {
			ceiling = *l.ReadOnlyTreeSize
		}
		res.Logs = append(res.Logs, Target{Log: l, Ceiling: ceiling, Window: s.Window(l.URL), Known: known[l.URL]})
	}
	return res, nil
}

// ceiling is l's ceiling, or the reason it has none.
func (s *Logs) ceiling(ctx context.Context, l ctlog.Log, mode string, state statefile.State, treeSize TreeSizeFunc) (uint64, string, error) {
	if mode == CeilingStateFile {
		c, ok := state.Ceiling(l.URL)
		if !ok {
			return 0, fmt.Sprintf("no entry in state file %s (use ceiling tree_size to backfill it)", s.StateFile), nil
		}
		return c, "", nil
	}
	n, err := treeSize(ctx, l)
	if err != nil {
		if ctx.Err() != nil {
			return 0, "", ctx.Err()
		}
		return 0, fmt.Sprintf("tree size: %v", err), nil
	}
	return n, "", nil
}

// withStateLogs adds the state file's logs the catalog lacks, sorted by URL.
func (s *Logs) withStateLogs(catalog []ctlog.Log, state statefile.State) []ctlog.Log {
	known := make(map[string]bool, len(catalog))
	for _, l := range catalog {
		known[l.URL] = true
	}
	out := append([]ctlog.Log(nil), catalog...)
	for u := range state.Logs {
		if known[u] {
			continue
		}
		out = append(out, s.Tune(ctlog.Log{URL: u}))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].URL < out[j].URL })
	return out
}

// AllAtOrAbove says whether from is at or above every target's ceiling:
// historical mode would then plan nothing (gaps.CheckFrom names them).
func AllAtOrAbove(from uint64, targets []Target) bool {
	for _, t := range targets {
		if from < t.Ceiling {
			return false
		}
	}
	return true
}
