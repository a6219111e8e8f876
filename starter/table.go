package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/certlake/certlake/internal/config"
	"github.com/certlake/certlake/internal/delta"
	"github.com/certlake/certlake/internal/keyindex"
	"github.com/certlake/certlake/internal/lake"
	"github.com/certlake/certlake/internal/options"
	"github.com/certlake/certlake/internal/plandir"
	"github.com/certlake/certlake/internal/storage"
)

// tableCommand groups the commands that read or clean one Delta table.
func tableCommand(c *cli) *cobra.Command {
	cmd := parentCommand(c, "table", "describe or check a Delta table, or vacuum files crashed writers left")
	cmd.GroupID = groupLocal
	cmd.AddCommand(tableDescribeCommand(c), tableCheckCommand(c), tableVacuumCommand(c))
	return cmd
}

// tableView is what table describe prints; with --json, exactly this object.
type tableView struct {
	Path             string            `json:"path"`
	Version          int64             `json:"version"`
	Protocol         protocolView      `json:"protocol"`
	TableID          string            `json:"table_id"`
	PartitionColumns []string          `json:"partition_columns"`
	Configuration    map[string]string `json:"configuration"`
	Schema           []fieldView       `json:"schema"`
	NumFiles         int               `json:"num_files"`
	SizeBytes        int64             `json:"size_bytes"`
	// NumRows comes from the add actions' numRecords; files without it are
	// counted from their Parquet footers. It is null only when such a file
	// cannot be read (NumRowsError says why).
	NumRows *int64 `json:"num_rows"`
	// NumRowsSource is "stats", "footers" (no file has numRecords),
	// "stats+footers" (some have), or "count" (--count: every footer).
	NumRowsSource string     `json:"num_rows_source,omitempty"`
	NumRowsError  string     `json:"num_rows_error,omitempty"`
	Files         []fileView `json:"files"`
	// Certstream is true for a table with the certstream schema; Logs is
	// then filled (unless --no-logs).
	Certstream      bool   `json:"certstream"`
	NotCertstreamBy string `json:"not_certstream_reason,omitempty"`
	Role            string `json:"role,omitempty"` // "main" or "staging"
	// StagingUnmarked: a staging table without certlake's marker (another
	// tool wrote it, e.g. certstream-server-rust --staging-path); merging
	// it needs --adopt-staging.
	StagingUnmarked bool      `json:"staging_unmarked,omitempty"`
	AsDERType       string    `json:"as_der_type,omitempty"` // "string" (base64) or "binary"
	Logs            []logView `json:"logs,omitempty"`
	// KeyIndex says how much of the table main's key index covers (see
	// internal/keyindex); nil when the table has none.
	KeyIndex *keyIndexView `json:"key_index,omitempty"`
}

// keyIndexView counts the live files with rows that the key index covers.
type keyIndexView struct {
	Files           int `json:"files"`            // live files with rows
	Indexed         int `json:"indexed"`          // of those, with an entry
	SkippedSegments int `json:"skipped_segments"` // unreadable or of an earlier table
}

type protocolView struct {
	MinReaderVersion int      `json:"min_reader_version"`
	MinWriterVersion int      `json:"min_writer_version"`
	ReaderFeatures   []string `json:"reader_features,omitempty"`
	WriterFeatures   []string `json:"writer_features,omitempty"`
}

type fieldView struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Nullable bool   `json:"nullable"`
}

type fileView struct {
	Path            string            `json:"path"` // as in the log
	PartitionValues map[string]string `json:"partition_values"`
	Size            int64             `json:"size"`
	NumRecords      *int64            `json:"num_records,omitempty"`
}

// logView is one log's cert_index range in a certstream table.
type logView struct {
	SourceURL    string `json:"source_url"`
	MinCertIndex uint64 `json:"min_cert_index"`
	MaxCertIndex uint64 `json:"max_cert_index"`
	Count        int64  `json:"count"`    // rows
	Distinct     int64  `json:"distinct"` // distinct cert_index values
	// Missing is the number of indices between min and max that no row
	// holds (holes inside the range).
	Missing uint64 `json:"missing"`
}

func tableDescribeCommand(c *cli) *cobra.Command {
	cmd, fs := newCommand("describe PATH", "print a Delta table's version, schema, files and per-log ranges")
	asJSON := fs.Bool("json", false, "print one JSON object")
	version := fs.Int64("version", -1, "describe this version (time travel) instead of the latest")
	count := fs.Bool("count", false, "count every file's rows from its Parquet footer, even files whose stats tell (files without stats always are)")
	listFiles := fs.Bool("files", false, "list the live files in the text output (always in --json)")
	noLogs := fs.Bool("no-logs", false, "skip the per-source_url cert_index ranges of certstream tables (they read two columns of every file)")
	asStaging := fs.Bool("staging", false, "read a table without certlake's staging marker as staging (default: only at lake.staging_path)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		if len(args) != 1 {
			return usageError("table describe takes one PATH, got %d arguments", len(args))
		}
		path := args[0]
		cfg, err := loadConfig(fs)
		if err != nil {
			return err
		}
		var at *int64
		if fs.Changed("version") {
			if *version < 0 {
				return usageError("--version must be 0 or more, got %d", *version)
			}
			at = version
		}
		staging := *asStaging || sameLocation(path, cfg.Lake.StagingPath)
		v, err := describeTable(ctx, path, at, describeOptions{count: *count, logs: !*noLogs, staging: staging, db: options.DB(cfg), cfg: cfg})
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(c.stdout, v)
		}
		printTable(c.stdout, v, *listFiles)
		return nil
	}
	return cmd
}

type describeOptions struct {
	count   bool
	logs    bool
	staging bool // read a table without the staging marker as staging
	db      lake.DBOptions
	cfg     *config.Config
}

// sameLocation reports whether paths a and b name the same directory
// (cleaned, absolute, symlinks resolved where they exist).
func sameLocation(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	canon := func(p string) string {
		if isURI(p) {
			if loc, err := storage.ParseLocation("path", p); err == nil && !loc.IsLocal() {
				return loc.String()
			}
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return p
		}
		if r, err := filepath.EvalSymlinks(abs); err == nil {
			return r
		}
		return abs
	}
	return canon(a) == canon(b)
}

// describeTable reads the table at path (at version *at, or the latest).
// Errors say in one line why the table cannot be read.
func describeTable(ctx context.Context, path string, at *int64, opts describeOptions) (*tableView, error) {
	// One opener (one S3 client, one check of the bucket) for both views
	// of the table.
	topts := tableOptions(opts.cfg, lake.Options{})
	dt, err := delta.Open(ctx, path, delta.Options{Storage: topts.Storage})
	if err != nil {
		return nil, tableErr(path, err)
	}
	var snap *delta.Snapshot
	if at != nil {
		snap, err = dt.SnapshotAt(ctx, *at)
	} else {
		snap, err = dt.Snapshot(ctx)
	}
	if err != nil {
		return nil, tableErr(path, err)
	}
	v := &tableView{
		Path:    path,
		Version: snap.Version,
		Protocol: protocolView{
			MinReaderVersion: snap.Protocol.MinReaderVersion,
			MinWriterVersion: snap.Protocol.MinWriterVersion,
			ReaderFeatures:   snap.Protocol.ReaderFeatures,
			WriterFeatures:   snap.Protocol.WriterFeatures,
		},
		TableID:          snap.Metadata.ID,
		PartitionColumns: nonNil(snap.Metadata.PartitionColumns),
		Configuration:    snap.Metadata.Configuration,
		Schema:           []fieldView{},
		NumFiles:         len(snap.Files),
		Files:            make([]fileView, 0, len(snap.Files)),
	}
	if v.Configuration == nil {
		v.Configuration = map[string]string{}
	}
	for _, f := range snap.Schema.Fields {
		v.Schema = append(v.Schema, fieldView{Name: f.Name, Type: f.Type.String(), Nullable: f.Nullable})
	}
	files := lake.Files(snap)
	for i, a := range snap.Files {
		fv := fileView{Path: a.Path, PartitionValues: a.PartitionValues, Size: a.Size}
		if fv.PartitionValues == nil {
			fv.PartitionValues = map[string]string{}
		}
		if n := files[i].NumRecords; n >= 0 {
			fv.NumRecords = &n
		}
		v.SizeBytes += a.Size
		v.Files = append(v.Files, fv)
	}
	// Rows from the add actions' stats; files without numRecords (older
	// delta-rs wrote none) are counted from their Parquet footers below.
	var statRows int64
	var unstated []lake.FileInfo
	for _, f := range files {
		if f.NumRecords >= 0 {
			statRows += f.NumRecords
		} else {
			unstated = append(unstated, f)
		}
	}
	if len(unstated) == 0 {
		v.NumRows, v.NumRowsSource = &statRows, "stats"
	}

	// Certstream tables: role, as_der type, and per-log ranges.
	lopts := topts
	if opts.staging {
		lopts.Role, lopts.AcceptUnmarked = lake.RoleStaging, true
	}
	lt, err := lake.Open(ctx, path, lopts)
	switch {
	case err == nil:
		v.Certstream = true
		v.Role = string(lt.Role())
		v.StagingUnmarked = lt.Role() == lake.RoleStaging && !lt.Marked()
		v.AsDERType = "string"
		if f, ok := snap.Schema.Field("as_der"); ok && f.Type.Primitive == "binary" {
			v.AsDERType = "binary"
		}
	case errors.Is(err, lake.ErrNotCertstream):
		v.NotCertstreamBy = notCertstreamReason(err)
	default:
		return nil, tableErr(path, err)
	}

	if ix, err := keyindex.Load(ctx, keyindex.FromStorage(dt.Store()), snap.Metadata.ID); err == nil && (ix.Len() > 0 || ix.Skipped > 0) {
		kv := &keyIndexView{SkippedSegments: ix.Skipped}
		for i, a := range snap.Files {
			if files[i].NumRecords == 0 {
				continue
			}
			kv.Files++
			if _, ok := ix.Lookup(a.Path, a.Size); ok {
				kv.Indexed++
			}
		}
		v.KeyIndex = kv
	}
	// Footers are read from the table's store (ranged reads of a remote
	// file's tail), local or not.
	switch {
	case opts.count:
		n, err := lake.FooterRows(ctx, dt.Store(), files)
		if err != nil {
			return nil, fmt.Errorf("count rows of %s: %w", path, err)
		}
		v.NumRows, v.NumRowsSource = &n, "count"
	case len(unstated) > 0:
		n, err := lake.FooterRows(ctx, dt.Store(), unstated)
		if err != nil {
			// The rest of the description is still worth printing.
			v.NumRowsError = fmt.Sprintf("count rows of %d files without stats: %v", len(unstated), err)
			break
		}
		n += statRows
		v.NumRows, v.NumRowsSource = &n, "footers"
		if len(unstated) < len(files) {
			v.NumRowsSource = "stats+footers"
		}
	}
	if v.Certstream && opts.logs && len(files) > 0 {
		// DuckDB reads local files: a remote table's are copied to the
		// scratch cache first.
		release, err := lt.Localize(ctx, files)
		if err != nil {
			return nil, fmt.Errorf("per-log ranges of %s: %w", path, err)
		}
		defer release()
		db, err := lake.OpenDB(ctx, opts.db)
		if err != nil {
			return nil, err
		}
		defer db.Close()
		if v.Logs, err = logRanges(ctx, db, files); err != nil {
			return nil, fmt.Errorf("per-log ranges of %s: %w", path, err)
		}
	}
	return v, nil
}

// tableErr names why a table cannot be described.
func tableErr(path string, err error) error {
	switch {
	case errors.Is(err, delta.ErrNotATable):
		return fmt.Errorf("%s is not a Delta table (no _delta_log with a commit): %w", path, err)
	case errors.Is(err, delta.ErrUnsupported):
		return fmt.Errorf("%s uses a Delta feature certlake cannot read: %w", path, err)
	case errors.Is(err, delta.ErrCorrupt):
		return fmt.Errorf("%s has a corrupt Delta log: %w", path, err)
	case errors.Is(err, delta.ErrVersionNotFound):
		return fmt.Errorf("%s: version cannot be reconstructed: %w", path, err)
	}
	return fmt.Errorf("describe %s: %w", path, err)
}

// notCertstreamReason shortens lake's list of differences: a table that
// lacks most columns is simply another kind of table.
func notCertstreamReason(err error) string {
	s := err.Error()
	if i := strings.Index(s, lake.ErrNotCertstream.Error()); i >= 0 {
		s = strings.TrimPrefix(s[i+len(lake.ErrNotCertstream.Error()):], ": ")
	}
	parts := strings.Split(s, "; ")
	var missing, other []string
	for _, p := range parts {
		if c, ok := strings.CutPrefix(p, "missing column "); ok {
			missing = append(missing, c)
		} else {
			other = append(other, p)
		}
	}
	if len(missing) > 3 {
		other = append([]string{fmt.Sprintf("lacks %d of the 20 certstream columns (%s, ...)", len(missing), strings.Join(missing[:3], ", "))}, other...)
	} else if len(missing) > 0 {
		other = append([]string{"lacks column " + strings.Join(missing, ", ")}, other...)
	}
	return strings.Join(other, "; ")
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// logRanges returns min, max and count of cert_index per source_url.
func logRanges(ctx context.Context, db *sql.DB, files []lake.FileInfo) ([]logView, error) {
	keys, err := lake.KeysSQL(files)
	if err != nil {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, "SELECT source_url, min(cert_index), max(cert_index), count(*), count(DISTINCT cert_index) FROM "+keys+" AS k GROUP BY source_url ORDER BY source_url")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []logView{}
	for rows.Next() {
		var (
			l      logView
			lo, hi int64
		)
		if err := rows.Scan(&l.SourceURL, &lo, &hi, &l.Count, &l.Distinct); err != nil {
			return nil, err
		}
		l.MinCertIndex, l.MaxCertIndex = uint64(max(lo, 0)), uint64(max(hi, 0))
		l.Missing = l.MaxCertIndex - l.MinCertIndex + 1 - uint64(l.Distinct)
		out = append(out, l)
	}
	return out, rows.Err()
}

func printTable(w io.Writer, v *tableView, listFiles bool) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "table\t%s\n", v.Path)
	fmt.Fprintf(tw, "version\t%d\n", v.Version)
	proto := fmt.Sprintf("reader %d, writer %d", v.Protocol.MinReaderVersion, v.Protocol.MinWriterVersion)
	if len(v.Protocol.ReaderFeatures)+len(v.Protocol.WriterFeatures) > 0 {
		proto += fmt.Sprintf(" (reader features %v, writer features %v)", v.Protocol.ReaderFeatures, v.Protocol.WriterFeatures)
	}
	fmt.Fprintf(tw, "protocol\t%s\n", proto)
	fmt.Fprintf(tw, "table id\t%s\n", v.TableID)
	fmt.Fprintf(tw, "partitions\t%s\n", orDefault(strings.Join(v.PartitionColumns, ", "), "(none)"))
	fmt.Fprintf(tw, "files\t%d (%s)\n", v.NumFiles, humanBytes(v.SizeBytes))
	rows := "unknown (" + v.NumRowsError + ")"
	if v.NumRows != nil {
		rows = fmt.Sprintf("%d (from %s)", *v.NumRows, v.NumRowsSource)
	}
	fmt.Fprintf(tw, "rows\t%s\n", rows)
	switch {
	case v.Certstream:
		fmt.Fprintf(tw, "certstream\tyes: %s table, as_der stored as %s\n", v.Role, v.AsDERType)
		if v.StagingUnmarked {
			fmt.Fprintf(tw, "staging\tno certlake marker (another tool wrote it): merge it with --adopt-staging\n")
		}
	default:
		fmt.Fprintf(tw, "certstream\tno: %s\n", v.NotCertstreamBy)
	}
	if k := v.KeyIndex; k != nil {
		line := fmt.Sprintf("%d of %d files with rows (the next merge indexes the rest)", k.Indexed, k.Files)
		if k.SkippedSegments > 0 {
			line += fmt.Sprintf("; %d segments skipped", k.SkippedSegments)
		}
		fmt.Fprintf(tw, "key index\t%s\n", line)
	}
	for _, k := range sortedKeys(v.Configuration) {
		fmt.Fprintf(tw, "config\t%s = %s\n", k, v.Configuration[k])
	}
	tw.Flush()

	fmt.Fprintln(w, "\nschema:")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, f := range v.Schema {
		null := "not null"
		if f.Nullable {
			null = "nullable"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", f.Name, f.Type, null)
	}
	tw.Flush()

	if len(v.Logs) > 0 {
		fmt.Fprintln(w, "\nlogs (cert_index):")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "  source_url\tmin\tmax\trows\tduplicates\tmissing inside\t")
		for _, l := range v.Logs {
			fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\t%d\t%d\t\n", l.SourceURL, l.MinCertIndex, l.MaxCertIndex, l.Count, l.Count-l.Distinct, l.Missing)
		}
		tw.Flush()
	}
	if listFiles {
		fmt.Fprintln(w, "\nfiles:")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, f := range v.Files {
			var pv []string
			for _, k := range sortedKeys(f.PartitionValues) {
				pv = append(pv, k+"="+f.PartitionValues[k])
			}
			fmt.Fprintf(tw, "  %s\t%s\t%d\n", f.Path, strings.Join(pv, ","), f.Size)
		}
		tw.Flush()
	}
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// vacuumView is what table vacuum prints with --json.
type vacuumView struct {
	Path    string `json:"path"`
	Version int64  `json:"version"` // the table version whose log protected files
	// Retention is a Go duration ("168h0m0s"); only uncommitted files
	// older than it are deleted.
	Retention        string           `json:"retention"`
	RetentionSeconds int64            `json:"retention_seconds"`
	DryRun           bool             `json:"dry_run"`
	Files            []vacuumFileView `json:"files"` // deleted, or to delete in a dry run
	Count            int              `json:"count"`
	Bytes            int64            `json:"bytes"`
	Dirs             []string         `json:"dirs"`       // directories the vacuum emptied and removed
	KeptYoung        int              `json:"kept_young"` // uncommitted files younger than the retention
	// OrphanPlans are the runs' plan directories under PlanDir (the
	// config's lake.plan_dir) older than the retention, removed (or to
	// remove in a dry run): a run removes its own plans when it ends, so
	// these are left by workers that died or runs that were terminated.
	PlanDir     string   `json:"plan_dir,omitempty"`
	OrphanPlans []string `json:"orphan_plans"`
}

type vacuumFileView struct {
	Path     string    `json:"path"` // relative to the table root, not URI-encoded
	Size     int64     `json:"size"`
	Modified time.Time `json:"modified"`
}

func tableVacuumCommand(c *cli) *cobra.Command {
	cmd, fs := newCommand("vacuum", "delete files crashed writers left uncommitted (older than a retention)")
	path := fs.String("path", "", "the table's root directory (the one holding _delta_log)")
	retention := fs.Duration("retention", delta.DefaultVacuumRetention,
		"delete only uncommitted files last modified longer ago than this; at least 2h, the longest a fetch or merge activity holds files before committing them")
	dryRun := fs.Bool("dry-run", false, "list the files that would be deleted and delete nothing")
	asJSON := fs.Bool("json", false, "print one JSON object")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		if len(args) > 0 {
			return usageError("table vacuum takes no arguments (got %q); name the table with --path", args)
		}
		if *path == "" {
			return usageError("table vacuum needs --path, the table's root directory (the one holding _delta_log)")
		}
		cfg, err := loadConfig(fs)
		if err != nil {
			return err
		}
		if !*dryRun { // a dry run deletes nothing: any table may be inspected
			if err := checkAllowed(cfg, "--path", *path); err != nil {
				return err
			}
		}
		res, err := delta.Vacuum(ctx, *path, delta.VacuumOptions{Retention: *retention, DryRun: *dryRun, Storage: opener(cfg)})
		if err != nil {
			return vacuumErr(*path, err)
		}
		plans, err := vacuumPlans(ctx, cfg, *retention, *dryRun)
		if err != nil {
			return err
		}
		v := vacuumView{
			Path:             *path,
			Version:          res.Version,
			Retention:        res.Retention.String(),
			RetentionSeconds: int64(res.Retention / time.Second),
			DryRun:           res.DryRun,
			Files:            make([]vacuumFileView, 0, len(res.Files)),
			Count:            res.Count,
			Bytes:            res.Bytes,
			Dirs:             nonNil(res.Dirs),
			KeptYoung:        res.Young,
			PlanDir:          cfg.Lake.PlanDir,
			OrphanPlans:      plans,
		}
		for _, f := range res.Files {
			v.Files = append(v.Files, vacuumFileView{Path: f.Path, Size: f.Size, Modified: f.ModTime.UTC()})
		}
		if *asJSON {
			return writeJSON(c.stdout, v)
		}
		printVacuum(c.stdout, v)
		return nil
	}
	return cmd
}

// vacuumPlans removes the plans runs left behind in lake.plan_dir that are
// older than the retention (nothing when no plan dir is configured).
func vacuumPlans(ctx context.Context, cfg *config.Config, retention time.Duration, dryRun bool) ([]string, error) {
	out := []string{}
	if cfg.Lake.PlanDir == "" {
		return out, nil
	}
	loc, err := storage.ParseLocation("lake.plan_dir", cfg.Lake.PlanDir)
	if err != nil {
		return out, err
	}
	s, err := opener(cfg).Open(ctx, loc)
	if err != nil {
		return out, fmt.Errorf("open plan dir %s: %w", cfg.Lake.PlanDir, err)
	}
	orphans, err := plandir.RemoveOlder(ctx, s, retention, time.Now(), dryRun)
	for _, o := range orphans {
		out = append(out, o.Name)
	}
	if err != nil {
		return out, fmt.Errorf("vacuum plans in %s: %w", cfg.Lake.PlanDir, err)
	}
	return out, nil
}

// printVacuum prints one line per file in a dry run, then the summary.
func printVacuum(w io.Writer, v vacuumView) {
	mib := float64(v.Bytes) / (1 << 20)
	if v.DryRun {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, f := range v.Files {
			fmt.Fprintf(tw, "%s\t%d\n", f.Path, f.Size)
		}
		tw.Flush()
		fmt.Fprintf(w, "vacuum %s: %d files, %.1f MiB would be deleted (dry run, retention %s)\n", v.Path, v.Count, mib, v.Retention)
	} else {
		fmt.Fprintf(w, "vacuum %s: %d files, %.1f MiB deleted (retention %s)\n", v.Path, v.Count, mib, v.Retention)
	}
	var notes []string
	if n := len(v.Dirs); n > 0 {
		verb := "removed"
		if v.DryRun {
			verb = "would remove"
		}
		notes = append(notes, fmt.Sprintf("%s %d emptied directories", verb, n))
	}
	if n := len(v.OrphanPlans); n > 0 {
		verb := "removed"
		if v.DryRun {
			verb = "would remove"
		}
		notes = append(notes, fmt.Sprintf("%s the plans of %d ended runs older than %s from %s", verb, n, v.Retention, v.PlanDir))
	}
	if v.KeptYoung > 0 {
		notes = append(notes, fmt.Sprintf("kept %d uncommitted files younger than %s (a writer may still commit them)", v.KeptYoung, v.Retention))
	}
	if len(notes) > 0 {
		fmt.Fprintf(w, "  %s\n", strings.Join(notes, "; "))
	}
}

// vacuumErr says what to fix when a table cannot be vacuumed.
func vacuumErr(path string, err error) error {
	switch {
	case errors.Is(err, delta.ErrRetentionTooShort):
		return &exitError{Code: 2, Err: fmt.Errorf("--retention: %w", err)}
	case errors.Is(err, delta.ErrNotATable):
		return fmt.Errorf("%s is not a Delta table (no _delta_log with a commit): give --path the table's root directory, the one holding _delta_log: %w", path, err)
	case errors.Is(err, delta.ErrUnsupported):
		return fmt.Errorf("%s uses a Delta feature certlake cannot write, so it cannot tell which files are safe to delete; vacuum it with a Delta engine that supports the feature: %w", path, err)
	case errors.Is(err, delta.ErrCorrupt):
		return fmt.Errorf("%s has a corrupt Delta log; nothing was deleted: %w", path, err)
	}
	return err
}
