package lake

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"github.com/certlake/certlake/internal/delta"
	"github.com/certlake/certlake/internal/pqwrite"
	"github.com/certlake/certlake/internal/record"
	"github.com/certlake/certlake/internal/storage"
)

// WriterOptions tune a Writer. The zero value uses the defaults.
type WriterOptions struct {
	// TargetFileRows closes a data file after this many rows; 0 means
	// 262144.
	TargetFileRows int
	// RowGroupRows closes a row group after this many rows; 0 means 65536.
	RowGroupRows int
	// RowGroupBytes bounds the compressed pages held in memory over all
	// open row groups (a row group is written to its file only when it
	// ends): past it the largest row group ends early. 0 means 128 MiB.
	RowGroupBytes int64
	// CompressionLevel is the zstd level. 0 means 1 (zstd "fastest"):
	// certificates barely compress (the DER and hash columns are most of
	// the bytes), and higher levels cost more CPU than the append
	// throughput target allows for a few percent of size.
	CompressionLevel int
	// Compression chooses which columns are compressed; the zero value
	// means CompressionSpec for main tables and CompressionStaging for
	// staging tables.
	Compression Compression
}

// Compression chooses the codec of each column of a Writer's files.
type Compression int

const (
	// CompressionDefault is CompressionStaging on a staging table and
	// CompressionSpec on any other.
	CompressionDefault Compression = iota
	// CompressionSpec is zstd on every column, as spec 2.1 writes main.
	CompressionSpec
	// CompressionStaging is zstd on every column except two kinds:
	//   - the hex digests and the serial number (sha256, sha1,
	//     fingerprint, serial_number) are stored uncompressed: zstd
	//     shrinks hex only to ~55% (its entropy coding) at ~100 MB/s, a
	//     tenth of its speed on the other columns; those ~250 bytes a row
	//     took half of the compression CPU of a backfill for ~10% of the
	//     file size;
	//   - as_der is Snappy (pqwrite.Snappy): on base64 certificates zstd's
	//     fastest level ran at ~450-750 MB/s, a quarter of a backfill's
	//     CPU, where Snappy is 3-4x faster; that column gets 45-60%
	//     larger, a staged row 17-30% (measured on real and generated
	//     certificates).
	// Staging files live until the merge, which rewrites their rows into
	// main with CompressionSpec (DuckDB COPY), and every Parquet reader
	// reads per-column codecs.
	CompressionStaging
)

// plainColumns are the columns CompressionStaging leaves uncompressed.
var plainColumns = []string{"sha256", "sha1", "fingerprint", "serial_number"}

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
	if o.CompressionLevel == 0 {
		o.CompressionLevel = 1
	}
	return o
}

// batchRows is how many rows a partition buffers before handing them to the
// encoder; large enough to amortize the per-column goroutines, small enough
// that buffered rows stay a few MB.
const batchRows = 8192

// maxBufferedRows bounds the rows buffered in partial batches across all
// partitions. Past it the largest partial batch goes to the encoder early,
// so rows interleaved over many seen_date partitions (a merge of a staging
// table filled over several days) cannot hold a full batch each.
const maxBufferedRows = 2 * batchRows

// serialBatchRows: smaller batches are encoded column after column; a
// goroutine per column costs more than it saves for them.
const serialBatchRows = 1024

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
	// ReadVersion, when set, is the table version the caller based this
	// commit on (say, the snapshot it checked keys against): every commit
	// after it goes through Check. Unset, Commit reads the latest version
	// itself and Check sees only commits that land during Commit.
	ReadVersion *int64
}

// CommitResult tells what a commit did.
type CommitResult struct {
	Version int64 // the new version; the table's version when Skipped or nothing was committed
	Skipped bool  // Txn was already committed; nothing was written
	Files   int   // data files added
	Rows    int64 // rows added
}

// Writer appends rows to a table as Parquet files and commits them in one
// Delta commit. Rows are buffered per seen_date partition in batches that
// a background encoder writes into the partition's open file (the columns
// of a batch in parallel) while the caller keeps writing; files close at
// TargetFileRows. Memory stays bounded however many rows or partitions are
// written: at most maxBufferedRows rows in partial batches, two batches
// queued or being encoded, and RowGroupBytes of compressed row groups.
// A Writer is not safe for concurrent use.
type Writer struct {
	t      *Table
	opts   WriterOptions
	cols   []pqwrite.Column
	layout layout
	parts  map[string]*partWriter
	seq    int

	lastDay  int64  // Unix day of the last row's seen
	lastDate string // its seen_date

	validUTF8 map[*byte]string // repeated strings already checked, by address (checkRepeated)

	jobs     chan encodeJob
	buffered int           // rows in partial batches of all partitions
	encDone  chan struct{} // closed when the encoder goroutine ends
	enc      encoder       // owned by the encoder goroutine until encDone

	err       error // sticky: the first failure seen by the caller
	closed    bool
	committed bool
}

// partWriter is the caller-side state of one partition's open file.
type partWriter struct {
	date   string
	file   *openFile // nil until the first batch of a file
	rows   int       // rows in the file, encoded or buffered
	rgRows int       // rows in the current row group, by the caller's count
	batch  *batch
	stats  fileStats
}

// encodeJob asks the encoder to write rows into file and, when close is
// set, to finish the file with those stats.
type encodeJob struct {
	file     *openFile
	rows     *batch
	endGroup bool
	close    *fileStats
}

// openFile is one data file, owned by the encoder goroutine.
type openFile struct {
	rel  string // relative to the table root, slash separated, not escaped
	date string
	tmp  string // a remote table's file is written here, in scratch, then uploaded
	f    *os.File
	sink *asyncSink
	pw   *pqwrite.Writer
}

// writtenFile is a closed data file waiting for the commit.
type writtenFile struct {
	rel      string
	tmp      string // local file to upload at Commit (remote tables)
	date     string
	size     int64
	modified int64
	stats    fileStats
}

// encoder is the state of the encoder goroutine. The caller reads it only
// after encDone is closed.
type encoder struct {
	created []*openFile        // every file created, for Abort
	open    map[*openFile]bool // files being written
	err     error
	// Files are synced to disk in the background (fsync of a few hundred
	// MB would otherwise stall encoding); syncs tracks those goroutines,
	// mu guards what they report.
	syncs sync.WaitGroup
	mu    sync.Mutex
	done  []writtenFile
}

// compressionOf resolves CompressionDefault for t.
func (t *Table) compressionOf(c Compression) Compression {
	if c != CompressionDefault {
		return c
	}
	if t.role == RoleStaging {
		return CompressionStaging
	}
	return CompressionSpec
}

// NewWriter starts a Writer on t.
func (t *Table) NewWriter(opts WriterOptions) *Writer {
	opts = opts.withDefaults()
	w := &Writer{
		t:       t,
		opts:    opts,
		cols:    fileColumnSpecs(t.layout.asDERBinary, t.compressionOf(opts.Compression)),
		layout:  t.layout,
		parts:   make(map[string]*partWriter),
		jobs:    make(chan encodeJob, 1),
		encDone: make(chan struct{}),
	}
	w.enc.open = make(map[*openFile]bool)
	go w.encode()
	return w
}

// Write buffers one row. The row's strings and slices are referenced, not
// copied, until its batch is encoded; the caller must not modify them
// before Commit.
func (w *Writer) Write(row record.Row) error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return errors.New("write: writer is closed")
	}
	date, err := w.partitionOf(&row)
	if err != nil {
		return fmt.Errorf("write row %s/%d: %w: %w", row.SourceURL, row.CertIndex, ErrInvalidRow, err)
	}
	if err := w.checkUTF8(&row); err != nil {
		return fmt.Errorf("write row %q/%d: %w: %w", row.SourceURL, row.CertIndex, ErrInvalidRow, err)
	}
	p := w.parts[date]
	if p == nil {
		p = &partWriter{date: date}
		w.parts[date] = p
	}
	if p.batch == nil {
		p.batch = w.newBatch()
	}
	row.SeenDate = date
	p.batch.add(&row)
	w.buffered++
	p.rows++
	p.rgRows++
	p.stats.add(&row)
	switch {
	case p.rows >= w.opts.TargetFileRows:
		return w.send(p, true)
	case p.rgRows >= w.opts.RowGroupRows || p.batch.n >= batchRows:
		return w.send(p, false)
	case w.buffered >= maxBufferedRows:
		var big *partWriter
		for _, q := range w.parts {
			if q.batch != nil && (big == nil || q.batch.n > big.batch.n) {
				big = q
			}
		}
		return w.send(big, false)
	}
	return nil
}

// newBatch returns an empty batch, reusing one an encoder is done with.
func (w *Writer) newBatch() *batch {
	return w.t.bufs.getBatch(w.layout.asDERBinary)
}

// send hands p's batch to the encoder, closing the file when closeFile.
func (w *Writer) send(p *partWriter, closeFile bool) error {
	if p.file == nil {
		if p.batch == nil && !closeFile {
			return nil
		}
		p.file = &openFile{
			rel:  fmt.Sprintf("%s=%s/part-%05d-%s-c000.zstd.parquet", PartitionColumn, p.date, w.seq, uuid.NewString()),
			date: p.date,
		}
		w.seq++
	}
	if p.batch != nil {
		w.buffered -= p.batch.n
	}
	job := encodeJob{file: p.file, rows: p.batch, endGroup: p.rgRows >= w.opts.RowGroupRows}
	if job.endGroup {
		p.rgRows = 0
	}
	if closeFile {
		st := p.stats
		job.close = &st
		*p = partWriter{date: p.date}
	} else {
		p.batch = nil
	}
	select {
	case <-w.encDone:
		// The encoder failed; report it now rather than at Commit.
		w.err = w.encoderErr()
		return w.err
	default:
	}
	select {
	case w.jobs <- job:
		return nil
	case <-w.encDone:
		w.err = w.encoderErr()
		return w.err
	}
}

func (w *Writer) encoderErr() error {
	if w.enc.err != nil {
		return w.enc.err
	}
	return errors.New("writer encoder stopped")
}

// encode runs the encoder goroutine: it writes jobs in order until the jobs
// channel closes or a write fails (then it drains and drops the rest).
func (w *Writer) encode() {
	defer close(w.encDone)
	defer w.enc.syncs.Wait()
	for job := range w.jobs {
		if err := w.encodeJob(job); err != nil {
			w.enc.mu.Lock()
			if w.enc.err == nil {
				w.enc.err = err
			}
			w.enc.mu.Unlock()
			// Drop the remaining jobs so a caller blocked on sending one
			// moves on; it then sees encDone closed.
			go func() {
				for range w.jobs {
				}
			}()
			return
		}
	}
}

func (w *Writer) encodeJob(job encodeJob) error {
	f := job.file
	if job.rows != nil && job.rows.n > 0 {
		if f.pw == nil {
			if err := w.openFile(f); err != nil {
				return err
			}
		}
		if job.rows.n < serialBatchRows {
			for _, col := range columnOrder {
				if err := writeColumn(f.pw, col, job.rows); err != nil {
					return fmt.Errorf("write %s: %w", f.rel, err)
				}
			}
		} else {
			var g errgroup.Group
			g.SetLimit(runtime.GOMAXPROCS(0))
			// Costly columns first so the cheap ones fill the gaps.
			for _, col := range columnOrder {
				g.Go(func() error { return writeColumn(f.pw, col, job.rows) })
			}
			if err := g.Wait(); err != nil {
				return fmt.Errorf("write %s: %w", f.rel, err)
			}
		}
		w.enc.open[f] = true
		if job.endGroup {
			if err := endRowGroup(f); err != nil {
				return err
			}
		}
		if err := w.limitRowGroupBytes(); err != nil {
			return err
		}
	}
	if job.rows != nil {
		job.rows.reset() // drop references to the caller's data
		w.t.bufs.putBatch(job.rows)
	}
	if job.close != nil && f.pw != nil {
		delete(w.enc.open, f)
		return w.closeFile(f, *job.close)
	}
	return nil
}

// endRowGroup writes f's buffered row group to its file.
func endRowGroup(f *openFile) error {
	if err := f.pw.EndRowGroup(); err != nil {
		return fmt.Errorf("write %s: end row group: %w", f.rel, err)
	}
	return nil
}

// limitRowGroupBytes ends the largest open row groups until the memory
// they hold over all open files (compressed pages plus each column's page
// being filled) fits RowGroupBytes.
func (w *Writer) limitRowGroupBytes() error {
	for {
		var total, bigSize int64
		var big *openFile
		for f := range w.enc.open {
			if f.pw.Rows() == 0 {
				continue
			}
			n := f.pw.BufferedBytes()
			total += n
			if big == nil || n > bigSize {
				big, bigSize = f, n
			}
		}
		if total < w.opts.RowGroupBytes || big == nil {
			return nil
		}
		if err := endRowGroup(big); err != nil {
			return err
		}
	}
}

// columnOrder lists file columns by decreasing encoding cost.
var columnOrder = []int{
	colAsDER, colSHA256, colSHA1, colAllDomains, colFingerprint, colChain,
	colSerialNumber, colCertLink, colSubjectAggregated, colIssuerAggregated, colCertIndex,
	colSeen, colNotBefore, colNotAfter, colSourceURL, colSourceName, colUpdateType,
	colSignatureAlgorithm, colIsCA,
}

func (w *Writer) openFile(f *openFile) error {
	zstd, err := w.t.bufs.zstd(w.opts.CompressionLevel)
	if err != nil {
		return err
	}
	var fh *os.File
	if local, ok := w.t.localFile(f.rel); ok {
		if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
			return fmt.Errorf("create partition directory: %w", err)
		}
		fh, err = os.OpenFile(local, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	} else {
		// A remote table's file is written whole in this worker's
		// scratch and uploaded by Commit: nothing partial ever reaches
		// the store.
		fh, err = storage.CreateTemp(w.t.store, f.rel, w.t.scratch.dir())
		if fh != nil {
			f.tmp = fh.Name()
		}
	}
	if err != nil {
		return fmt.Errorf("create data file: %w", err)
	}
	w.enc.created = append(w.enc.created, f)
	f.f = fh
	f.sink = newAsyncSink(fh, w.t.bufs)
	f.pw, err = w.t.bufs.getFileWriter(f.sink, w.cols, pqwrite.Options{CreatedBy: "certlake", Zstd: zstd, Pool: w.t.bufs.pagePool()})
	if err != nil {
		return fmt.Errorf("parquet writer: %w", err)
	}
	return nil
}

// closeFile finishes f and queues it for the commit.
func (w *Writer) closeFile(f *openFile, st fileStats) error {
	if err := f.pw.Close(); err != nil {
		return fmt.Errorf("write %s: %w", f.rel, err)
	}
	w.t.bufs.putFileWriter(f.pw)
	f.pw = nil
	w.enc.syncs.Add(1)
	go func() {
		defer w.enc.syncs.Done()
		wf, err := syncFile(f, st)
		w.enc.mu.Lock()
		defer w.enc.mu.Unlock()
		if err != nil {
			if w.enc.err == nil {
				w.enc.err = err
			}
			return
		}
		w.enc.done = append(w.enc.done, wf)
	}()
	return nil
}

// syncFile waits for a file's writes, makes it durable, as it must be
// before the commit that references it can land, and closes it.
func syncFile(f *openFile, st fileStats) (writtenFile, error) {
	if err := f.sink.Close(); err != nil {
		return writtenFile{}, fmt.Errorf("write %s: %w", f.rel, err)
	}
	if err := f.f.Sync(); err != nil {
		return writtenFile{}, fmt.Errorf("sync %s: %w", f.rel, err)
	}
	fi, err := f.f.Stat()
	if err != nil {
		return writtenFile{}, fmt.Errorf("stat %s: %w", f.rel, err)
	}
	if err := f.f.Close(); err != nil {
		return writtenFile{}, fmt.Errorf("close %s: %w", f.rel, err)
	}
	return writtenFile{
		rel:      f.rel,
		tmp:      f.tmp,
		date:     f.date,
		size:     fi.Size(),
		modified: fi.ModTime().UnixMilli(),
		stats:    st,
	}, nil
}

// finish sends the last batch of every partition, closing their files, and
// waits for the encoder. Afterwards w.enc belongs to the caller.
func (w *Writer) finish() error {
	dates := make([]string, 0, len(w.parts))
	for d := range w.parts {
		dates = append(dates, d)
	}
	slices.Sort(dates)
	var err error
	for _, d := range dates {
		if p := w.parts[d]; p.rows > 0 {
			if err = w.send(p, true); err != nil {
				break
			}
		}
	}
	w.closed = true
	close(w.jobs)
	<-w.encDone
	if err != nil {
		return err
	}
	// Background syncs finish in any order; commit files in a stable one.
	slices.SortFunc(w.enc.done, func(a, b writtenFile) int { return strings.Compare(a.rel, b.rel) })
	return w.enc.err
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
	if err := w.finish(); err != nil {
		w.err = err
		return CommitResult{}, err
	}
	res := CommitResult{Files: len(w.enc.done)}
	for _, f := range w.enc.done {
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
	if len(w.enc.done) == 0 && opts.Txn == nil {
		w.committed = true
		res.Version = snap.Version
		return res, nil
	}
	if err := w.upload(ctx); err != nil {
		return fail(err)
	}

	actions := make([]delta.Action, 0, len(w.enc.done))
	for _, f := range w.enc.done {
		stats, err := f.stats.json()
		if err != nil {
			return fail(fmt.Errorf("stats of %s: %w", f.rel, err))
		}
		actions = append(actions, delta.Action{Add: &delta.Add{
			Path:             delta.EncodePath(f.rel),
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
	readVersion := snap.Version
	if opts.ReadVersion != nil {
		if *opts.ReadVersion > snap.Version || *opts.ReadVersion < 0 {
			return fail(fmt.Errorf("read version %d is not in [0, %d]", *opts.ReadVersion, snap.Version))
		}
		readVersion = *opts.ReadVersion
	}
	cr, err := w.t.dt.Commit(ctx, readVersion, actions, delta.CommitOptions{Operation: op, Txn: opts.Txn, Check: check})
	if err != nil {
		if errors.Is(err, delta.ErrConflict) {
			w.removeFiles()
		}
		w.err = fmt.Errorf("commit to %s: %w", w.t.path, err)
		return CommitResult{}, w.err
	}
	w.committed = true
	res.Version = cr.Version
	for _, f := range w.enc.done {
		if f.tmp != "" {
			_ = os.Remove(f.tmp) // uploaded and committed
		}
	}
	if cr.Skipped {
		w.removeFiles()
		return CommitResult{Version: cr.Version, Skipped: true}, nil
	}
	w.t.log.DebugContext(ctx, "committed", "table", w.t.path, "version", res.Version, "files", res.Files, "rows", res.Rows)
	return res, nil
}

// Abort stops the Writer and removes every file it wrote. It is safe to
// call more than once and after a failed Commit; after a successful Commit
// it does nothing. A Writer must end with Commit or Abort, or its encoder
// goroutine is left running.
func (w *Writer) Abort() {
	if w.committed {
		return
	}
	if !w.closed {
		w.closed = true
		close(w.jobs)
	}
	<-w.encDone
	for _, f := range w.enc.created {
		if f.sink != nil {
			_ = f.sink.Close()
		}
		if f.f != nil {
			_ = f.f.Close() // may be closed already
		}
		if f.tmp != "" {
			_ = os.Remove(f.tmp)
			w.deleteObject(f.rel)
			continue
		}
		// The partition directory stays: a concurrent writer may be
		// about to create its file there.
		_ = os.Remove(filepath.Join(w.t.path, filepath.FromSlash(f.rel)))
	}
	w.enc.created = nil
	w.enc.done = nil
	if w.err == nil {
		w.err = errors.New("writer aborted")
	}
}

func (w *Writer) removeFiles() {
	for _, f := range w.enc.done {
		if f.tmp != "" {
			_ = os.Remove(f.tmp)
			w.deleteObject(f.rel)
			continue
		}
		_ = os.Remove(filepath.Join(w.t.path, filepath.FromSlash(f.rel)))
	}
	w.enc.done = nil
}

// deleteObject removes an uploaded data file of a remote table that will
// not be committed (best effort: an orphan is invisible, and vacuum
// reclaims it).
func (w *Writer) deleteObject(rel string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = w.t.store.Delete(ctx, rel)
}

// upload puts the files of a remote table into the store, a few at a time,
// before the commit names them. Local tables' files are in place already.
func (w *Writer) upload(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for _, f := range w.enc.done {
		if f.tmp == "" {
			continue
		}
		g.Go(func() error {
			fh, err := os.Open(f.tmp)
			if err != nil {
				return fmt.Errorf("upload %s: %w", f.rel, err)
			}
			defer fh.Close()
			if err := w.t.store.Put(gctx, f.rel, fh, f.size); err != nil {
				return fmt.Errorf("upload %s: %w", f.rel, err)
			}
			return nil
		})
	}
	return g.Wait()
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

// checkUTF8 refuses a row with a string column that is not valid UTF-8:
// Parquet STRING is UTF-8, and one bad byte makes the whole data file
// unreadable by DuckDB and arrow-rs (and the stats JSON would silently
// rewrite it). source_name comes from config, the rest from the record
// builder; the error names the column, the byte and what to fix.
//
// Values that repeat from row to row (the log's name and URL, the issuer,
// the chain elements the record builder caches) are checked once per
// Writer: the chain is most of a row's bytes.
func (w *Writer) checkUTF8(row *record.Row) error {
	for _, c := range [...]struct{ col, s string }{
		{"cert_link", row.CertLink}, {"serial_number", row.SerialNumber}, {"fingerprint", row.Fingerprint},
		{"sha256", row.SHA256}, {"sha1", row.SHA1}, {"subject_aggregated", row.SubjectAggregated},
	} {
		if !utf8.ValidString(c.s) {
			return notUTF8(c.col, c.s)
		}
	}
	for _, d := range row.AllDomains {
		if !utf8.ValidString(d) {
			return notUTF8("all_domains", d)
		}
	}
	for _, c := range [...]struct{ col, s string }{
		{"update_type", row.UpdateType}, {"source_name", row.SourceName}, {"source_url", row.SourceURL},
		{"signature_algorithm", row.SignatureAlgorithm}, {"issuer_aggregated", row.IssuerAggregated},
	} {
		if err := w.checkRepeated(c.col, c.s); err != nil {
			return err
		}
	}
	for _, c := range row.Chain {
		if err := w.checkRepeated("chain", c); err != nil {
			return err
		}
	}
	return nil
}

// checkRepeated checks s unless this Writer has seen it valid already.
// Strings are remembered by where their bytes are: the record builder
// hands out one string per cached chain element, and the log's name and
// URL are the same string on every row. The map holds each string, so its
// bytes cannot be freed and reused while the entry exists, and strings do
// not change: the same address and length are the same bytes.
func (w *Writer) checkRepeated(col, s string) error {
	if len(s) == 0 {
		return nil
	}
	p := unsafe.StringData(s)
	if v, ok := w.validUTF8[p]; ok && len(v) == len(s) {
		return nil
	}
	if !utf8.ValidString(s) {
		return notUTF8(col, s)
	}
	if w.validUTF8 == nil || len(w.validUTF8) >= maxValidUTF8 {
		w.validUTF8 = make(map[*byte]string, 64)
	}
	w.validUTF8[p] = s
	return nil
}

// maxValidUTF8 bounds the strings a Writer remembers as valid UTF-8.
const maxValidUTF8 = 4096

// notUTF8 describes an invalid string of column col: the first bad byte,
// its offset, and what to fix.
func notUTF8(col, s string) error {
	i := 0
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n <= 1 {
			break
		}
		i += n
	}
	fix := "the record builder must produce valid UTF-8"
	if col == "source_name" {
		fix = "fix the log's name (ct.custom_logs[].name or ct.static_logs[].name in the config, or its description in the log list)"
	}
	return fmt.Errorf("column %s is not valid UTF-8 (byte 0x%02x at offset %d of %q): %s", col, s[i], i, strings.ToValidUTF8(s, "\uFFFD"), fix)
}

// partitionOf validates a row and returns its seen_date. The date string of
// the last day seen is cached: formatting it for every row would cost more
// than the rest of Write.
func (w *Writer) partitionOf(row *record.Row) (string, error) {
	if row.CertIndex > math.MaxInt64 {
		return "", fmt.Errorf("cert_index %d does not fit a Delta long", row.CertIndex)
	}
	if row.Seen.IsZero() {
		return "", errors.New("seen is not set")
	}
	sec := row.Seen.Unix()
	day := sec / 86400
	if sec%86400 < 0 {
		day-- // floor for times before 1970
	}
	if day != w.lastDay || w.lastDate == "" {
		w.lastDay, w.lastDate = day, row.Seen.UTC().Format(time.DateOnly)
	}
	if row.SeenDate != "" && row.SeenDate != w.lastDate {
		return "", fmt.Errorf("seen_date %q is not the UTC date of seen %s", row.SeenDate, row.Seen.UTC().Format(time.RFC3339Nano))
	}
	return w.lastDate, nil
}
