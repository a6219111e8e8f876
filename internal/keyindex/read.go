package keyindex

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding"
	"github.com/parquet-go/parquet-go/format"

	"github.com/certlake/certlake/internal/storage"
)

// ReaderAtSeeker is what ReadKeys reads: a local file or a storage.File.
type ReaderAtSeeker interface {
	io.ReaderAt
	io.Seeker
}

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
// file (only those two, a page at a time: memory is a page of each) and
// returns its keys and the number of rows holding one. Rows with a null or
// negative key hold none (cert_index is never negative in a CT table).
// source_url is read as dictionary indices where the writer used a
// dictionary (as writers store a column of a few dozen values), so a row
// costs an array lookup; rows sorted by key, or interleaving logs that are
// each in order (a live ingester's files), become runs.
func ReadKeys(ctx context.Context, r ReaderAtSeeker) (keys Keys, rows int64, err error) {
	size, err := r.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, 0, err
	}
	// A corrupt page can make the decoder panic rather than fail: it is a
	// file that cannot be read, not a crash of the worker.
	defer func() {
		if p := recover(); p != nil {
			keys, rows, err = nil, 0, fmt.Errorf("corrupt Parquet data: %v", p)
		}
	}()
	pf, err := parquet.OpenFile(readerAt{r}, size,
		parquet.SkipMagicBytes(true), parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true),
		parquet.ReadBufferSize(256<<10))
	if err != nil {
		return nil, 0, err
	}
	urlCol, idxCol, err := keyColumns(pf.Schema())
	if err != nil {
		return nil, 0, err
	}
	b := newBuilder()
	pre, _ := r.(storage.Prefetcher)
	for g, rg := range pf.RowGroups() {
		if pre != nil {
			if err := prefetchKeys(pf.Metadata(), g, urlCol.ColumnIndex, idxCol.ColumnIndex, pre); err != nil {
				return nil, 0, fmt.Errorf("row group %d: %w", g, err)
			}
		}
		chunks := rg.ColumnChunks()
		n, err := readRowGroup(ctx, b,
			newColumn(chunks[urlCol.ColumnIndex], urlCol), newColumn(chunks[idxCol.ColumnIndex], idxCol))
		if err != nil {
			return nil, 0, fmt.Errorf("row group %d: %w", g, err)
		}
		rows += n
	}
	return b.keys(), rows, nil
}

// readerAt hides a file's other methods from parquet-go, which would
// otherwise stat an *os.File for its size again.
type readerAt struct{ io.ReaderAt }

// keyColumns finds the two key columns and checks their types.
func keyColumns(sch *parquet.Schema) (url, idx parquet.LeafColumn, err error) {
	url, okU := sch.Lookup("source_url")
	idx, okI := sch.Lookup("cert_index")
	if !okU || !okI {
		return url, idx, fmt.Errorf("no source_url or cert_index column")
	}
	if url.MaxRepetitionLevel > 0 || idx.MaxRepetitionLevel > 0 {
		return url, idx, fmt.Errorf("source_url or cert_index is repeated")
	}
	if k := url.Node.Type().Kind(); k != parquet.ByteArray {
		return url, idx, fmt.Errorf("source_url is %s, want a string", k)
	}
	if k := idx.Node.Type().Kind(); k != parquet.Int64 && k != parquet.Int32 {
		return url, idx, fmt.Errorf("cert_index is %s, want an integer", k)
	}
	return url, idx, nil
}

// prefetchKeys fetches the two key column chunks of row group g of a
// remote file in one request when they lie close together (as writers
// lay out a row group's columns in order), saving a round trip per row
// group; far apart, each is left to its own read.
func prefetchKeys(md *format.FileMetaData, g, urlCol, idxCol int, pre storage.Prefetcher) error {
	rg := md.RowGroups[g]
	var lo, hi, sum int64 = 1<<63 - 1, 0, 0
	for _, c := range []int{urlCol, idxCol} {
		if c >= len(rg.Columns) {
			return fmt.Errorf("no column chunk %d", c)
		}
		cc := rg.Columns[c].MetaData
		start := cc.DataPageOffset
		if cc.DictionaryPageOffset > 0 && cc.DictionaryPageOffset < start {
			start = cc.DictionaryPageOffset
		}
		lo, hi, sum = min(lo, start), max(hi, start+cc.TotalCompressedSize), sum+cc.TotalCompressedSize
	}
	if hi <= lo || hi-lo > 2*sum+1<<20 {
		return nil
	}
	return pre.Prefetch(lo, hi-lo)
}

// readRowGroup adds the keys of one row group to b: the two columns' pages
// end at different rows, so each is consumed up to the nearer end.
func readRowGroup(ctx context.Context, b *builder, url, idx *column) (int64, error) {
	defer url.close()
	defer idx.close()
	var rows int64
	for {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		okU, err := url.ensure(b)
		if err != nil {
			return 0, fmt.Errorf("source_url: %w", err)
		}
		okI, err := idx.ensure(b)
		if err != nil {
			return 0, fmt.Errorf("cert_index: %w", err)
		}
		if !okU || !okI {
			if okU != okI {
				return 0, fmt.Errorf("source_url and cert_index hold different row counts")
			}
			return rows, nil
		}
		n := min(url.left(), idx.left())
		if url.defs == nil && idx.defs == nil {
			rows += b.addRows(url.ids[url.v:url.v+n], url.table, idx.ints[idx.v:idx.v+n])
			url.v, url.row = url.v+n, url.row+n
			idx.v, idx.row = idx.v+n, idx.row+n
		} else {
			rows += b.addNullable(url, idx, n)
		}
	}
}

// column is a cursor over one key column's pages: the current page's
// values (builder log ids for source_url, indices for cert_index), its
// definition levels when it holds nulls, the next row and next value.
type column struct {
	pages    parquet.Pages
	leaf     parquet.LeafColumn
	isURL    bool // source_url (else cert_index)
	unsigned bool

	page     parquet.Page
	rows     int // rows of the current page
	row, v   int // next row and next (non-null) value of the page
	defs     []byte
	ids      []int32 // source_url: per value, its index in table
	table    []int32 // source_url: builder log ids (the dictionary's, or the identity)
	ints     []int64 // cert_index: value per value
	buf32    []int32
	buf64    []int64
	dict     parquet.Dictionary
	dictIDs  []int32 // source_url: builder log id per dictionary entry
	dictInts []int64 // cert_index: value per dictionary entry
}

func newColumn(cc parquet.ColumnChunk, leaf parquet.LeafColumn) *column {
	c := &column{pages: cc.Pages(), leaf: leaf, isURL: leaf.Node.Type().Kind() == parquet.ByteArray}
	if lt := leaf.Node.Type().LogicalType(); lt != nil {
		if it, ok := lt.Value.(*format.IntType); ok && !it.IsSigned {
			c.unsigned = true
		}
	}
	return c
}

func (c *column) left() int { return c.rows - c.row }

func (c *column) close() {
	if c.page != nil {
		parquet.Release(c.page)
		c.page = nil
	}
	c.pages.Close()
}

// ensure makes the current page hold a row, reading pages as needed; false
// at the end of the chunk.
func (c *column) ensure(b *builder) (bool, error) {
	for c.row >= c.rows {
		if c.page != nil {
			parquet.Release(c.page)
			c.page = nil
		}
		p, err := c.pages.ReadPage()
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		c.page, c.rows, c.row, c.v = p, int(p.NumValues()), 0, 0
		if err := c.decode(b); err != nil {
			return false, err
		}
	}
	return true, nil
}

// decode sets the page's values and definition levels.
func (c *column) decode(b *builder) error {
	p := c.page
	c.defs = nil
	if c.leaf.MaxDefinitionLevel > 0 && p.NumNulls() > 0 {
		c.defs = p.DefinitionLevels()
	}
	data := p.Data()
	if d := p.Dictionary(); d != nil {
		if d != c.dict {
			if err := c.loadDictionary(b, d); err != nil {
				return err
			}
		}
		// An index past the dictionary panics where it is looked up,
		// which ReadKeys reports as corrupt data.
		codes := data.Int32()
		if c.isURL {
			c.ids, c.table = codes, c.dictIDs
		} else {
			c.ints = remap64(c.buf64[:0], codes, c.dictInts)
			c.buf64 = c.ints
		}
		return nil
	}
	if k := data.Kind(); c.isURL != (k == encoding.ByteArray) {
		return fmt.Errorf("unexpected page of %s values", k)
	}
	switch data.Kind() {
	case encoding.ByteArray:
		c.ids = b.idsOf(c.buf32[:0], &data)
		c.buf32, c.table = c.ids, b.identity()
	case encoding.Int64:
		c.ints = data.Int64()
		if c.unsigned {
			c.ints = capUnsigned(c.buf64[:0], c.ints)
			c.buf64 = c.ints
		}
	case encoding.Int32:
		c.ints = widen(c.buf64[:0], data.Int32(), c.unsigned)
		c.buf64 = c.ints
	default:
		return fmt.Errorf("unexpected page of %s values", data.Kind())
	}
	return nil
}

// loadDictionary maps a dictionary's entries to builder log ids (strings)
// or values (integers).
func (c *column) loadDictionary(b *builder, d parquet.Dictionary) error {
	c.dict, c.dictIDs, c.dictInts = d, nil, nil
	data := d.Page().Data()
	switch data.Kind() {
	case encoding.ByteArray:
		if !c.isURL {
			return fmt.Errorf("dictionary of strings for an integer column")
		}
		c.dictIDs = b.idsOf(make([]int32, 0, d.Len()), &data)
		return nil
	case encoding.Int64:
		c.dictInts = append([]int64(nil), data.Int64()...)
		if c.unsigned {
			c.dictInts = capUnsigned(c.dictInts[:0], c.dictInts)
		}
	case encoding.Int32:
		c.dictInts = widen(nil, data.Int32(), c.unsigned)
	default:
		return fmt.Errorf("unexpected dictionary of %s values", data.Kind())
	}
	if c.isURL {
		return fmt.Errorf("dictionary of integers for source_url")
	}
	return nil
}

func remap64(dst []int64, codes []int32, to []int64) []int64 {
	dst = grow(dst, len(codes))
	for i, x := range codes {
		dst[i] = to[x]
	}
	return dst
}

// widen converts INT32 values (UINT_32 when unsigned) to int64.
func widen(dst []int64, v []int32, unsigned bool) []int64 {
	dst = grow(dst, len(v))
	for i, x := range v {
		if unsigned {
			dst[i] = int64(uint32(x))
		} else {
			dst[i] = int64(x)
		}
	}
	return dst
}

// capUnsigned reads UINT_64 values: those past int64 are capped at its
// largest (a key no CT log reaches), not taken for negative.
func capUnsigned(dst, v []int64) []int64 {
	dst = grow(dst, len(v))
	for i, x := range v {
		if x < 0 {
			x = 1<<63 - 1
		}
		dst[i] = x
	}
	return dst
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}
