package pqwrite

// Parquet format enums (parquet.thrift), the values this writer emits.
const (
	typeBoolean   = 0
	typeInt64     = 2
	typeByteArray = 6

	repRequired = 0
	repOptional = 1
	repRepeated = 2

	convertedUTF8            = 0
	convertedList            = 3
	convertedTimestampMicros = 10

	encPlain         = 0
	encRLE           = 3
	encRLEDictionary = 8

	codecUncompressed = 0
	codecSnappy       = 1
	codecZstd         = 6

	pageData       = 0
	pageDictionary = 2
)

// schemaElement is one node of the footer's flattened schema tree.
type schemaElement struct {
	typ         int32 // -1 for a group
	repetition  int32 // -1 for the root
	name        string
	numChildren int32 // groups only
	converted   int32 // -1: none
	logical     logicalType
}

type logicalType int

const (
	logicalNone logicalType = iota
	logicalString
	logicalList
	logicalTimestampMicrosUTC
)

func (e *schemaElement) encode(c *compact) {
	c.begin()
	if e.typ >= 0 {
		c.i32(1, e.typ)
	}
	if e.repetition >= 0 {
		c.i32(3, e.repetition)
	}
	c.string(4, e.name)
	if e.typ < 0 {
		c.i32(5, e.numChildren)
	}
	if e.converted >= 0 {
		c.i32(6, e.converted)
	}
	if e.logical != logicalNone {
		c.structField(10) // LogicalType union
		switch e.logical {
		case logicalString:
			c.structField(1) // StringType
			c.end()
		case logicalList:
			c.structField(3) // ListType
			c.end()
		case logicalTimestampMicrosUTC:
			c.structField(8) // TimestampType
			c.bool(1, true)  // isAdjustedToUTC
			c.structField(2) // unit: TimeUnit union
			c.structField(2) // MICROS
			c.end()
			c.end()
			c.end()
		}
		c.end()
	}
	c.end()
}

// statistics are a column chunk's min and max, in the column's sort order
// (signed for int64, unsigned bytewise for byte arrays).
type statistics struct {
	min, max []byte
}

func (s *statistics) encode(c *compact, id int16) {
	c.structField(id)
	c.i64(3, 0) // null_count: every column is required or has no nulls
	c.binary(5, s.max)
	c.binary(6, s.min)
	c.end()
}

// chunkMeta is a column chunk's ColumnMetaData.
type chunkMeta struct {
	typ              int32
	encodings        []int32
	path             []string
	codec            int32
	numValues        int64
	uncompressedSize int64
	compressedSize   int64
	dataPageOffset   int64
	dictionaryOffset int64 // -1: no dictionary page
	stats            *statistics
}

func (m *chunkMeta) encode(c *compact) {
	c.begin() // ColumnChunk
	start := m.dataPageOffset
	if m.dictionaryOffset >= 0 {
		start = m.dictionaryOffset
	}
	c.i64(2, start) // file_offset
	c.structField(3)
	c.i32(1, m.typ)
	c.list(2, ctI32, len(m.encodings))
	for _, e := range m.encodings {
		c.elemI32(e)
	}
	c.list(3, ctBinary, len(m.path))
	for _, p := range m.path {
		c.elemString(p)
	}
	c.i32(4, m.codec)
	c.i64(5, m.numValues)
	c.i64(6, m.uncompressedSize)
	c.i64(7, m.compressedSize)
	c.i64(9, m.dataPageOffset)
	if m.dictionaryOffset >= 0 {
		c.i64(11, m.dictionaryOffset)
	}
	if m.stats != nil {
		m.stats.encode(c, 12)
	}
	c.end()
	c.end()
}

// rowGroupMeta is one RowGroup of the footer.
type rowGroupMeta struct {
	chunks  []chunkMeta
	numRows int64
}

func (g *rowGroupMeta) encode(c *compact, ordinal int16) {
	var uncompressed, compressed int64
	for i := range g.chunks {
		uncompressed += g.chunks[i].uncompressedSize
		compressed += g.chunks[i].compressedSize
	}
	c.begin()
	c.list(1, ctStruct, len(g.chunks))
	for i := range g.chunks {
		g.chunks[i].encode(c)
	}
	c.i64(2, uncompressed)
	c.i64(3, g.numRows)
	if len(g.chunks) > 0 {
		first := &g.chunks[0]
		off := first.dataPageOffset
		if first.dictionaryOffset >= 0 {
			off = first.dictionaryOffset
		}
		c.i64(5, off)
	}
	c.i64(6, compressed)
	c.i16(7, ordinal)
	c.end()
}

// fileMeta encodes the footer's FileMetaData.
func fileMeta(schema []schemaElement, groups []rowGroupMeta, createdBy string, leaves int) []byte {
	var c compact
	var rows int64
	for i := range groups {
		rows += groups[i].numRows
	}
	c.begin()
	c.i32(1, 2) // version
	c.list(2, ctStruct, len(schema))
	for i := range schema {
		schema[i].encode(&c)
	}
	c.i64(3, rows)
	c.list(4, ctStruct, len(groups))
	for i := range groups {
		groups[i].encode(&c, int16(i))
	}
	c.string(6, createdBy)
	// column_orders: TYPE_DEFINED_ORDER for every leaf, which tells readers
	// that min_value/max_value follow the type's sort order.
	c.list(7, ctStruct, leaves)
	for range leaves {
		c.begin()
		c.structField(1)
		c.end()
		c.end()
	}
	c.end()
	return c.buf
}

// pageHeader encodes a PageHeader of a data page (v1) or dictionary page.
func pageHeader(c *compact, typ int32, uncompressed, compressed, numValues int, enc int32) {
	c.begin()
	c.i32(1, typ)
	c.i32(2, int32(uncompressed))
	c.i32(3, int32(compressed))
	if typ == pageDictionary {
		c.structField(7)
		c.i32(1, int32(numValues))
		c.i32(2, enc)
		c.end()
	} else {
		c.structField(5)
		c.i32(1, int32(numValues))
		c.i32(2, enc)
		c.i32(3, encRLE) // definition levels
		c.i32(4, encRLE) // repetition levels
		c.end()
	}
	c.end()
}
