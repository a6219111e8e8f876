package keyindex

import (
	"context"
	"fmt"
	"os"
	"unsafe"

	"github.com/RoaringBitmap/roaring/v2/roaring64"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
)

// batchRows is the rows decoded at a time: the two columns' values of a
// batch stay in cache.
const batchRows = 8192

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
// in a CT table). Rows sorted by key, or interleaving logs that are each
// in order (a live ingester's files), become runs of AddRange.
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
	if t := sch.Column(idxCol).PhysicalType(); t != parquet.Types.Int64 && t != parquet.Types.Int32 {
		return nil, 0, fmt.Errorf("cert_index is %s, want an integer", t)
	}
	b := newBuilder()
	var (
		urls      = make([]parquet.ByteArray, batchRows)
		urlDefs   = make([]int16, batchRows)
		ids       = make([]int32, batchRows)
		idx64     = make([]int64, batchRows)
		idx32     = make([]int32, batchRows)
		idxDefs   = make([]int16, batchRows)
		rowsTotal int64
	)
	for g := range pf.NumRowGroups() {
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		rg := pf.RowGroup(g)
		uc, err := rg.Column(urlCol)
		if err != nil {
			return nil, 0, err
		}
		ic, err := rg.Column(idxCol)
		if err != nil {
			return nil, 0, err
		}
		ur, ok := uc.(*file.ByteArrayColumnChunkReader)
		if !ok {
			return nil, 0, fmt.Errorf("source_url column reader is %T", uc)
		}
		urlNullable := uc.Descriptor().MaxDefinitionLevel() > 0
		idxNullable := ic.Descriptor().MaxDefinitionLevel() > 0
		for left := rg.NumRows(); left > 0; {
			n := min(int64(batchRows), left)
			// source_url: resolve each row's log to a small id now, while
			// the page buffers the values point into are current.
			got, err := readFull(n, func(want int64, voff, loff int) (int64, int, error) {
				return ur.ReadBatch(want, urls[voff:], urlDefs[loff:], nil)
			}, func(lo, hi, vlo int) {
				v := vlo
				for i := lo; i < hi; i++ {
					if urlNullable && urlDefs[i] == 0 {
						ids[i] = -1
						continue
					}
					ids[i] = b.urlID(urls[v])
					v++
				}
			})
			if err != nil {
				return nil, 0, fmt.Errorf("row group %d source_url: %w", g, err)
			}
			if got != n {
				return nil, 0, fmt.Errorf("row group %d: source_url has %d rows, want %d", g, got, n)
			}
			var vals []int64
			switch c := ic.(type) {
			case *file.Int64ColumnChunkReader:
				got, err = readFull(n, func(want int64, voff, loff int) (int64, int, error) {
					return c.ReadBatch(want, idx64[voff:], idxDefs[loff:], nil)
				}, nil)
				vals = idx64
			case *file.Int32ColumnChunkReader:
				got, err = readFull(n, func(want int64, voff, loff int) (int64, int, error) {
					return c.ReadBatch(want, idx32[voff:], idxDefs[loff:], nil)
				}, nil)
				for i := range idx32[:n] {
					idx64[i] = int64(idx32[i])
				}
				vals = idx64
			default:
				return nil, 0, fmt.Errorf("cert_index column reader is %T", ic)
			}
			if err != nil {
				return nil, 0, fmt.Errorf("row group %d cert_index: %w", g, err)
			}
			if got != n {
				return nil, 0, fmt.Errorf("row group %d: cert_index has %d rows, want %d", g, got, n)
			}
			v := 0
			for i := range int(n) {
				if idxNullable && idxDefs[i] == 0 {
					continue
				}
				x := vals[v]
				v++
				if ids[i] < 0 || x < 0 {
					continue
				}
				rowsTotal++
				b.add(ids[i], uint64(x))
			}
			left -= n
		}
	}
	return b.keys(), rowsTotal, nil
}

// readFull calls read until n rows (levels) are read or the column ends.
// read fills values from voff (non-null values are packed) and levels from
// loff. each, when set, is called for the rows [lo, hi) just read with the
// index of their first value.
func readFull(n int64, read func(want int64, voff, loff int) (int64, int, error), each func(lo, hi, vlo int)) (int64, error) {
	var rows int64
	values := 0
	for rows < n {
		total, vals, err := read(n-rows, values, int(rows))
		if err != nil {
			return rows, err
		}
		if total == 0 {
			break
		}
		if each != nil {
			each(int(rows), int(rows+total), values)
		}
		rows += total
		values += vals
	}
	return rows, nil
}

// builder accumulates keys per log, as runs.
type builder struct {
	byURL map[string]int32
	// ptrs caches the id of a value by where its bytes live: a dictionary
	// page's values are the same bytes on every row.
	ptrs  map[unsafe.Pointer]int32
	names []string
	logs  []*logRuns
}

type logRuns struct {
	bm         *roaring64.Bitmap
	start, end uint64 // current run [start, end)
}

func newBuilder() *builder {
	return &builder{byURL: map[string]int32{}, ptrs: map[unsafe.Pointer]int32{}}
}

func (b *builder) urlID(v parquet.ByteArray) int32 {
	var p unsafe.Pointer
	if len(v) > 0 {
		p = unsafe.Pointer(unsafe.SliceData(v))
		if id, ok := b.ptrs[p]; ok && b.names[id] == string(v) {
			return id
		}
	}
	id, ok := b.byURL[string(v)]
	if !ok {
		id = int32(len(b.names))
		b.names = append(b.names, string(v))
		b.byURL[string(v)] = id
		b.logs = append(b.logs, &logRuns{bm: roaring64.New()})
	}
	if p != nil {
		if len(b.ptrs) > 4096 { // plain pages: every row's bytes elsewhere
			clear(b.ptrs)
		}
		b.ptrs[p] = id
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
