package merge

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/certlake/certlake/internal/delta"
	"github.com/certlake/certlake/internal/lake"
)

// DefaultBatchRows is the batch size PlanMerge aims for when
// PlanOptions.BatchRows is zero. Each batch scans the main files that may
// hold its keys once, so fewer, larger batches scan main less often; memory
// does not grow with it (DuckDB spills past its memory limit and rows stream
// into the writer).
const DefaultBatchRows = 2_000_000

// PlanOptions tune PlanMerge.
type PlanOptions struct {
	// MainPath is the main table's directory. Required: the plan is refused
	// when staging is main, or either holds the other (see ValidatePaths).
	MainPath string
	// BatchRows is the number of staging rows a batch aims for; 0 means
	// DefaultBatchRows. A group of files whose key ranges overlap is never
	// split, so a batch may exceed it.
	BatchRows int64
	// DB configures the DuckDB instance used to read the keys of staging
	// files whose stats do not give them.
	DB DBOptions
}

// Plan is the work of one merge: staging at version StagingVersion cut into
// key-disjoint batches. It is small enough to pass between workflow steps
// (file paths and key ranges, never rows).
type Plan struct {
	StagingPath    string  `json:"staging_path"`
	StagingTableID string  `json:"staging_table_id"` // metaData.id of staging
	StagingVersion int64   `json:"staging_version"`  // the snapshot V the plan covers
	StagingRows    int64   `json:"staging_rows"`     // rows in the files of V
	StagingFiles   int     `json:"staging_files"`    // live files of V, empty ones included
	Batches        []Batch `json:"batches"`
}

// Ref returns what MergeBatch needs to know of the plan.
func (p Plan) Ref() PlanRef {
	return PlanRef{StagingTableID: p.StagingTableID, StagingVersion: p.StagingVersion}
}

// Empty reports whether there is nothing to merge.
func (p Plan) Empty() bool { return len(p.Batches) == 0 }

// Batch is one unit of merge work: staging files whose keys overlap no other
// batch's, so a key's duplicates inside staging all meet in one batch.
type Batch struct {
	ID    int        `json:"id"`    // 0-based position in Plan.Batches
	Files []string   `json:"files"` // staging add paths, as in the log
	Keys  []KeyRange `json:"keys"`  // covers every key of Files; sorted, disjoint
	Rows  int64      `json:"rows"`  // staging rows in Files
}

// PlanRef identifies the plan a batch belongs to; it keys the batch's txn.
type PlanRef struct {
	StagingTableID string `json:"staging_table_id"`
	StagingVersion int64  `json:"staging_version"`
}

// OpenStaging validates mainPath and stagingPath (ValidatePaths) and opens
// the staging table, which must carry the certlake staging marker (else the
// error wraps ErrNotStaging and says how to adopt it), unless adopt: then an
// unmarked table is adopted (AdoptStaging). It returns nil, nil when there
// is no table at stagingPath: nothing was staged (AC4.1).
func OpenStaging(ctx context.Context, mainPath, stagingPath string, adopt bool, opts lake.Options) (*lake.Table, error) {
	if err := ValidatePaths(mainPath, stagingPath); err != nil {
		return nil, err
	}
	if adopt {
		t, err := AdoptStaging(ctx, mainPath, stagingPath, opts)
		if errors.Is(err, lake.ErrNotExist) {
			return nil, nil
		}
		return t, err
	}
	opts.Role = lake.RoleAny
	t, err := lake.Open(ctx, stagingPath, opts)
	switch {
	case errors.Is(err, lake.ErrNotExist):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("open staging: %w", err)
	case !t.Marked():
		return nil, notMarked(stagingPath)
	}
	return t, nil
}

// OpenMain opens the main table at mainPath, creating it when it does not
// exist (AC4.2). A table carrying the staging marker is refused.
func OpenMain(ctx context.Context, mainPath string, opts lake.Options) (*lake.Table, error) {
	opts.Role = lake.RoleMain
	t, err := lake.OpenOrCreate(ctx, mainPath, opts)
	if err != nil {
		return nil, fmt.Errorf("open main: %w", err)
	}
	return t, nil
}

// PlanMerge takes a snapshot of staging and cuts its live files into
// key-disjoint batches. A nil staging (no table, see OpenStaging) or a
// staging table without rows gives an empty plan.
//
// Files are grouped by their (source_url, cert_index) ranges: a file whose
// stats name one source_url and its cert_index bounds contributes that range;
// any other file (several URLs, no stats, no row count) is read with DuckDB
// (two columns) for its exact per-URL ranges, so a file without stats never
// forces one big batch. Files whose ranges overlap, directly or through a
// chain of others, form one group; groups, in key order, are packed into
// batches of about BatchRows rows.
func PlanMerge(ctx context.Context, staging *lake.Table, opts PlanOptions) (Plan, error) {
	if staging == nil {
		return Plan{}, nil
	}
	if err := ValidatePaths(opts.MainPath, staging.Path()); err != nil {
		return Plan{}, err
	}
	if !staging.Marked() {
		return Plan{}, notMarked(staging.Path())
	}
	snap, err := staging.Snapshot(ctx)
	if err != nil {
		return Plan{}, fmt.Errorf("plan merge: %w", err)
	}
	p := Plan{
		StagingPath:    staging.Path(),
		StagingTableID: snap.Metadata.ID,
		StagingVersion: snap.Version,
		StagingFiles:   len(snap.Files),
	}
	if snap.Metadata.Configuration[lake.ConfigRole] != string(lake.RoleStaging) {
		return Plan{}, fmt.Errorf("%w: %s at version %d has no %s=%s marker", ErrNotStaging, staging.Path(), snap.Version, lake.ConfigRole, lake.RoleStaging)
	}
	files, err := fileRanges(ctx, staging, snap, opts.DB)
	if err != nil {
		return Plan{}, fmt.Errorf("plan merge of %s at version %d: %w", staging.Path(), snap.Version, err)
	}
	batchRows := opts.BatchRows
	if batchRows <= 0 {
		batchRows = DefaultBatchRows
	}
	p.Batches = packBatches(groupFiles(files), batchRows)
	for _, b := range p.Batches {
		p.StagingRows += b.Rows
	}
	return p, nil
}

// stagedFile is one staging file with its exact or stats-derived key ranges.
type stagedFile struct {
	path   string
	rows   int64
	ranges []KeyRange
}

// fileRanges gives each live file of snap its key ranges and row count,
// reading the files whose stats do not tell.
func fileRanges(ctx context.Context, staging *lake.Table, snap *delta.Snapshot, dbo DBOptions) ([]stagedFile, error) {
	out := make([]stagedFile, 0, len(snap.Files))
	var unknown []int // indices into out
	for _, a := range snap.Files {
		b := statsBox(a)
		f := stagedFile{path: a.Path, rows: b.Rows}
		if b.ok && b.Rows >= 0 && b.URLMin == b.URLMax {
			if b.Rows > 0 {
				f.ranges = []KeyRange{{SourceURL: b.URLMin, Start: b.IdxMin, End: b.IdxMax}}
			}
		} else if b.Rows != 0 {
			unknown = append(unknown, len(out))
		}
		out = append(out, f)
	}
	if len(unknown) == 0 {
		return out, nil
	}
	db, err := openDB(ctx, dbo)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	const chunk = 256
	for start := 0; start < len(unknown); start += chunk {
		idx := unknown[start:min(start+chunk, len(unknown))]
		adds := make([]delta.Add, len(idx))
		for i, k := range idx {
			adds[i] = snap.Files[k]
		}
		paths, release, err := staging.LocalPaths(ctx, adds)
		if err != nil {
			return nil, err
		}
		defer release()
		byPath := make(map[string]int, len(idx))
		for i, k := range idx {
			byPath[paths[i]] = k
			out[k].rows = 0
		}
		if err := checkPaths(paths); err != nil {
			return nil, err
		}
		q := `SELECT filename, source_url, min(cert_index), max(cert_index), count(*)
			FROM read_parquet(` + sqlList(paths) + `, filename = true, hive_partitioning = false)
			GROUP BY filename, source_url`
		rows, err := db.QueryContext(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("read keys of %d staging files: %w", len(paths), err)
		}
		for rows.Next() {
			var (
				name   string
				url    string
				lo, hi int64
				n      int64
			)
			if err := rows.Scan(&name, &url, &lo, &hi, &n); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read keys of staging files: %w", err)
			}
			k, ok := byPath[name]
			if !ok {
				rows.Close()
				return nil, fmt.Errorf("read keys of staging files: unexpected file %q", name)
			}
			out[k].rows += n
			out[k].ranges = append(out[k].ranges, KeyRange{SourceURL: url, Start: uint64(max(lo, 0)), End: uint64(max(hi, 0))})
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("read keys of staging files: %w", err)
		}
	}
	return out, nil
}

// group is a set of staging files that must be merged together.
type group struct {
	files []string
	keys  []KeyRange // sorted by (SourceURL, Start), disjoint
	rows  int64
}

// groupFiles joins files whose key ranges overlap (union-find over a sweep
// of all ranges sorted by URL and start). Files without rows are left out:
// they hold nothing to merge (Retire still removes them).
func groupFiles(files []stagedFile) []group {
	type item struct {
		r    KeyRange
		file int
	}
	var items []item
	for i, f := range files {
		for _, r := range f.ranges {
			items = append(items, item{r, i})
		}
	}
	slices.SortFunc(items, func(a, b item) int {
		return cmp.Or(cmp.Compare(a.r.SourceURL, b.r.SourceURL), cmp.Compare(a.r.Start, b.r.Start), cmp.Compare(a.file, b.file))
	})
	parent := make([]int, len(files))
	for i := range parent {
		parent[i] = i
	}
	find := func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	// Sweep: a range overlapping the current run joins its file to the
	// run's file.
	for i := 0; i < len(items); {
		run := items[i]
		hi := run.r.End
		j := i + 1
		for ; j < len(items) && items[j].r.SourceURL == run.r.SourceURL && items[j].r.Start <= hi; j++ {
			hi = max(hi, items[j].r.End)
			if a, b := find(items[j].file), find(run.file); a != b {
				parent[a] = b
			}
		}
		i = j
	}
	byRoot := map[int]*group{}
	var roots []int
	for i, f := range files {
		if f.rows == 0 || len(f.ranges) == 0 {
			continue
		}
		r := find(i)
		g, ok := byRoot[r]
		if !ok {
			g = &group{}
			byRoot[r] = g
			roots = append(roots, r)
		}
		g.files = append(g.files, f.path)
		g.keys = append(g.keys, f.ranges...)
		g.rows += f.rows
	}
	out := make([]group, 0, len(roots))
	for _, r := range roots {
		g := byRoot[r]
		g.keys = coalesce(g.keys)
		slices.Sort(g.files)
		out = append(out, *g)
	}
	// Key order, so a batch covers a contiguous stretch of each log and
	// prunes main well.
	slices.SortFunc(out, func(a, b group) int {
		return cmp.Or(cmp.Compare(a.keys[0].SourceURL, b.keys[0].SourceURL), cmp.Compare(a.keys[0].Start, b.keys[0].Start))
	})
	return out
}

// coalesce sorts ranges and merges the overlapping or touching ones.
func coalesce(rs []KeyRange) []KeyRange {
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b KeyRange) int {
		return cmp.Or(cmp.Compare(a.SourceURL, b.SourceURL), cmp.Compare(a.Start, b.Start))
	})
	out := rs[:0]
	for _, r := range rs {
		if n := len(out); n > 0 && out[n-1].SourceURL == r.SourceURL && (r.Start <= out[n-1].End || r.Start-out[n-1].End == 1) {
			out[n-1].End = max(out[n-1].End, r.End)
			continue
		}
		out = append(out, r)
	}
	return out
}

// packBatches fills batches with whole groups, in order, up to batchRows
// rows each (a group larger than that is a batch of its own).
func packBatches(groups []group, batchRows int64) []Batch {
	var out []Batch
	var cur *Batch
	for _, g := range groups {
		if cur == nil || (cur.Rows > 0 && cur.Rows+g.rows > batchRows) {
			out = append(out, Batch{ID: len(out)})
			cur = &out[len(out)-1]
		}
		cur.Files = append(cur.Files, g.files...)
		cur.Keys = append(cur.Keys, g.keys...)
		cur.Rows += g.rows
	}
	for i := range out {
		out[i].Keys = coalesce(out[i].Keys)
		slices.Sort(out[i].Files)
	}
	return out
}
