// Package planning decides what a backfill fetches: which logs, each up to
// which ceiling, and their missing ranges over main and staging. The
// backfill's ResolveLogs and DetectGaps activities and `starter gaps` both
// call it, so a preview is the plan the workflow runs.
package planning

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/certlake/certlake/internal/config"
	"github.com/certlake/certlake/internal/ctlog"
	"github.com/certlake/certlake/internal/record"
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

// Logs say where logs come from and how to read them.
type Logs struct {
	LogListURL     string              // v3 log list (URL or path); empty = none
	IncludeRetired bool                // keep retired logs from the list
	Custom         []ctlog.ConfigLog   // custom_logs (RFC 6962)
	Static         []ctlog.ConfigLog   // static_logs (static-ct-api monitoring prefixes)
	StateFile      string              // the live ingester's state file
	Client         ctlog.Config        // HTTP, retries, rate limits
	Overrides      map[string]Override // per-log tuning by lower-cased normalized URL
	Verify         bool                // prove what logs serve (ct.verify); an Override may turn it off
}

// Override tunes one log (ct.logs.<url>); zero fields keep the defaults.
type Override struct {
	RateLimit   float64 // requests per second
	Burst       int
	Concurrency int   // requests in flight
	Window      int   // FetchRange activities in flight
	Verify      *bool // overrides Logs.Verify; nil inherits
}

// Apply returns l tuned by o.
func (o Override) Apply(l ctlog.Log) ctlog.Log {
	if o.RateLimit != 0 {
		l.RateLimit = o.RateLimit
	}
	if o.Burst > 0 {
		l.Burst = o.Burst
	}
	if o.Concurrency > 0 {
		l.Concurrency = o.Concurrency
	}
	if o.Verify != nil {
		l.Unverified = !*o.Verify
	}
	return l
}

// Override returns the override of the log at u, if any.
func (s *Logs) Override(u string) (Override, bool) {
	o, ok := s.Overrides[strings.ToLower(record.NormalizeURL(u))]
	return o, ok
}

// Window is the FetchRange window of l's override; 0 keeps the default.
func (s *Logs) Window(l ctlog.Log) int {
	if o, ok := s.Override(l.URL); ok && o.Window > 0 {
		return o.Window
	}
	return 0
}

// CatalogOptions tune Catalog.
type CatalogOptions struct {
	// Offline reads the log list only when it is a local file, and a list
	// that cannot be read only costs names and kinds: previews from the
	// state file need no network.
	Offline bool
}

// Catalog returns every known log: the log list plus custom and static
// logs, verification and per-log overrides applied, sorted by URL. A log
// list that cannot be loaded wraps ctlog.ErrLogList.
func (s *Logs) Catalog(ctx context.Context, opts CatalogOptions) ([]ctlog.Log, error) {
	var logs []ctlog.Log
	if s.LogListURL != "" && (!opts.Offline || isLocal(s.LogListURL)) {
		listed, err := ctlog.LoadList(ctx, s.LogListURL, ctlog.ListOptions{
			IncludeRetired: s.IncludeRetired, HTTPClient: s.Client.HTTPClient, UserAgent: s.Client.UserAgent,
			Logger: s.Client.Logger})
		if err != nil && !opts.Offline {
			return nil, err
		}
		logs = listed
	}
	logs = ctlog.AddConfigLogs(logs, s.Custom, s.Static)
	for i, l := range logs {
		l.Unverified = !s.Verify
		if o, ok := s.Override(l.URL); ok {
			l = o.Apply(l)
		}
		logs[i] = l
	}
	sort.Slice(logs, func(i, j int) bool { return logs[i].URL < logs[j].URL })
	return logs, nil
}

func isLocal(list string) bool {
	u, err := url.Parse(list)
	return err == nil && u.Scheme != "http" && u.Scheme != "https"
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

// Resolve lists the logs of a plan from catalog (see Catalog) with their
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
			treeSize = func(ctx context.Context, l ctlog.Log) (uint64, error) { return ctlog.New(l, s.Client).TreeSize(ctx) }
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
		res.Logs = append(res.Logs, Target{Log: l, Ceiling: ceiling, Window: s.Window(l), Known: known[l.URL]})
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
		l := ctlog.Log{URL: u, Unverified: !s.Verify}
		if o, ok := s.Override(u); ok {
			l = o.Apply(l)
		}
		out = append(out, l)
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
