package pqwrite

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"

	"github.com/klauspost/compress/s2"
)

// ColumnWriter buffers one leaf column of the open row group as encoded,
// compressed pages. Its methods may run concurrently with those of other
// columns, never with each other's.
type ColumnWriter struct {
	spec   Column
	path   []string
	typ    int32
	maxDef int
	maxRep int
	w      *Writer

	// The page being filled: plain values, or dictionary indices, plus the
	// levels of a list column.
	plain  []byte
	bools  []bool
	idx    []uint32
	defs   []uint32
	reps   []uint32
	levels int // level entries (values, for a required column) in the page
	inDict bool

	// The chunk so far: data pages with their headers, in order.
	chunk        segBuf
	numValues    int64
	uncompressed int64
	rows         int64
	usedPlain    bool
	usedDict     bool

	// The chunk's dictionary (dictionary columns, until it outgrows
	// Options.DictionaryBytes and the column falls back to plain).
	dictStr  map[string]uint32
	dictI64  map[int64]uint32
	dictVals []byte // the dictionary page's plain values
	dictLen  int
	fallback bool

	// Statistics of the values written plain (dictionary values are added
	// when the chunk ends).
	hasStats   bool
	minB, maxB []byte
	minI, maxI int64

	dictPage segBuf // the encoded dictionary page of the chunk
	scratch  []byte // page assembly
	out      []byte // compressed page
	hdr      compact
}

func (c *ColumnWriter) dictionary() bool { return c.spec.Dictionary && !c.fallback }

// rowGroupReset readies c for a new row group, keeping its buffers.
func (c *ColumnWriter) rowGroupReset() {
	c.plain, c.bools, c.idx, c.defs, c.reps = c.plain[:0], c.bools[:0], c.idx[:0], c.defs[:0], c.reps[:0]
	c.levels = 0
	c.chunk.reset(c.w.opts.Pool)
	c.numValues, c.uncompressed, c.rows = 0, 0, 0
	c.usedPlain, c.usedDict = false, false
	c.fallback = false
	if c.spec.Dictionary {
		clear(c.dictStr)
		clear(c.dictI64)
		c.dictVals = c.dictVals[:0]
		c.dictLen = 0
	}
	c.hasStats = false
	c.minB, c.maxB = c.minB[:0], c.maxB[:0]
	c.inDict = c.spec.Dictionary
}

// Int64s appends values to an INT64 column.
func (c *ColumnWriter) Int64s(vals []int64) error {
	if c.typ != typeInt64 || c.maxDef != 0 {
		return fmt.Errorf("column %s: Int64s on a %s column", c.spec.Name, c.describe())
	}
	c.rows += int64(len(vals))
	for _, v := range vals {
		if c.dictionary() {
			i, ok := c.dictI64[v]
			if !ok {
				i = uint32(c.dictLen)
				c.dictI64[v] = i
				c.dictLen++
				c.dictVals = binary.LittleEndian.AppendUint64(c.dictVals, uint64(v))
			}
			c.idx = append(c.idx, i)
		} else {
			c.plain = binary.LittleEndian.AppendUint64(c.plain, uint64(v))
			if c.spec.Stats {
				c.statI64(v)
			}
		}
		c.levels++
		if err := c.maybeCut(); err != nil {
			return err
		}
	}
	return nil
}

// Bools appends values to a BOOLEAN column.
func (c *ColumnWriter) Bools(vals []bool) error {
	if c.typ != typeBoolean || c.maxDef != 0 {
		return fmt.Errorf("column %s: Bools on a %s column", c.spec.Name, c.describe())
	}
	c.rows += int64(len(vals))
	for _, v := range vals {
		c.bools = append(c.bools, v)
		if c.spec.Stats {
			c.statI64(b2i(v))
		}
		c.levels++
		if len(c.bools) >= c.w.opts.PageBytes*8 {
			if err := c.cutPage(); err != nil {
				return err
			}
		}
	}
	return nil
}

func b2i(v bool) int64 {
	if v {
		return 1
	}
	return 0
}

// ByteArrays appends values to a required BYTE_ARRAY column.
func (c *ColumnWriter) ByteArrays(vals [][]byte) error {
	if c.typ != typeByteArray || c.maxDef != 0 {
		return fmt.Errorf("column %s: ByteArrays on a %s column", c.spec.Name, c.describe())
	}
	c.rows += int64(len(vals))
	for _, v := range vals {
		c.putBytes(v)
		c.levels++
		if err := c.maybeCut(); err != nil {
			return err
		}
	}
	return nil
}

// List appends rows of a LIST column as Parquet levels: for each level
// entry its repetition (0 starts a row) and definition (0: empty list,
// 1: null element, 2: element present); vals holds the present elements
// in order.
func (c *ColumnWriter) List(vals [][]byte, def, rep []int16) error {
	if c.maxRep != 1 || c.maxDef != 2 {
		return fmt.Errorf("column %s: List on a %s column", c.spec.Name, c.describe())
	}
	if len(def) != len(rep) {
		return fmt.Errorf("column %s: %d definition levels, %d repetition levels", c.spec.Name, len(def), len(rep))
	}
	if len(def) > 0 && rep[0] != 0 {
		return fmt.Errorf("column %s: levels start inside a row", c.spec.Name)
	}
	v := 0
	for i := range def {
		if rep[i] == 0 {
			// Pages end at row boundaries.
			if i > 0 {
				if err := c.maybeCut(); err != nil {
					return err
				}
			}
			c.rows++
		}
		if def[i] < 0 || def[i] > 2 || rep[i] < 0 || rep[i] > 1 {
			return fmt.Errorf("column %s: level (rep %d, def %d) out of range", c.spec.Name, rep[i], def[i])
		}
		c.defs = append(c.defs, uint32(def[i]))
		c.reps = append(c.reps, uint32(rep[i]))
		c.levels++
		if def[i] == 2 {
			if v >= len(vals) {
				return fmt.Errorf("column %s: more present elements than values (%d)", c.spec.Name, len(vals))
			}
			c.putBytes(vals[v])
			v++
		}
	}
	if v != len(vals) {
		return fmt.Errorf("column %s: %d values for %d present elements", c.spec.Name, len(vals), v)
	}
	return c.maybeCut()
}

func (c *ColumnWriter) putBytes(v []byte) {
	if c.dictionary() {
		i, ok := c.dictStr[string(v)]
		if !ok {
			i = uint32(c.dictLen)
			c.dictStr[string(v)] = i
			c.dictLen++
			c.dictVals = binary.LittleEndian.AppendUint32(c.dictVals, uint32(len(v)))
			c.dictVals = append(c.dictVals, v...)
		}
		c.idx = append(c.idx, i)
		return
	}
	c.plain = binary.LittleEndian.AppendUint32(c.plain, uint32(len(v)))
	c.plain = append(c.plain, v...)
	if c.spec.Stats {
		c.statBytes(v)
	}
}

func (c *ColumnWriter) statI64(v int64) {
	if !c.hasStats {
		c.minI, c.maxI, c.hasStats = v, v, true
		return
	}
	c.minI, c.maxI = min(c.minI, v), max(c.maxI, v)
}

func (c *ColumnWriter) statBytes(v []byte) {
	if !c.hasStats {
		c.minB, c.maxB, c.hasStats = append(c.minB[:0], v...), append(c.maxB[:0], v...), true
		return
	}
	if bytes.Compare(v, c.minB) < 0 {
		c.minB = append(c.minB[:0], v...)
	}
	if bytes.Compare(v, c.maxB) > 0 {
		c.maxB = append(c.maxB[:0], v...)
	}
}

// maybeCut ends the page when it is full, and falls back to plain
// encoding when the dictionary has grown past its limit.
func (c *ColumnWriter) maybeCut() error {
	switch {
	case c.inDict && len(c.dictVals) > c.w.opts.DictionaryBytes:
		if err := c.cutPage(); err != nil {
			return err
		}
		c.fallback = true
		c.inDict = false
	case len(c.plain) >= c.w.opts.PageBytes, len(c.idx)*4 >= c.w.opts.PageBytes:
		return c.cutPage()
	}
	return nil
}

// cutPage encodes the buffered values and levels as one data page.
func (c *ColumnWriter) cutPage() error {
	if c.levels == 0 {
		return nil
	}
	p := c.scratch[:0]
	if c.maxRep > 0 {
		p = appendLevels(p, c.reps, bitWidth(uint32(c.maxRep)))
	}
	if c.maxDef > 0 {
		p = appendLevels(p, c.defs, bitWidth(uint32(c.maxDef)))
	}
	enc := int32(encPlain)
	direct := false // p is c.plain, not the scratch buffer
	switch {
	case c.inDict:
		w := max(1, bitWidth(uint32(max(c.dictLen, 1)-1)))
		p = append(p, byte(w))
		p = appendHybrid(p, c.idx, w)
		enc = encRLEDictionary
		c.usedDict = true
	case c.typ == typeBoolean:
		p = appendBits(p, c.bools)
		c.usedPlain = true
	case len(p) == 0:
		// A required column's page is its values: no copy.
		p, direct = c.plain, true
		c.usedPlain = true
	default:
		p = append(p, c.plain...)
		c.usedPlain = true
	}
	if len(p) > math.MaxInt32 {
		return fmt.Errorf("column %s: page of %d bytes", c.spec.Name, len(p))
	}
	if !direct {
		c.scratch = p
	}
	c.appendPage(pageData, p, c.levels, enc)
	c.numValues += int64(c.levels)
	c.plain, c.bools, c.idx, c.defs, c.reps = c.plain[:0], c.bools[:0], c.idx[:0], c.defs[:0], c.reps[:0]
	c.levels = 0
	if c.fallback {
		c.inDict = false
	}
	return nil
}

// appendPage compresses page data and appends it with its header to the
// chunk.
func (c *ColumnWriter) appendPage(typ int32, data []byte, numValues int, enc int32) {
	c.appendPageTo(&c.chunk, typ, data, numValues, enc)
}

func (c *ColumnWriter) appendPageTo(dst *segBuf, typ int32, data []byte, numValues int, enc int32) {
	body := data
	switch c.spec.Codec {
	case Zstd:
		c.out = c.w.zstd.EncodeAll(data, c.out[:0])
		body = c.out
	case Snappy:
		// EncodeSnappy allocates unless dst has room for the worst case.
		if n := s2.MaxEncodedLen(len(data)); cap(c.out) < n {
			c.out = make([]byte, n)
		}
		c.out = s2.EncodeSnappy(c.out[:cap(c.out)], data)
		body = c.out
	}
	c.hdr.buf = c.hdr.buf[:0]
	pageHeader(&c.hdr, typ, len(data), len(body), numValues, enc)
	c.uncompressed += int64(len(c.hdr.buf) + len(data))
	dst.write(c.w.opts.Pool, c.hdr.buf)
	dst.write(c.w.opts.Pool, body)
}

// appendLevels appends levels as a v1 data page stores them: a 4-byte
// length, then the hybrid encoding.
func appendLevels(dst []byte, levels []uint32, width int) []byte {
	at := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = appendHybrid(dst, levels, width)
	binary.LittleEndian.PutUint32(dst[at:], uint32(len(dst)-at-4))
	return dst
}

// appendBits appends booleans bit-packed, least significant bit first.
func appendBits(dst []byte, vals []bool) []byte {
	for i := 0; i < len(vals); i += 8 {
		var b byte
		for j := 0; j < 8 && i+j < len(vals); j++ {
			if vals[i+j] {
				b |= 1 << j
			}
		}
		dst = append(dst, b)
	}
	return dst
}

func (c *ColumnWriter) describe() string {
	switch {
	case c.maxRep > 0:
		return "list"
	case c.typ == typeInt64:
		return "int64"
	case c.typ == typeBoolean:
		return "boolean"
	default:
		return "byte array"
	}
}

// finish ends the chunk: the last data page, then the dictionary page,
// which goes first in the file. It returns the dictionary page (nil when
// the chunk used none) and the chunk's statistics.
func (c *ColumnWriter) finish() (dictPage *segBuf, st *statistics, err error) {
	if err := c.cutPage(); err != nil {
		return nil, nil, err
	}
	if c.usedDict {
		c.dictPage.reset(c.w.opts.Pool)
		c.appendPageTo(&c.dictPage, pageDictionary, c.dictVals, c.dictLen, encPlain)
		dictPage = &c.dictPage
		if c.spec.Stats {
			c.dictStats()
		}
	}
	if c.spec.Stats && c.hasStats {
		st = c.stats()
	}
	return dictPage, st, nil
}

// dictStats adds the dictionary's values to the statistics.
func (c *ColumnWriter) dictStats() {
	if c.typ == typeInt64 {
		for v := range c.dictI64 {
			c.statI64(v)
		}
		return
	}
	for v := range c.dictStr {
		c.statBytes([]byte(v))
	}
}

func (c *ColumnWriter) stats() *statistics {
	switch c.typ {
	case typeInt64:
		return &statistics{
			min: binary.LittleEndian.AppendUint64(nil, uint64(c.minI)),
			max: binary.LittleEndian.AppendUint64(nil, uint64(c.maxI)),
		}
	case typeBoolean:
		return &statistics{min: []byte{byte(c.minI)}, max: []byte{byte(c.maxI)}}
	default:
		return &statistics{min: bytes.Clone(c.minB), max: bytes.Clone(c.maxB)}
	}
}

// encodings lists the chunk's encodings for its metadata.
func (c *ColumnWriter) encodings() []int32 {
	var e []int32
	if c.usedDict || c.usedPlain {
		e = append(e, encPlain) // the dictionary page is plain too
	}
	if c.usedDict {
		e = append(e, encRLEDictionary)
	}
	if c.maxDef > 0 {
		e = append(e, encRLE)
	}
	return e
}

// bufferedBytes is what c holds in memory for the open row group.
func (c *ColumnWriter) bufferedBytes() int64 {
	return int64(c.chunk.n + len(c.plain) + len(c.bools) + 4*len(c.idx) + len(c.dictVals) + 4*len(c.defs) + 4*len(c.reps))
}
