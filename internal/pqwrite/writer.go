// Package pqwrite writes Parquet files of a fixed, flat schema: required
// INT64, BOOLEAN and BYTE_ARRAY columns and required LISTs of optional
// BYTE_ARRAY elements, each plain or dictionary encoded, zstd compressed
// or not, with min/max statistics where asked. It is the encoder behind
// certlake's data files (spec 2.1): it writes column chunks straight from
// the caller's column slices into pages, where a general Parquet library
// spends most of a backfill's CPU on per-value bookkeeping.
//
// Format: https://github.com/apache/parquet-format (data page v1, the
// RLE/bit-packed hybrid for levels and dictionary indices, Thrift compact
// metadata).
package pqwrite

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Type is a column's physical and logical type.
type Type int

const (
	Int64           Type = iota // INT64
	TimestampMicros             // INT64, TIMESTAMP(MICROS, UTC)
	Boolean                     // BOOLEAN
	String                      // BYTE_ARRAY, STRING
	Binary                      // BYTE_ARRAY
	StringList                  // required LIST of optional STRING elements
)

// Column describes one top-level column.
type Column struct {
	Name       string
	Type       Type
	Dictionary bool // dictionary encoding (falls back to plain past Options.DictionaryBytes)
	Stats      bool // min/max statistics in the footer
	Codec      Codec
}

// Codec is a column's page compression.
type Codec int

const (
	// Uncompressed stores pages as they are.
	Uncompressed Codec = iota
	// Zstd compresses pages with Options.Zstd.
	Zstd
	// Snappy compresses pages as Snappy blocks, made by S2's
	// Snappy-compatible encoder: three to four times faster than zstd at
	// its fastest level on base64 certificates, for output 45-60%
	// larger. Every Parquet reader decodes it.
	Snappy
)

// parquetCodec is c's CompressionCodec value in the footer.
func (c Codec) parquetCodec() int32 {
	switch c {
	case Zstd:
		return codecZstd
	case Snappy:
		return codecSnappy
	}
	return codecUncompressed
}

// Options tune a Writer. The zero value uses the defaults.
type Options struct {
	// CreatedBy is the footer's created_by.
	CreatedBy string
	// PageBytes ends a data page once its values take this many bytes;
	// 0 means 1 MiB.
	PageBytes int
	// DictionaryBytes is the largest dictionary a column chunk keeps
	// before it writes the rest of its values plain; 0 means 1 MiB.
	DictionaryBytes int
	// Zstd compresses the pages of compressed columns; nil makes one at
	// the fastest level. It may be shared by Writers (EncodeAll is safe
	// for concurrent use).
	Zstd *zstd.Encoder
	// Pool lends the memory of buffered column chunks; nil allocates.
	Pool *Pool
}

// NewZstd returns a zstd encoder for Options.Zstd at the given level
// (1 fastest to 4 best), for concurrent use by up to GOMAXPROCS columns.
func NewZstd(level int) (*zstd.Encoder, error) {
	return zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)),
		zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)),
		zstd.WithEncoderCRC(false),
		zstd.WithZeroFrames(true),
	)
}

// Writer writes one Parquet file. Rows go in column by column through
// Column(i); EndRowGroup writes the buffered row group to the file, and
// Close writes the footer. Different columns may be written concurrently;
// everything else is single-threaded.
type Writer struct {
	out    io.Writer
	off    int64
	opts   Options
	zstd   *zstd.Encoder
	cols   []*ColumnWriter
	schema []schemaElement
	groups []rowGroupMeta
	err    error // sticky write error
	closed bool
}

var magic = []byte("PAR1")

// NewWriter starts a file on out with the given columns.
func NewWriter(out io.Writer, cols []Column, opts Options) (*Writer, error) {
	if opts.PageBytes <= 0 {
		opts.PageBytes = 1 << 20
	}
	if opts.DictionaryBytes <= 0 {
		opts.DictionaryBytes = 1 << 20
	}
	w := &Writer{out: out, opts: opts, zstd: opts.Zstd}
	if w.zstd == nil {
		var err error
		if w.zstd, err = NewZstd(1); err != nil {
			return nil, fmt.Errorf("zstd encoder: %w", err)
		}
	}
	w.schema = append(w.schema, schemaElement{typ: -1, repetition: repRequired, name: "schema", numChildren: int32(len(cols)), converted: -1})
	seen := make(map[string]bool)
	for _, col := range cols {
		if col.Name == "" || seen[col.Name] {
			return nil, fmt.Errorf("column name %q is empty or repeated", col.Name)
		}
		seen[col.Name] = true
		c := &ColumnWriter{spec: col, w: w, path: []string{col.Name}}
		leaf := schemaElement{repetition: repRequired, name: col.Name, converted: -1}
		switch col.Type {
		case Int64:
			leaf.typ = typeInt64
		case TimestampMicros:
			leaf.typ, leaf.converted, leaf.logical = typeInt64, convertedTimestampMicros, logicalTimestampMicrosUTC
		case Boolean:
			leaf.typ = typeBoolean
			if col.Dictionary {
				return nil, fmt.Errorf("column %s: dictionary encoding of booleans is not supported", col.Name)
			}
		case String:
			leaf.typ, leaf.converted, leaf.logical = typeByteArray, convertedUTF8, logicalString
		case Binary:
			leaf.typ = typeByteArray
		case StringList:
			w.schema = append(w.schema,
				schemaElement{typ: -1, repetition: repRequired, name: col.Name, numChildren: 1, converted: convertedList, logical: logicalList},
				schemaElement{typ: -1, repetition: repRepeated, name: "list", numChildren: 1, converted: -1})
			leaf = schemaElement{typ: typeByteArray, repetition: repOptional, name: "element", converted: convertedUTF8, logical: logicalString}
			c.path = []string{col.Name, "list", "element"}
			c.maxDef, c.maxRep = 2, 1
		default:
			return nil, fmt.Errorf("column %s: unknown type %d", col.Name, col.Type)
		}
		c.typ = leaf.typ
		if col.Dictionary {
			if c.typ == typeInt64 {
				c.dictI64 = make(map[int64]uint32)
			} else {
				c.dictStr = make(map[string]uint32)
			}
		}
		c.rowGroupReset()
		w.schema = append(w.schema, leaf)
		w.cols = append(w.cols, c)
	}
	if err := w.write(magic); err != nil {
		return nil, err
	}
	return w, nil
}

// Reset starts a new file on out with the same columns, keeping the
// buffers of the last one: a Writer that is reused saves growing its page
// buffers again for each file. Reset after Close, or to abandon a file.
func (w *Writer) Reset(out io.Writer) error {
	w.out, w.off, w.err, w.closed = out, 0, nil, false
	clear(w.groups)
	w.groups = w.groups[:0]
	for _, c := range w.cols {
		c.rowGroupReset()
	}
	return w.write(magic)
}

// Options returns the options the Writer was made with, defaults filled
// in.
func (w *Writer) Options() Options {
	o := w.opts
	o.Zstd = w.zstd
	return o
}

// Columns returns the columns the Writer was made with.
func (w *Writer) Columns() []Column {
	cols := make([]Column, len(w.cols))
	for i, c := range w.cols {
		cols[i] = c.spec
	}
	return cols
}

// Column returns the writer of leaf column i, in the order given to
// NewWriter.
func (w *Writer) Column(i int) *ColumnWriter { return w.cols[i] }

// BufferedBytes is the memory the open row group holds: encoded pages
// plus the values of each column's unfinished page.
func (w *Writer) BufferedBytes() int64 {
	var n int64
	for _, c := range w.cols {
		n += c.bufferedBytes()
	}
	return n
}

// Rows returns the rows written to the open row group (by its first
// column).
func (w *Writer) Rows() int64 {
	if len(w.cols) == 0 {
		return 0
	}
	return w.cols[0].rows
}

func (w *Writer) write(p []byte) error {
	if w.err != nil {
		return w.err
	}
	n, err := w.out.Write(p)
	w.off += int64(n)
	if err != nil {
		w.err = fmt.Errorf("write parquet: %w", err)
	}
	return w.err
}

func (w *Writer) writeBuf(b *segBuf) error {
	if w.err != nil {
		return w.err
	}
	n, err := b.writeTo(w.out)
	w.off += n
	if err != nil {
		w.err = fmt.Errorf("write parquet: %w", err)
	}
	return w.err
}

// EndRowGroup finishes every column's chunk (their last pages compressed
// in parallel) and writes the row group to the file. With no rows
// buffered it does nothing.
func (w *Writer) EndRowGroup() error {
	if w.closed {
		return errors.New("end row group: writer is closed")
	}
	if w.err != nil {
		return w.err
	}
	rows := w.Rows()
	for _, c := range w.cols {
		if c.rows != rows {
			return fmt.Errorf("end row group: column %s has %d rows, column %s %d", c.spec.Name, c.rows, w.cols[0].spec.Name, rows)
		}
	}
	if rows == 0 {
		return nil
	}
	dicts := make([]*segBuf, len(w.cols))
	stats := make([]*statistics, len(w.cols))
	errs := make([]error, len(w.cols))
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for i, c := range w.cols {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			dicts[i], stats[i], errs[i] = c.finish()
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	g := rowGroupMeta{numRows: rows, chunks: make([]chunkMeta, len(w.cols))}
	for i, c := range w.cols {
		dictBytes := 0
		if dicts[i] != nil {
			dictBytes = dicts[i].n
		}
		m := chunkMeta{
			typ:              c.typ,
			encodings:        c.encodings(),
			path:             c.path,
			codec:            c.spec.Codec.parquetCodec(),
			numValues:        c.numValues,
			uncompressedSize: c.uncompressed,
			compressedSize:   int64(dictBytes + c.chunk.n),
			dictionaryOffset: -1,
			stats:            stats[i],
		}
		if dicts[i] != nil {
			m.dictionaryOffset = w.off
			if err := w.writeBuf(dicts[i]); err != nil {
				return err
			}
			dicts[i].reset(w.opts.Pool)
		}
		m.dataPageOffset = w.off
		if err := w.writeBuf(&c.chunk); err != nil {
			return err
		}
		g.chunks[i] = m
		c.rowGroupReset()
	}
	w.groups = append(w.groups, g)
	return nil
}

// Close ends the open row group and writes the footer. It does not close
// the underlying writer.
func (w *Writer) Close() error {
	if w.closed {
		return errors.New("close: writer is closed")
	}
	if err := w.EndRowGroup(); err != nil {
		return err
	}
	w.closed = true
	meta := fileMeta(w.schema, w.groups, w.opts.CreatedBy, len(w.cols))
	meta = binary.LittleEndian.AppendUint32(meta, uint32(len(meta)))
	meta = append(meta, magic...)
	return w.write(meta)
}
