package pqwrite

import "encoding/binary"

// Thrift compact protocol type codes (the subset Parquet's footer and page
// headers use).
const (
	ctTrue   = 1
	ctFalse  = 2
	ctI16    = 4
	ctI32    = 5
	ctI64    = 6
	ctBinary = 8
	ctList   = 9
	ctStruct = 12
)

// compact appends Thrift compact protocol to buf. Parquet's metadata is a
// few fixed structs, so they are written field by field with these
// helpers rather than through a generic Thrift library. Field ids must
// increase within a struct, as the generated code of every Parquet writer
// emits them.
type compact struct {
	buf  []byte
	last []int16 // the last field id of each open struct
}

func (c *compact) uvarint(v uint64) { c.buf = binary.AppendUvarint(c.buf, v) }

func (c *compact) zigzag(v int64) { c.uvarint(uint64(v<<1) ^ uint64(v>>63)) }

// field writes a field header: a delta from the previous field id when it
// fits in four bits, else the type and the zigzag id.
func (c *compact) field(id int16, typ byte) {
	top := len(c.last) - 1
	if d := id - c.last[top]; d > 0 && d <= 15 {
		c.buf = append(c.buf, byte(d)<<4|typ)
	} else {
		c.buf = append(c.buf, typ)
		c.zigzag(int64(id))
	}
	c.last[top] = id
}

func (c *compact) begin() { c.last = append(c.last, 0) }

// end closes the innermost struct with a stop byte.
func (c *compact) end() {
	c.buf = append(c.buf, 0)
	c.last = c.last[:len(c.last)-1]
}

func (c *compact) i32(id int16, v int32) { c.field(id, ctI32); c.zigzag(int64(v)) }
func (c *compact) i64(id int16, v int64) { c.field(id, ctI64); c.zigzag(v) }
func (c *compact) i16(id int16, v int16) { c.field(id, ctI16); c.zigzag(int64(v)) }

func (c *compact) bool(id int16, v bool) {
	if v {
		c.field(id, ctTrue)
	} else {
		c.field(id, ctFalse)
	}
}

func (c *compact) binary(id int16, v []byte) {
	c.field(id, ctBinary)
	c.uvarint(uint64(len(v)))
	c.buf = append(c.buf, v...)
}

func (c *compact) string(id int16, v string) {
	c.field(id, ctBinary)
	c.uvarint(uint64(len(v)))
	c.buf = append(c.buf, v...)
}

// structField opens a struct-valued field; close it with end.
func (c *compact) structField(id int16) {
	c.field(id, ctStruct)
	c.begin()
}

// list writes a list field header for n elements of type elem; the
// elements follow (structs each with begin/end, scalars with the elem*
// helpers).
func (c *compact) list(id int16, elem byte, n int) {
	c.field(id, ctList)
	if n < 15 {
		c.buf = append(c.buf, byte(n)<<4|elem)
	} else {
		c.buf = append(c.buf, 0xf0|elem)
		c.uvarint(uint64(n))
	}
}

func (c *compact) elemI32(v int32) { c.zigzag(int64(v)) }

func (c *compact) elemString(v string) {
	c.uvarint(uint64(len(v)))
	c.buf = append(c.buf, v...)
}
