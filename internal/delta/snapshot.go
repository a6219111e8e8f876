package delta

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/certlake/certlake/internal/storage"
)

// Snapshot is the table state at one version. Treat it as read-only: its
// maps may be shared with the Table's cache.
type Snapshot struct {
	Version  int64
	Protocol Protocol
	Metadata Metadata
	Schema   StructType
	Files    []Add            // live files, sorted by Path
	Txns     map[string]int64 // latest txn version per appId

	root  string
	store storage.Store
}

// LocalPath returns the absolute file-system path of a live file of a
// local table (the log's Path is relative and URI-encoded). A remote
// table's files have no local path: read them through Store and Key.
func (s *Snapshot) LocalPath(a Add) string { return localPath(s.root, a.Path) }

// Root returns the root (directory or URI) of the table the snapshot was
// read from.
func (s *Snapshot) Root() string { return s.root }

// Store returns the storage of the table the snapshot was read from; nil
// for a snapshot built by hand.
func (s *Snapshot) Store() storage.Store { return s.store }

// NumRecords sums numRecords over the live files' stats. ok is false when
// any file has no (or unparsable) stats, so the log alone does not tell.
func (s *Snapshot) NumRecords() (n int64, ok bool) {
	for _, a := range s.Files {
		st, ok, err := ParseStats(a.Stats)
		if err != nil || !ok {
			return 0, false
		}
		n += st.NumRecords
	}
	return n, true
}

// state is the reconciled log at version ("Action Reconciliation" in
// PROTOCOL.md): newest protocol and metaData win, newest action per path
// wins, latest txn per appId.
type state struct {
	version    int64
	protocol   *Protocol
	metadata   *Metadata
	schema     StructType
	schemaErr  error
	files      map[string]*Add
	tombstones map[string]*Remove
	txns       map[string]Txn
	dv         bool  // some action carried a deletion vector
	sorted     []Add // files sorted by path; nil when stale
}

func newState() *state {
	return &state{
		version:    -1,
		files:      map[string]*Add{},
		tombstones: map[string]*Remove{},
		txns:       map[string]Txn{},
	}
}

func (s *state) addFile(a *Add) {
	s.files[a.Path] = a
	delete(s.tombstones, a.Path)
	s.sorted = nil
}

func (s *state) removeFile(r *Remove) {
	if _, ok := s.files[r.Path]; ok {
		delete(s.files, r.Path)
		s.sorted = nil
	}
	s.tombstones[r.Path] = r
}

func (s *state) setMetadata(m *Metadata) {
	s.metadata = m
	s.schema, s.schemaErr = ParseSchema(m.SchemaString)
}

// apply replays one commit on top of s. Commits must come in order.
func (s *state) apply(c *commit) {
	for _, a := range c.actions {
		switch {
		case a.Add != nil:
			if a.Add.PartitionValues == nil {
				a.Add.PartitionValues = map[string]string{}
			}
			s.addFile(a.Add)
		case a.Remove != nil:
			s.removeFile(a.Remove)
		case a.MetaData != nil:
			normalizeMetadata(a.MetaData)
			s.setMetadata(a.MetaData)
		case a.Protocol != nil:
			s.protocol = a.Protocol
		case a.Txn != nil:
			s.txns[a.Txn.AppID] = *a.Txn
		}
	}
	if c.dv {
		s.dv = true
	}
	s.version = c.version
}

func (s *state) sortedFiles() []Add {
	if s.sorted == nil {
		out := make([]Add, 0, len(s.files))
		for _, a := range s.files {
			out = append(out, *a)
		}
		slices.SortFunc(out, func(a, b Add) int { return strings.Compare(a.Path, b.Path) })
		s.sorted = out
	}
	return s.sorted
}

// check verifies the state is complete and readable by this package.
func (s *state) check() error {
	if s.protocol == nil {
		return fmt.Errorf("%w: version %d has no protocol action", ErrCorrupt, s.version)
	}
	if s.metadata == nil {
		return fmt.Errorf("%w: version %d has no metaData action", ErrCorrupt, s.version)
	}
	if err := checkReadable(*s.protocol, *s.metadata); err != nil {
		return err
	}
	if s.dv {
		// A deletion vector without the feature is a broken log; either way
		// listing the file would return deleted rows.
		return fmt.Errorf("%w: deletionVectors (a file action carries a deletion vector)", ErrUnsupported)
	}
	if s.schemaErr != nil {
		return fmt.Errorf("%w: version %d: %w", ErrCorrupt, s.version, s.schemaErr)
	}
	return nil
}

// snapshot copies s into a Snapshot.
func (s *state) snapshot(root string, store storage.Store) (*Snapshot, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	txns := make(map[string]int64, len(s.txns))
	for id, t := range s.txns {
		txns[id] = t.Version
	}
	return &Snapshot{
		Version:  s.version,
		Protocol: *s.protocol,
		Metadata: *s.metadata,
		Schema:   s.schema,
		Files:    slices.Clone(s.sortedFiles()),
		Txns:     txns,
		root:     root,
		store:    store,
	}, nil
}

// checkpointData extracts what a checkpoint at s.version must hold; expired
// tombstones are dropped.
func (s *state) checkpointData(now time.Time) *checkpointData {
	cp := &checkpointData{
		version:  s.version,
		protocol: *s.protocol,
		metadata: *s.metadata,
		// Shared with the state's cache, which is replaced, never modified.
		files: s.sortedFiles(),
	}
	for _, id := range slices.Sorted(maps.Keys(s.txns)) {
		cp.txns = append(cp.txns, s.txns[id])
	}
	cutoff := now.Add(-tombstoneRetention(s.metadata.Configuration)).UnixMilli()
	for _, r := range s.tombstones {
		if r.DeletionTimestamp != nil && *r.DeletionTimestamp < cutoff {
			continue
		}
		cp.tombstones = append(cp.tombstones, *r)
	}
	slices.SortFunc(cp.tombstones, func(a, b Remove) int { return cmp.Compare(a.Path, b.Path) })
	return cp
}

// readerFeatures this package implements. None: every reader feature
// changes how data files must be read (deletion vectors, column mapping,
// timestamp without time zone, v2 checkpoints, ...).
var supportedReaderFeatures = map[string]bool{}

// checkReadable refuses protocols a reader-v1 implementation cannot read
// correctly ("Reader Version Requirements" in PROTOCOL.md), naming the
// feature.
func checkReadable(p Protocol, m Metadata) error {
	switch {
	case p.MinReaderVersion < 1:
		return fmt.Errorf("%w: invalid minReaderVersion %d", ErrCorrupt, p.MinReaderVersion)
	case p.MinReaderVersion == 1:
		return nil
	case p.MinReaderVersion == 2:
		// Reader version 2 means column mapping: physical column names in
		// data files and stats differ from the schema's.
		mode := m.Configuration["delta.columnMapping.mode"]
		if mode == "" {
			mode = "none"
		}
		return fmt.Errorf("%w: columnMapping (reader version 2, delta.columnMapping.mode=%s)", ErrUnsupported, mode)
	case p.MinReaderVersion == 3:
		var missing []string
		for _, f := range p.ReaderFeatures {
			if !supportedReaderFeatures[f] {
				missing = append(missing, f)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("%w: %s (reader version 3)", ErrUnsupported, strings.Join(missing, ", "))
		}
		return fmt.Errorf("%w: reader version 3 (table features)", ErrUnsupported)
	default:
		return fmt.Errorf("%w: reader version %d", ErrUnsupported, p.MinReaderVersion)
	}
}

// writerVersionFeatures names what each legacy writer version adds
// ("Writer Version Requirements" in PROTOCOL.md), for error messages.
var writerVersionFeatures = map[int]string{
	3: "checkConstraints, writeStatsAsJson/Struct",
	4: "changeDataFeed, generatedColumns",
	5: "columnMapping",
	6: "identityColumns",
}

// checkWritable refuses tables a writer-v2 implementation must not write
// to. Writer version 2 means: respect delta.appendOnly (enforced in Commit)
// and column invariants (refused here: this package cannot evaluate SQL).
func checkWritable(p Protocol, m Metadata, schema StructType) error {
	if err := checkReadable(p, m); err != nil {
		return err
	}
	switch {
	case p.MinWriterVersion < 1:
		return fmt.Errorf("%w: invalid minWriterVersion %d", ErrCorrupt, p.MinWriterVersion)
	case p.MinWriterVersion == 7:
		if len(p.WriterFeatures) > 0 {
			return fmt.Errorf("%w: %s (writer version 7)", ErrUnsupported, strings.Join(p.WriterFeatures, ", "))
		}
		return fmt.Errorf("%w: writer version 7 (table features)", ErrUnsupported)
	case p.MinWriterVersion > 2:
		if f, ok := writerVersionFeatures[p.MinWriterVersion]; ok {
			return fmt.Errorf("%w: %s (writer version %d)", ErrUnsupported, f, p.MinWriterVersion)
		}
		return fmt.Errorf("%w: writer version %d", ErrUnsupported, p.MinWriterVersion)
	}
	if name, ok := findInvariant(schema.Fields, ""); ok {
		return fmt.Errorf("%w: invariants (column %s has delta.invariants)", ErrUnsupported, name)
	}
	return nil
}

func findInvariant(fields []StructField, prefix string) (string, bool) {
	for _, f := range fields {
		if _, ok := f.Metadata["delta.invariants"]; ok {
			return prefix + f.Name, true
		}
		if f.Type.Struct != nil {
			if n, ok := findInvariant(f.Type.Struct.Fields, prefix+f.Name+"."); ok {
				return n, true
			}
		}
	}
	return "", false
}

// load rebuilds the state at target (-1: latest) from one listing of the
// log: the newest complete checkpoint at or before target, then the JSON
// commits after it. When that checkpoint cannot be read it falls back to
// older ones, then to commit 0.
func (t *Table) load(ctx context.Context, target int64) (*state, error) {
	// _last_checkpoint only feeds a warning below: a remote log reads it
	// while it is listed (one round trip less).
	type hint struct {
		lc  *lastCheckpoint
		err error
	}
	hints := make(chan hint, 1)
	if _, local := storage.LocalPath(t.log, ""); local {
		lc, err := readLastCheckpoint(ctx, t.log)
		hints <- hint{lc, err}
	} else {
		go func() {
			lc, err := readLastCheckpoint(ctx, t.log)
			hints <- hint{lc, err}
		}()
	}
	l, err := listLog(ctx, t.log)
	h := <-hints
	if err != nil {
		return nil, err
	}
	latest := l.latest()
	if latest < 0 {
		return nil, fmt.Errorf("%w: no commits in %s", ErrNotATable, t.logDir())
	}
	if target < 0 {
		target = latest
	}
	if target > latest {
		return nil, fmt.Errorf("%w: version %d is newer than the latest version %d", ErrVersionNotFound, target, latest)
	}
	if lc, err := h.lc, h.err; err == nil {
		// A hint newer than the listing was written after it (the two are
		// read at once on a remote log): not a missing checkpoint.
		if lc.Version <= latest && !slices.ContainsFunc(l.checkpoints, func(c checkpointRef) bool { return c.version == lc.Version }) {
			t.logger().WarnContext(ctx, "delta: _last_checkpoint names a missing checkpoint", "root", t.root, "version", lc.Version)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		t.logger().WarnContext(ctx, "delta: unreadable _last_checkpoint", "root", t.root, "err", err)
	}

	// Starting points, newest first; -1 means "replay from commit 0".
	var starts []checkpointRef
	for i := len(l.checkpoints) - 1; i >= 0; i-- {
		if l.checkpoints[i].version <= target {
			starts = append(starts, l.checkpoints[i])
		}
	}
	starts = append(starts, checkpointRef{version: -1})

	var cpErr error
	for _, start := range starts {
		if err := checkCoverage(l, start.version, target); err != nil {
			if cpErr != nil {
				return nil, cpErr
			}
			return nil, err
		}
		st := newState()
		if start.version >= 0 {
			if err := readCheckpoint(ctx, t.log, start, st, t.trace); err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				t.logger().WarnContext(ctx, "delta: skipping unreadable checkpoint", "root", t.root, "version", start.version, "err", err)
				if cpErr == nil {
					cpErr = err
				}
				continue
			}
			st.version = start.version
		}
		err := readCommits(ctx, t.log, start.version+1, target, func(c *commit) {
			if t.trace != nil {
				t.trace(commitName(c.version))
			}
			st.apply(c)
		})
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				// Listed a moment ago: a concurrent cleanup removed it.
				return nil, fmt.Errorf("%w: a commit disappeared while reading: %w", ErrVersionNotFound, err)
			}
			return nil, err
		}
		return st, nil
	}
	return nil, cpErr
}

// checkCoverage verifies commits start+1..target are all listed. A missing
// commit 0 (with no checkpoint to start from) means the early log was cleaned
// up: ErrVersionNotFound. Any other gap is a hole: ErrCorrupt naming it.
func checkCoverage(l *listing, start, target int64) error {
	for v := start + 1; v <= target; v++ {
		if l.hasCommit(v) {
			continue
		}
		if start < 0 && !slices.ContainsFunc(l.commits, func(c int64) bool { return c < v }) {
			return fmt.Errorf("%w: version %d: %s is missing and no checkpoint at or before it exists", ErrVersionNotFound, target, commitName(v))
		}
		return fmt.Errorf("%w: %s is missing (hole in the commit sequence before version %d)", ErrCorrupt, commitName(v), target)
	}
	return nil
}

// readAhead is how many commits of a remote log are read ahead of the one
// being applied. Each read is a round trip to the store, and a staging
// table holds a commit per backfill batch: read one by one, tens of
// commits cost tens of round trips in a row.
const readAhead = 16

// readCommits reads commits from..to (inclusive) and hands each to apply
// in version order. A local log is read one commit after the other (a
// file read costs no round trip); a remote one with up to readAhead reads
// in flight, and at most readAhead parsed commits held. The first error
// (in version order) is returned and nothing after it is applied.
func readCommits(ctx context.Context, log storage.Store, from, to int64, apply func(*commit)) error {
	if _, local := storage.LocalPath(log, ""); local || to-from < 1 {
		for v := from; v <= to; v++ {
			c, err := readCommit(ctx, log, v)
			if err != nil {
				return err
			}
			apply(c)
		}
		return nil
	}
	type result struct {
		c   *commit
		err error
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	slots := make(chan struct{}, readAhead) // one per commit read and not yet applied
	results := make(chan chan result, readAhead)
	go func() {
		defer close(results)
		for v := from; v <= to; v++ {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			out := make(chan result, 1)
			results <- out // never blocks: at most readAhead slots are taken
			go func() {
				c, err := readCommit(ctx, log, v)
				out <- result{c, err}
			}()
		}
	}()
	for out := range results {
		r := <-out
		if r.err != nil {
			cancel()
			for rest := range results { // let the reads in flight end
				<-rest
			}
			return r.err
		}
		apply(r.c)
		<-slots
	}
	return ctx.Err()
}
