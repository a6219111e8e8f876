package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/certlake/certlake/internal/config"
	"github.com/certlake/certlake/internal/ctlog"
	"github.com/certlake/certlake/internal/gaps"
	"github.com/certlake/certlake/internal/lake"
	"github.com/certlake/certlake/internal/options"
	"github.com/certlake/certlake/internal/planning"
)

// gapsView is the output of gaps --json. Ranges are inclusive.
type gapsView struct {
	Items        []gaps.Range `json:"items"`
	TotalEntries uint64       `json:"total_entries"`
	TotalRanges  int          `json:"total_ranges"`
	// TotalRequests and ETASeconds estimate the whole plan: logs are
	// fetched at once, so its ETA is the longest log's.
	TotalRequests uint64  `json:"total_requests"`
	ETASeconds    float64 `json:"eta_seconds"`
	// LatencySeconds is the assumed time of one request (--latency).
	LatencySeconds float64       `json:"latency_seconds"`
	Logs           []gapsLogView `json:"logs"`
	Skipped        []skippedView `json:"skipped"`
	Mode           string        `json:"mode"` // "catch-up" or "historical"
	From           *uint64       `json:"from,omitempty"`
	Ceiling        string        `json:"ceiling"` // state_file or tree_size
	MainPath       string        `json:"main_path"`
	StagingPath    string        `json:"staging_path,omitempty"`
	// StagingUnmarked: the staging table lacks certlake's marker (another
	// tool wrote it); its rows count as present, merging it needs
	// --adopt-staging.
	StagingUnmarked bool           `json:"staging_unmarked,omitempty"`
	Tables          map[string]int `json:"table_files"` // live data files read per table role
}

type gapsLogView struct {
	SourceURL string `json:"source_url"`
	Name      string `json:"name,omitempty"`
	Ceiling   uint64 `json:"ceiling"` // exclusive
	Ranges    int    `json:"ranges"`
	Entries   uint64 `json:"entries"`
	// Requests and ETASeconds are the estimate (internal/estimate) of
	// fetching Entries at the configured limits.
	Requests   uint64  `json:"requests"`
	ETASeconds float64 `json:"eta_seconds"`
	// Kind is "static-ct" (one request per data tile) or "rfc6962".
	// KindKnown is false for a log of the state file found neither in the
	// configured logs nor in a local log list (offline, the remote list
	// is not read): it is counted as an RFC 6962 log of no operator.
	Kind      string `json:"kind"`
	KindKnown bool   `json:"kind_known"`
	// EntriesPerRequest is what one request brings: 256 per tile, or the
	// smaller of ct.batch_size and what the log answers (PerRequestFrom:
	// "tile", "batch_size", or "probed" with --probe).
	EntriesPerRequest uint64  `json:"entries_per_request"`
	PerRequestFrom    string  `json:"entries_per_request_from"`
	RateLimit         float64 `json:"rate_limit"` // requests/s; 0: unlimited
	Concurrency       int     `json:"concurrency"`
	Operator          string  `json:"operator,omitempty"`
	// Verified logs' requests include their proofs (hash tiles,
	// inclusion and consistency proofs).
	Verified bool `json:"verified"`
	// Bound names what limits the log: rate, concurrency, window or
	// operator.
	Bound string `json:"bound,omitempty"`
}

type skippedView struct {
	SourceURL string `json:"source_url"`
	Reason    string `json:"reason"`
}

// planFlags are the flags that choose a plan, shared by gaps and coverage.
type planFlags struct {
	fs        *pflag.FlagSet
	noStaging *bool
	from      *uint64
	logs      *string
	frontier  *bool
	latency   *time.Duration
	probe     *bool
}

func addPlanFlags(fs *pflag.FlagSet) *planFlags {
	keyFlag(fs, "main", "lake.main_path", "main Delta table (default lake.main_path)")
	keyFlag(fs, "staging-path", "lake.staging_path", "staging Delta table whose rows count as present (default lake.staging_path, when it exists)")
	pf := &planFlags{fs: fs}
	pf.noStaging = fs.Bool("no-staging", false, "ignore the staging table")
	keyFlag(fs, "state-file", "ct.state_file", "live ingester's state file (default ct.state_file)")
	keyFlag(fs, "ceiling", "backfill.ceiling", "ceiling source: state_file (offline) or tree_size (asks each log; default backfill.ceiling)")
	pf.from = fs.Uint64("from", 0, "historical mode: plan every missing index from N up")
	pf.logs = fs.String("logs", "", "only logs whose URL (or configured name) contains one of these comma-separated substrings")
	pf.frontier = fs.Bool("include-frontier", false, "also plan [max+1, ceiling-1] per log (only while the live ingester is stopped)")
	pf.latency = fs.Duration("latency", 250*time.Millisecond, "assumed time of one request, for the estimate: a log's requests/s is at most its concurrency / latency")
	pf.probe = fs.Bool("probe", false, "ask each RFC 6962 log for one batch to learn how many entries it answers per request (Google's logs: 32); default on with --ceiling tree_size")
	return pf
}

// plan computes the plan the flags choose, with its estimate.
func (pf *planFlags) plan(ctx context.Context, cfg *config.Config) (*gapsView, error) {
	opts := gaps.Options{IncludeFrontier: *pf.frontier}
	if pf.fs.Changed("from") {
		opts.From = pf.from
	}
	v, err := planGaps(ctx, cfg, pf.staging(cfg), *pf.logs, opts)
	if err != nil {
		return nil, err
	}
	probe := *pf.probe
	if !pf.fs.Changed("probe") {
		probe = cfg.Backfill.Ceiling == config.CeilingTreeSize
	}
	if err := estimatePlan(ctx, cfg, v, *pf.latency, probe); err != nil {
		return nil, err
	}
	return v, nil
}

// staging is the staging table whose rows count as present, or "".
func (pf *planFlags) staging(cfg *config.Config) string {
	if *pf.noStaging {
		return ""
	}
	return cfg.Lake.StagingPath
}

// runGaps prints the backfill plan: the missing ranges of every log, as
// BackfillWorkflow's DetectGaps would plan them, computed locally.
func gapsCommand(c *cli) *cobra.Command {
	cmd, fs := newCommand("gaps", "print the backfill plan (missing ranges per log, requests, ETA)")
	cmd.GroupID = groupLocal
	pf := addPlanFlags(fs)
	asJSON := fs.Bool("json", false, "print the plan as JSON")
	maxRanges := fs.Int("max-ranges", 10, "ranges printed per log in the text output (0: all)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		if len(args) > 0 {
			return usageError("gaps takes no arguments, got %q", args)
		}
		cfg, err := loadConfig(fs)
		if err != nil {
			return err
		}
		v, err := pf.plan(ctx, cfg)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(c.stdout, v)
		}
		printGaps(c.stdout, v, *maxRanges)
		return nil
	}
	return cmd
}

// planGaps resolves the logs and their ceilings and runs gap detection over
// main (and staging when it exists) through internal/planning, as the
// backfill's ResolveLogs and DetectGaps activities do.
func planGaps(ctx context.Context, cfg *config.Config, staging, filter string, opts gaps.Options) (*gapsView, error) {
	v := &gapsView{
		Items: []gaps.Range{}, Logs: []gapsLogView{}, Skipped: []skippedView{},
		Mode: "catch-up", From: opts.From, Ceiling: cfg.Backfill.Ceiling,
		MainPath: cfg.Lake.MainPath, Tables: map[string]int{},
	}
	if opts.From != nil {
		v.Mode = "historical"
	}
	resolved, err := resolveLogs(ctx, cfg, filter)
	if err != nil {
		return nil, err
	}
	for _, s := range resolved.Skipped {
		v.Skipped = append(v.Skipped, skippedView{s.URL, s.Reason})
	}
	var targets []planning.Target
	for _, t := range resolved.Logs {
		if opts.From != nil && *opts.From >= t.Ceiling {
			v.Skipped = append(v.Skipped, skippedView{t.URL, fmt.Sprintf("from %d is at or above its ceiling %d", *opts.From, t.Ceiling)})
			continue
		}
		targets = append(targets, t)
		v.Logs = append(v.Logs, gapsLogView{SourceURL: t.URL, Name: t.Name, Ceiling: t.Ceiling,
			Kind: kindOf(t.Static), KindKnown: t.Known, Operator: t.Operator})
	}
	if len(targets) == 0 {
		return nil, errors.New("no log to plan: " + skippedSummary(v.Skipped, filter))
	}
	// Main's keys come from its key index, which this run extends with
	// the files it lacks (see gaps.DetectLake).
	store := tableOptions(cfg, lake.Options{})
	d, err := planning.Detect(ctx, planning.Tables{MainPath: cfg.Lake.MainPath, StagingPath: staging,
		Workers: cfg.Lake.DuckDB.Threads, Storage: store.Storage, Scratch: store.Scratch},
		planning.Ceilings(targets), opts)
	if err != nil {
		return nil, err
	}
	v.Tables["main"] = d.Stats.MainFiles
	if staging != "" {
		v.StagingPath, v.Tables["staging"], v.StagingUnmarked = staging, d.Stats.StagingFiles, d.StagingUnmarked
	}
	v.Items = d.Ranges
	per := map[string]*gapsLogView{}
	for i := range v.Logs {
		per[v.Logs[i].SourceURL] = &v.Logs[i]
	}
	for _, r := range d.Ranges {
		v.TotalEntries += r.Len()
		if p := per[r.SourceURL]; p != nil {
			p.Ranges++
			p.Entries += r.Len()
		}
	}
	v.TotalRanges = len(d.Ranges)
	return v, nil
}

func kindOf(static bool) string {
	if static {
		return "static-ct"
	}
	return "rfc6962"
}

// resolveLogs lists the logs to plan and their ceilings as the backfill's
// ResolveLogs does. With state_file ceilings the log list is read only
// from a local file: that mode needs no network (a remote list only adds
// names and kinds, and logs the state file lacks, which it skips).
func resolveLogs(ctx context.Context, cfg *config.Config, filter string) (planning.Resolved, error) {
	logs := options.Logs(cfg)
	catalog, err := logs.List(ctx, ctlog.CatalogOptions{Offline: cfg.Backfill.Ceiling == config.CeilingStateFile})
	if err != nil {
		return planning.Resolved{}, err
	}
	res, err := logs.Resolve(ctx, catalog, planning.Request{Filter: filter, Ceiling: cfg.Backfill.Ceiling}, nil)
	if errors.Is(err, planning.ErrNoLogMatches) {
		return res, fmt.Errorf("no log to plan: no log matches --logs %q", filter)
	}
	return res, err
}

func skippedSummary(s []skippedView, filter string) string {
	if len(s) == 0 {
		if filter != "" {
			return fmt.Sprintf("no log matches --logs %q", filter)
		}
		return "the state file lists no log"
	}
	msg := ""
	for i, k := range s {
		if i > 0 {
			msg += "; "
		}
		msg += k.SourceURL + ": " + k.Reason
	}
	return msg
}

// liveFiles lists the live files of the table at path (none when there is
// no table), and unmarked when a staging table lacks certlake's marker
// (another tool wrote it): it is read as staging all the same.
func liveFiles(ctx context.Context, cfg *config.Config, path string, role lake.Role) (files []lake.FileInfo, unmarked bool, err error) {
	t, _, files, err := lake.LiveFiles(ctx, path, tableOptions(cfg, lake.Options{Role: role, AcceptUnmarked: role == lake.RoleStaging}))
	if t == nil || err != nil {
		return nil, false, err
	}
	// A remote table's files are read from a local copy (DuckDB here has
	// no httpfs); the copies stay in the scratch cache.
	if _, err := t.Localize(ctx, files); err != nil {
		return nil, false, err
	}
	return files, role == lake.RoleStaging && !t.Marked(), nil
}

func printGaps(w io.Writer, v *gapsView, maxRanges int) {
	fmt.Fprintf(w, "plan (%s mode", v.Mode)
	if v.From != nil {
		fmt.Fprintf(w, " from %d", *v.From)
	}
	fmt.Fprintf(w, ", ceilings from %s) over %s (%d files)", v.Ceiling, v.MainPath, v.Tables["main"])
	if v.StagingPath != "" {
		fmt.Fprintf(w, " and staging %s (%d files)", v.StagingPath, v.Tables["staging"])
	}
	fmt.Fprintf(w, ":\n%d missing entries in %d ranges\n\n", v.TotalEntries, v.TotalRanges)
	if v.StagingUnmarked {
		fmt.Fprintf(w, "note: staging %s has no certlake marker (another tool wrote it): its rows count as present; merge it with --adopt-staging\n\n", v.StagingPath)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "log\tkind\tceiling\tranges\tmissing\trequests\tper req\trate/s\tETA\t")
	for _, l := range v.Logs {
		rate := "unlimited"
		if l.RateLimit > 0 {
			rate = strconv.FormatFloat(l.RateLimit, 'g', 4, 64)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t\n", l.SourceURL, l.Kind, l.Ceiling, l.Ranges, l.Entries,
			l.Requests, l.EntriesPerRequest, rate, humanDuration(time.Duration(l.ETASeconds*float64(time.Second))))
	}
	tw.Flush()
	fmt.Fprintf(w, "\ntotal: %d requests, about %s (logs fetched at once by one worker at the configured limits, %s per request assumed; retries and 429s not counted)\n",
		v.TotalRequests, humanDuration(time.Duration(v.ETASeconds*float64(time.Second))), time.Duration(v.LatencySeconds*float64(time.Second)))
	unknown := 0
	for _, l := range v.Logs {
		if !l.KindKnown {
			unknown++
		}
	}
	if unknown > 0 {
		fmt.Fprintf(w, "note: %d logs are neither configured (ct.custom_logs, ct.static_logs) nor in a local log list: counted as RFC 6962 logs of no operator; point ct.log_list_url at a local copy of the list, or use --ceiling tree_size\n", unknown)
	}
	for _, l := range v.Logs {
		if l.Ranges == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s:\n", l.SourceURL)
		n := 0
		for _, r := range v.Items {
			if r.SourceURL != l.SourceURL {
				continue
			}
			if maxRanges > 0 && n == maxRanges {
				fmt.Fprintf(w, "  ... and %d more (--max-ranges 0 or --json for all)\n", l.Ranges-n)
				break
			}
			fmt.Fprintf(w, "  [%d, %d]  %d entries\n", r.Start, r.End, r.Len())
			n++
		}
	}
	for _, s := range v.Skipped {
		fmt.Fprintf(w, "\nskipped %s: %s", s.SourceURL, s.Reason)
	}
	if len(v.Skipped) > 0 {
		fmt.Fprintln(w)
	}
}
