package lake

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"github.com/certlake/certlake/internal/delta"
	"github.com/certlake/certlake/internal/record"
)

// WriterOptions tune a Writer. The zero value uses the defaults.
type WriterOptions struct {
	// TargetFileRows closes a data file after this many rows; 0 means
	// 262144.
	TargetFileRows int
	// RowGroupRows closes a row group after this many rows; 0 means 65536.
	RowGroupRows int
	// RowGroupBytes closes a row group once its compressed pages (held in
	// memory until the row group is written) reach this size; 0 means
	// 128 MiB. With RowGroupRows it bounds the writer's memory per open
	// partition.
	RowGroupBytes int64
	// CompressionLevel is the zstd level; 0 means the codec default (3).
	CompressionLevel int
}

func (o WriterOptions) withDefaults() WriterOptions {
	if o.TargetFileRows <= 0 {
		o.TargetFileRows = 1 << 18
	}
	if o.RowGroupRows <= 0 {
		o.RowGroupRows = 1 << 16
	}
	if o.RowGroupBytes <= 0 {
		o.RowGroupBytes = 128 << 20
	}
	return o
}

// batchRows is how many rows a partition buffers before encoding them into
// its open row group; large enough to amortize the per-column goroutines,
// small enough that buffered rows stay a few MB.
const batchRows = 8192

// CommitOptions describe the commit of a Writer or Append.
type CommitOptions struct {
	// Txn, when set, makes the commit idempotent: if the table already
	// holds Txn.AppID at Txn.Version or newer, nothing is committed, the
	// result is Skipped and the written files are removed.
	Txn *delta.Txn
	// Operation is commitInfo.operation; "" means "WRITE".
	Operation string
	// Check is called with the actions of concurrent commits that landed
	// first (see delta.CommitOptions.Check). A schema change among them is
	// always a conflict.
	Check func(winning []delta.Action) error
}

// CommitResult tells what a commit did.
type CommitResult struct {
	Version int64 // the new version; the table's version when Skipped or nothing was committed
	Skipped bool  // Txn was already committed; nothing was written
	Files   int   // data files added
	Rows    int64 // rows added
}

// Writer appends rows to a table as Parquet files and commits them in one
// Delta commit. Rows are buffered per seen_date partition, encoded into
// the partition's open file in batches, and files are closed at
// TargetFileRows, so memory stays bounded however many rows are written.
// A Writer is not safe for concurrent use.
type Writer struct {
	t         *Table
	opts      WriterOptions
	props     *parquet.WriterProperties
	layout    layout
	parts     map[string]*partWriter
	done      []writtenFile
	seq       int
	err       error // sticky: the first failure
	closed    bool
	committed bool
}

// writtenFile is a closed data file waiting for the commit.
type writtenFile struct {
	rel      string // relative to the table root, slash separated, not escaped
	date     string
	size     int64
	modified int64
	stats    fileStats
}

// partWriter is the open data file of one partition.
type partWriter struct {
	date   string
	rel    string
	f      *os.File
	buf    *bufio.Writer
	pw     *file.Writer
	rg     file.BufferedRowGroupWriter
	rgRows int
	rows   int // rows in the file, encoded or buffered
	batch  []record.Row
	stats  fileStats
}

// NewWriter starts a Writer on t.
func (t *Table) NewWriter(opts WriterOptions) *Writer {
	opts = opts.withDefaults()
	return &Writer{
		t:      t,
		opts:   opts,
		props:  writerProperties(opts.CompressionLevel),
		layout: t.layout,
		parts:  make(map[string]*partWriter),
	}
}

// Write buffers one row, writing Parquet data when a batch is full. The row's
// strings and slices are referenced, not copied, until the batch is encoded;
// the caller must not modify them before Commit.
func (w *Writer) Write(row record.Row) error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return errors.New("write: writer is closed")
	}
	date, err := partitionOf(row)
	if err != nil {
		return fmt.Errorf("write row %s/%d: %w", row.SourceURL, row.CertIndex, err)
	}
	p := w.parts[date]
	if p == nil {
		p = &partWriter{date: date, batch: make([]record.Row, 0, batchRows)}
		w.parts[date] = p
	}
	row.SeenDate = date
	p.batch = append(p.batch, row)
	p.rows++
	p.stats.add(&row)
	if len(p.batch) >= batchRows || p.rgRows+len(p.batch) >= w.opts.RowGroupRows || p.rows >= w.opts.TargetFileRows {
		if err := w.flushBatch(p); err != nil {
			w.err = err
			return err
		}
		if p.rows >= w.opts.TargetFileRows {
			if err := w.closeFile(p); err != nil {
				w.err = err
				return err
			}
		}
	}
	return nil
}

// partitionOf validates a row and returns its seen_date.
func partitionOf(row record.Row) (string, error) {
	if row.CertIndex > math.MaxInt64 {
		return "", fmt.Errorf("cert_index %d does not fit a Delta long", row.CertIndex)
	}
	if row.Seen.IsZero() {
		return "", errors.New("seen is not set")
	}
	date := row.Seen.UTC().Format(time.DateOnly)
	if row.SeenDate != "" && row.SeenDate != date {
		return "", fmt.Errorf("seen_date %q is not the UTC date of seen %s", row.SeenDate, row.Seen.UTC().Format(time.RFC3339Nano))
	}
	return date, nil
}

// flushBatch encodes p's buffered rows into its open row group, one
// goroutine per column.
func (w *Writer) flushBatch(p *partWriter) error {
	if len(p.batch) == 0 {
		return nil
	}
	if p.pw == nil {
		if err := w.openFile(p); err != nil {
			return err
		}
	}
	if p.rg == nil {
		p.rg = p.pw.AppendBufferedRowGroup()
	}
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	// Big columns first so the small ones fill the gaps.
	for _, col := range columnOrder {
		g.Go(func() error { return writeColumn(p.rg, col, p.batch, w.layout.asDERBinary) })
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("write %s: %w", p.rel, err)
	}
	p.rgRows += len(p.batch)
	clear(p.batch) // drop references to the caller's data
	p.batch = p.batch[:0]
	if p.rgRows >= w.opts.RowGroupRows || p.rg.TotalCompressedBytes() >= w.opts.RowGroupBytes {
		if err := p.rg.Close(); err != nil {
			return fmt.Errorf("write %s: close row group: %w", p.rel, err)
		}
		p.rg = nil
		p.rgRows = 0
	}
	return nil
}

// columnOrder lists file columns by decreasing encoding cost.
var columnOrder = []int{
	colAsDER, colChain, colAllDomains, colSHA256, colSubjectAggregated, colCertLink,
	colSHA1, colFingerprint, colSerialNumber, colIssuerAggregated, colCertIndex, colSeen,
	colNotBefore, colNotAfter, colSourceURL, colSourceName, colUpdateType,
	colSignatureAlgorithm, colIsCA,
}

func (w *Writer) openFile(p *partWriter) error {
	sc, err := fileSchema(w.layout.asDERBinary)
	if err != nil {
		return fmt.Errorf("parquet schema: %w", err)
	}
	p.rel = fmt.Sprintf("%s=%s/part-%05d-%s-c000.zstd.parquet", PartitionColumn, p.date, w.seq, uuid.NewString())
	w.seq++
	local := filepath.Join(w.t.path, filepath.FromSlash(p.rel))
	if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
		return fmt.Errorf("create partition directory: %w", err)
	}
	f, err := os.OpenFile(local, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("create data file: %w", err)
	}
	p.f = f
	p.buf = bufio.NewWriterSize(f, 1<<20)
	p.pw = file.NewParquetWriter(p.buf, sc, file.WithWriterProps(w.props))
	return nil
}

// closeFile finishes p's open file (flushing buffered rows) and queues it
// for the commit.
func (w *Writer) closeFile(p *partWriter) error {
	if err := w.flushBatch(p); err != nil {
		return err
	}
	if p.pw == nil {
		return nil
	}
	// file.Writer.Close drops footer errors, so each step is checked here.
	if p.rg != nil {
		if err := p.rg.Close(); err != nil {
			return fmt.Errorf("write %s: close row group: %w", p.rel, err)
		}
	}
	if err := p.pw.FlushWithFooter(); err != nil {
		return fmt.Errorf("write %s: footer: %w", p.rel, err)
	}
	_ = p.pw.Close() // the sink is a bufio.Writer: nothing left to fail
	if err := p.buf.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", p.rel, err)
	}
	// Durable before the commit that references it can land.
	if err := p.f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", p.rel, err)
	}
	fi, err := p.f.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", p.rel, err)
	}
	if err := p.f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", p.rel, err)
	}
	w.done = append(w.done, writtenFile{
		rel:      p.rel,
		date:     p.date,
		size:     fi.Size(),
		modified: fi.ModTime().UnixMilli(),
		stats:    p.stats,
	})
	*p = partWriter{date: p.date, batch: p.batch[:0]}
	return nil
}

// Commit writes the remaining files and commits every file of this Writer
// in one Delta commit. With nothing written and no Txn, no commit is made.
// When the Txn was already committed, or a concurrent commit conflicts,
// the files are removed. On any other error the files are left in place
// (the commit may have landed); orphan files are invisible to readers, and
// Abort removes them when the caller knows the commit did not land.
// The Writer cannot be used after Commit.
func (w *Writer) Commit(ctx context.Context, opts CommitOptions) (CommitResult, error) {
	if w.err != nil {
		return CommitResult{}, w.err
	}
	if w.closed {
		return CommitResult{}, errors.New("commit: writer is closed")
	}
	dates := make([]string, 0, len(w.parts))
	for d := range w.parts {
		dates = append(dates, d)
	}
	slices.Sort(dates)
	for _, d := range dates {
		if err := w.closeFile(w.parts[d]); err != nil {
			w.err = err
			return CommitResult{}, err
		}
	}
	w.closed = true
	res := CommitResult{Files: len(w.done)}
	for _, f := range w.done {
		res.Rows += f.stats.n
	}

	// Failures before the Delta commit is attempted cannot have landed.
	fail := func(err error) (CommitResult, error) {
		w.removeFiles()
		w.err = fmt.Errorf("commit to %s: %w", w.t.path, err)
		return CommitResult{}, w.err
	}
	snap, err := w.t.dt.Snapshot(ctx)
	if err != nil {
		return fail(err)
	}
	l, err := conform(snap.Schema, snap.Metadata.PartitionColumns)
	if err != nil {
		return fail(err)
	}
	if l.asDERBinary != w.layout.asDERBinary {
		return fail(fmt.Errorf("%w: as_der type changed since the table was opened", delta.ErrConflict))
	}
	if snap.Protocol.MinWriterVersion > 2 {
		return fail(fmt.Errorf("%w: writer version %d (certlake writes version 2 tables)", delta.ErrUnsupported, snap.Protocol.MinWriterVersion))
	}
	if len(w.done) == 0 && opts.Txn == nil {
		w.committed = true
		res.Version = snap.Version
		return res, nil
	}

	actions := make([]delta.Action, 0, len(w.done))
	for _, f := range w.done {
		stats, err := f.stats.json()
		if err != nil {
			return fail(fmt.Errorf("stats of %s: %w", f.rel, err))
		}
		actions = append(actions, delta.Action{Add: &delta.Add{
			Path:             escapePath(f.rel),
			PartitionValues:  map[string]string{PartitionColumn: f.date},
			Size:             f.size,
			ModificationTime: f.modified,
			DataChange:       true,
			Stats:            stats,
		}})
	}
	op := opts.Operation
	if op == "" {
		op = "WRITE"
	}
	schemaString := snap.Metadata.SchemaString
	check := func(winning []delta.Action) error {
		for _, a := range winning {
			if a.MetaData != nil && (a.MetaData.SchemaString != schemaString || !slices.Equal(a.MetaData.PartitionColumns, snap.Metadata.PartitionColumns)) {
				return fmt.Errorf("%w: a concurrent commit changed the table's schema", delta.ErrConflict)
			}
		}
		if opts.Check != nil {
			return opts.Check(winning)
		}
		return nil
	}
	cr, err := w.t.dt.Commit(ctx, snap.Version, actions, delta.CommitOptions{Operation: op, Txn: opts.Txn, Check: check})
	if err != nil {
		if errors.Is(err, delta.ErrConflict) {
			w.removeFiles()
		}
		w.err = fmt.Errorf("commit to %s: %w", w.t.path, err)
		return CommitResult{}, w.err
	}
	w.committed = true
	res.Version = cr.Version
	if cr.Skipped {
		w.removeFiles()
		return CommitResult{Version: cr.Version, Skipped: true}, nil
	}
	w.t.log.DebugContext(ctx, "committed", "table", w.t.path, "version", res.Version, "files", res.Files, "rows", res.Rows)
	return res, nil
}

// Abort closes and removes every file this Writer wrote. It is safe to call
// more than once and after a failed Commit; after a successful Commit it
// does nothing.
func (w *Writer) Abort() {
	if w.committed {
		return
	}
	for _, p := range w.parts {
		if p.f != nil {
			_ = p.f.Close()
			_ = os.Remove(filepath.Join(w.t.path, filepath.FromSlash(p.rel)))
		}
		*p = partWriter{date: p.date}
	}
	w.removeFiles()
	w.closed = true
	if w.err == nil {
		w.err = errors.New("writer aborted")
	}
}

func (w *Writer) removeFiles() {
	for _, f := range w.done {
		_ = os.Remove(filepath.Join(w.t.path, filepath.FromSlash(f.rel)))
	}
	w.done = nil
}

// escapePath URI-encodes a relative data file path for the log, segment by
// segment, as Delta requires.
func escapePath(rel string) string {
	segs := strings.Split(rel, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// Append writes rows with default WriterOptions and commits them.
func (t *Table) Append(ctx context.Context, rows []record.Row, opts CommitOptions) (CommitResult, error) {
	w := t.NewWriter(WriterOptions{})
	for _, r := range rows {
		if err := w.Write(r); err != nil {
			w.Abort()
			return CommitResult{}, err
		}
	}
	return w.Commit(ctx, opts)
}
