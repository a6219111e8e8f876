package keyindex

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/RoaringBitmap/roaring/v2/roaring64"
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/certlake/certlake/internal/storage"
)

// batchRows is the rows decoded at a time.
const batchRows = 64 << 10

// ReadFileKeys reads the keys of the Parquet data file at path (see
// ReadKeys).
func ReadFileKeys(ctx context.Context, path string) (Keys, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("read keys: %w", err)
	}
	defer f.Close()
	keys, rows, err := ReadKeys(ctx, f)
	if err != nil {
		return nil, 0, fmt.Errorf("read keys of %s: %w", path, err)
	}
	return keys, rows, nil
}

// ReadKeys reads the source_url and cert_index columns of a Parquet data
// file (only those two, a batch at a time: memory is one row group's two
// column chunks) and returns its keys and the number of rows holding one.
// Rows with a null or negative key hold none (cert_index is never negative
// in a CT table). source_url is read as dictionary indices (how writers
// store a column of a few dozen values), so a row costs an array lookup;
// rows sorted by key, or interleaving logs that are each in order (a live
// ingester's files), become runs of AddRange.
func ReadKeys(ctx context.Context, r parquet.ReaderAtSeeker) (Keys, int64, error) {
	pf, err := file.NewParquetReader(r)
	if err != nil {
		return nil, 0, err
	}
	defer pf.Close()
	sch := pf.MetaData().Schema
	urlCol, idxCol := sch.ColumnIndexByName("source_url"), sch.ColumnIndexByName("cert_index")
	if urlCol < 0 || idxCol < 0 {
		return nil, 0, fmt.Errorf("no source_url or cert_index column")
	}
	if t := sch.Column(urlCol).PhysicalType(); t != parquet.Types.ByteArray {
		return nil, 0, fmt.Errorf("source_url is %s, want a string", t)
	}
	props := pqarrow.ArrowReadProperties{BatchSize: batchRows}
	props.SetReadDict(urlCol, true)
	fr, err := pqarrow.NewFileReader(pf, props, memory.DefaultAllocator)
	if err != nil {
		return nil, 0, err
	}
	b := newBuilder()
	var rows int64
	// One row group at a time: a batch spanning two row groups would join
	// two dictionaries, which pqarrow does not unify.
	pre, _ := r.(storage.Prefetcher)
	for g := range pf.NumRowGroups() {
		if pre != nil {
			if err := prefetchKeys(pf, g, urlCol, idxCol, pre); err != nil {
				return nil, 0, fmt.Errorf("row group %d: %w", g, err)
			}
		}
		n, err := readRowGroup(ctx, fr, g, urlCol, idxCol, b)
		if err != nil {
			return nil, 0, fmt.Errorf("row group %d: %w", g, err)
		}
		rows += n
	}
	return b.keys(), rows, nil
}

// prefetchKeys fetches the two key column chunks of row group g of a
// remote file in one request when they lie close together (as writers
// lay out a row group's columns in order), saving a round trip per row
// group; far apart, each is left to its own read.
func prefetchKeys(pf *file.Reader, g, urlCol, idxCol int, pre storage.Prefetcher) error {
	rg := pf.MetaData().RowGroup(g)
	var lo, hi, sum int64 = 1<<63 - 1, 0, 0
	for _, c := range []int{urlCol, idxCol} {
		cc, err := rg.ColumnChunk(c)
		if err != nil {
			return err
		}
		start := cc.DataPageOffset()
		if cc.HasDictionaryPage() && cc.DictionaryPageOffset() > 0 && cc.DictionaryPageOffset() < start {
			start = cc.DictionaryPageOffset()
		}
		lo, hi, sum = min(lo, start), max(hi, start+cc.TotalCompressedSize()), sum+cc.TotalCompressedSize()
	}
	if hi <= lo || hi-lo > 2*sum+1<<20 {
		return nil
	}
	return pre.Prefetch(lo, hi-lo)
}

func readRowGroup(ctx context.Context, fr *pqarrow.FileReader, g, urlCol, idxCol int, b *builder) (int64, error) {
	rr, err := fr.GetRecordReader(ctx, []int{urlCol, idxCol}, []int{g})
	if err != nil {
		return 0, err
	}
	defer rr.Release()
	var (
		rows int64
		ids  []int32 // per dictionary position, the builder's log id
	)
	for rr.Next() {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		rec := rr.RecordBatch()
		ui, ii := rec.Schema().FieldIndices("source_url"), rec.Schema().FieldIndices("cert_index")
		if len(ui) != 1 || len(ii) != 1 {
			return 0, fmt.Errorf("record batch without source_url or cert_index")
		}
		urls, idx := rec.Column(ui[0]), rec.Column(ii[0])
		value, err := indexValues(idx)
		if err != nil {
			return 0, err
		}
		n := int(rec.NumRows())
		nulls := urls.NullN() > 0 || idx.NullN() > 0
		switch u := urls.(type) {
		case *array.Dictionary:
			dict, err := stringsOf(u.Dictionary())
			if err != nil {
				return 0, err
			}
			ids = ids[:0]
			for _, d := range dict {
				ids = append(ids, b.urlID(d))
			}
			codes, err := dictCodes(u.Indices())
			if err != nil {
				return 0, err
			}
			for i := range n {
				if nulls && (u.IsNull(i) || idx.IsNull(i)) {
					continue
				}
				if x := value(i); x >= 0 {
					b.add(ids[codes(i)], uint64(x))
					rows++
				}
			}
		default:
			strs, err := stringsOf(urls)
			if err != nil {
				return 0, err
			}
			for i := range n {
				if nulls && (urls.IsNull(i) || idx.IsNull(i)) {
					continue
				}
				if x := value(i); x >= 0 {
					b.add(b.urlID(strs[i]), uint64(x))
					rows++
				}
			}
		}
	}
	if err := rr.Err(); err != nil && !errors.Is(err, io.EOF) {
		return 0, err
	}
	return rows, nil
}

// indexValues returns the cert_index of row i of a column of any integer
// type a writer may have used.
func indexValues(a arrow.Array) (func(i int) int64, error) {
	switch c := a.(type) {
	case *array.Int64:
		v := c.Int64Values()
		return func(i int) int64 { return v[i] }, nil
	case *array.Int32:
		v := c.Int32Values()
		return func(i int) int64 { return int64(v[i]) }, nil
	case *array.Uint64:
		v := c.Uint64Values()
		return func(i int) int64 { return int64(min(v[i], 1<<63-1)) }, nil
	case *array.Uint32:
		v := c.Uint32Values()
		return func(i int) int64 { return int64(v[i]) }, nil
	}
	return nil, fmt.Errorf("cert_index is %s, want an integer", a.DataType())
}

// dictCodes returns the dictionary position of row i.
func dictCodes(a arrow.Array) (func(i int) int, error) {
	switch c := a.(type) {
	case *array.Int32:
		v := c.Int32Values()
		return func(i int) int { return int(v[i]) }, nil
	case *array.Int16:
		v := c.Int16Values()
		return func(i int) int { return int(v[i]) }, nil
	case *array.Int8:
		v := c.Int8Values()
		return func(i int) int { return int(v[i]) }, nil
	case *array.Int64:
		v := c.Int64Values()
		return func(i int) int { return int(v[i]) }, nil
	}
	return nil, fmt.Errorf("source_url dictionary indices are %s", a.DataType())
}

// stringsOf returns the values of a string or binary column (nulls as "").
func stringsOf(a arrow.Array) ([]string, error) {
	out := make([]string, a.Len())
	switch c := a.(type) {
	case *array.String:
		for i := range out {
			out[i] = c.Value(i)
		}
	case *array.LargeString:
		for i := range out {
			out[i] = c.Value(i)
		}
	case *array.Binary:
		for i := range out {
			out[i] = string(c.Value(i))
		}
	default:
		return nil, fmt.Errorf("source_url is %s, want a string", a.DataType())
	}
	return out, nil
}

// builder accumulates keys per log, as runs.
type builder struct {
	byURL map[string]int32
	names []string
	logs  []*logRuns
}

type logRuns struct {
	bm         *roaring64.Bitmap
	start, end uint64 // current run [start, end)
}

func newBuilder() *builder { return &builder{byURL: map[string]int32{}} }

func (b *builder) urlID(u string) int32 {
	id, ok := b.byURL[u]
	if !ok {
		id = int32(len(b.names))
		b.names = append(b.names, u)
		b.byURL[u] = id
		b.logs = append(b.logs, &logRuns{bm: roaring64.New()})
	}
	return id
}

func (b *builder) add(id int32, x uint64) {
	l := b.logs[id]
	if x == l.end && l.end > l.start {
		l.end++
		return
	}
	if l.end > l.start {
		l.bm.AddRange(l.start, l.end)
	}
	l.start, l.end = x, x+1
}

func (b *builder) keys() Keys {
	out := Keys{}
	for i, l := range b.logs {
		if l.end > l.start {
			l.bm.AddRange(l.start, l.end)
		}
		if l.bm.IsEmpty() {
			continue
		}
		l.bm.RunOptimize()
		out[b.names[i]] = l.bm
	}
	return out
}
