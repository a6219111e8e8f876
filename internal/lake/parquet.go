package lake

import (
	"encoding/base64"
	"fmt"
	"slices"
	"unsafe"

	"github.com/certlake/certlake/internal/pqwrite"
	"github.com/certlake/certlake/internal/record"
)

// Data file columns: the 20 table columns without the partition column, in
// table order. The indexes below are leaf column indexes in the file.
const (
	colCertIndex = iota
	colUpdateType
	colSeen
	colSourceName
	colSourceURL
	colCertLink
	colSerialNumber
	colFingerprint
	colSHA256
	colSHA1
	colNotBefore
	colNotAfter
	colIsCA
	colSignatureAlgorithm
	colSubjectAggregated
	colIssuerAggregated
	colAllDomains
	colAsDER
	colChain
	numFileColumns
)

// fileColumns are the data file's top-level column names, in file order.
var fileColumns = func() []string {
	var cols []string
	for _, c := range record.Columns {
		if c != PartitionColumn {
			cols = append(cols, c)
		}
	}
	return cols
}()

// fileColumns describes the data file of spec 2.1 as delta-rs writes it:
// cert_index plain INT64 (no logical annotation), seen TIMESTAMP(MICROS,
// UTC), strings as STRING, lists as standard 3-level LIST with an optional
// "element", as_der STRING (base64) or bare BYTE_ARRAY; dictionary
// encoding, statistics and compression per column as below.
func fileColumnSpecs(asDERBinary bool, c Compression) []pqwrite.Column {
	cols := make([]pqwrite.Column, 0, numFileColumns)
	for _, name := range fileColumns {
		col := pqwrite.Column{
			Name:       name,
			Dictionary: slices.Contains(dictionaryColumns, name),
			Stats:      slices.Contains(statsColumns, name),
			Codec:      codecOf(name, c),
		}
		switch columnKinds[name] {
		case kindLong:
			col.Type = pqwrite.Int64
		case kindString:
			col.Type = pqwrite.String
		case kindTimestamp:
			col.Type = pqwrite.TimestampMicros
		case kindBool:
			col.Type = pqwrite.Boolean
		case kindStringList:
			col.Type = pqwrite.StringList
		case kindDER:
			col.Type = pqwrite.String
			if asDERBinary {
				col.Type = pqwrite.Binary
			}
		}
		cols = append(cols, col)
	}
	return cols
}

// codecOf is the codec of column name in a file written with c.
func codecOf(name string, c Compression) pqwrite.Codec {
	switch {
	case c != CompressionStaging:
		return pqwrite.Zstd
	case slices.Contains(plainColumns, name):
		return pqwrite.Uncompressed
	case name == "as_der":
		return pqwrite.Snappy
	}
	return pqwrite.Zstd
}

// dictionaryColumns have dictionary encoding on (spec 2.1 [HEAD] settings,
// plus seen, which one fetch shares across many rows). Every other column
// is plain.
var dictionaryColumns = []string{
	"update_type", "seen", "source_name", "source_url", "signature_algorithm",
	"issuer_aggregated", "chain",
}

// statsColumns get Parquet column statistics (min/max per row group),
// which DuckDB uses to skip row groups. The other columns are hashes, free
// text and blobs nobody filters by range; their statistics would cost a
// comparison per value and bloat the footer.
var statsColumns = []string{
	"cert_index", "update_type", "seen", "source_name", "source_url",
	"not_before", "not_after", "is_ca", "signature_algorithm", "issuer_aggregated",
}

// bytesOf views s as bytes without copying. The Parquet writer only reads
// its input, and copying every string would double the writer's memory
// traffic.
func bytesOf(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// stringColumns are the file's plain string columns, in the order of
// batch.strs.
var stringColumns = [...]int{
	colUpdateType, colSourceName, colSourceURL, colCertLink, colSerialNumber,
	colFingerprint, colSHA256, colSHA1, colSignatureAlgorithm,
	colSubjectAggregated, colIssuerAggregated,
}

// strIndex maps a file column to its index in batch.strs (-1: not a plain
// string column).
var strIndex = func() [numFileColumns]int {
	var idx [numFileColumns]int
	for i := range idx {
		idx[i] = -1
	}
	for i, c := range stringColumns {
		idx[c] = i
	}
	return idx
}()

// batch holds rows column by column, ready for the Parquet column writers:
// Write transposes each row as it comes (cheap for the caller, and each
// column is then one contiguous slice instead of a walk over row structs).
// Strings and slices reference the caller's memory.
type batch struct {
	n        int
	certIdx  []int64
	seen     []int64
	notBef   []int64
	notAft   []int64
	isCA     []bool
	strs     [len(stringColumns)][][]byte
	der      [][]byte // the caller's bytes (binary tables) or their base64 in text
	text     [][]byte // string tables: chunks of base64 text; kept for reuse
	cur      int      // the chunk of text being filled
	domains  listColumn
	chain    listColumn
	asBinary bool
}

// textChunkSize is the size of a batch's base64 text chunks. The text is
// cut in chunks rather than grown as one slice so that adding rows never
// copies the text already there.
const textChunkSize = 1 << 20

// listColumn is a required LIST of optional strings as Parquet levels: an
// empty list is one slot with definition 0; each element has definition 2
// (list present, element present) and repetition 0 for a row's first
// element, 1 for the rest.
type listColumn struct {
	vals     [][]byte
	def, rep []int16
}

func (l *listColumn) add(elems []string) {
	if len(elems) == 0 {
		l.def = append(l.def, 0)
		l.rep = append(l.rep, 0)
		return
	}
	for i, e := range elems {
		l.vals = append(l.vals, bytesOf(e))
		l.def = append(l.def, 2)
		l.rep = append(l.rep, min(int16(i), 1))
	}
}

func (l *listColumn) reset() {
	clear(l.vals)
	l.vals, l.def, l.rep = l.vals[:0], l.def[:0], l.rep[:0]
}

func newBatch(asBinary bool) *batch {
	b := &batch{asBinary: asBinary}
	b.certIdx = make([]int64, 0, batchRows)
	b.seen = make([]int64, 0, batchRows)
	b.notBef = make([]int64, 0, batchRows)
	b.notAft = make([]int64, 0, batchRows)
	b.isCA = make([]bool, 0, batchRows)
	b.der = make([][]byte, 0, batchRows)
	for i := range b.strs {
		b.strs[i] = make([][]byte, 0, batchRows)
	}
	return b
}

func (b *batch) add(r *record.Row) {
	b.n++
	b.certIdx = append(b.certIdx, int64(r.CertIndex))
	b.seen = append(b.seen, r.Seen.UnixMicro())
	b.notBef = append(b.notBef, r.NotBefore)
	b.notAft = append(b.notAft, r.NotAfter)
	b.isCA = append(b.isCA, r.IsCA)
	b.strs[0] = append(b.strs[0], bytesOf(r.UpdateType))
	b.strs[1] = append(b.strs[1], bytesOf(r.SourceName))
	b.strs[2] = append(b.strs[2], bytesOf(r.SourceURL))
	b.strs[3] = append(b.strs[3], bytesOf(r.CertLink))
	b.strs[4] = append(b.strs[4], bytesOf(r.SerialNumber))
	b.strs[5] = append(b.strs[5], bytesOf(r.Fingerprint))
	b.strs[6] = append(b.strs[6], bytesOf(r.SHA256))
	b.strs[7] = append(b.strs[7], bytesOf(r.SHA1))
	b.strs[8] = append(b.strs[8], bytesOf(r.SignatureAlgorithm))
	b.strs[9] = append(b.strs[9], bytesOf(r.SubjectAggregated))
	b.strs[10] = append(b.strs[10], bytesOf(r.IssuerAggregated))
	if b.asBinary {
		b.der = append(b.der, r.AsDER)
	} else {
		t := b.textRoom(base64.StdEncoding.EncodedLen(len(r.AsDER)))
		base64.StdEncoding.Encode(t, r.AsDER)
		b.der = append(b.der, t)
	}
	b.domains.add(r.AllDomains)
	b.chain.add(r.Chain)
}

// textRoom returns the next n bytes of text (capacity n), from the current
// chunk if it has room, else from the next one.
func (b *batch) textRoom(n int) []byte {
	for {
		if b.cur < len(b.text) {
			c := b.text[b.cur]
			if l := len(c); cap(c)-l >= n {
				b.text[b.cur] = c[:l+n]
				return c[l : l+n : l+n]
			}
			b.cur++
			continue
		}
		b.text = append(b.text, make([]byte, 0, max(textChunkSize, n)))
	}
}

// reset empties b for reuse, dropping its references to the caller's data.
func (b *batch) reset() {
	b.n = 0
	b.certIdx, b.seen, b.notBef, b.notAft = b.certIdx[:0], b.seen[:0], b.notBef[:0], b.notAft[:0]
	b.isCA = b.isCA[:0]
	for i := range b.strs {
		clear(b.strs[i])
		b.strs[i] = b.strs[i][:0]
	}
	clear(b.der)
	b.der = b.der[:0]
	// Keep the standard chunks; an outsized one (a huge certificate) goes.
	kept := b.text[:0]
	for _, c := range b.text {
		if cap(c) == textChunkSize {
			kept = append(kept, c[:0])
		}
	}
	clear(b.text[len(kept):])
	b.text, b.cur = kept, 0
	b.domains.reset()
	b.chain.reset()
}

// writeColumn writes one column of b into the file's open row group. Each
// call touches only column col's writer, so different columns may be
// written concurrently.
func writeColumn(pw *pqwrite.Writer, col int, b *batch) error {
	cw := pw.Column(col)
	var err error
	switch col {
	case colCertIndex:
		err = cw.Int64s(b.certIdx)
	case colSeen:
		err = cw.Int64s(b.seen)
	case colNotBefore:
		err = cw.Int64s(b.notBef)
	case colNotAfter:
		err = cw.Int64s(b.notAft)
	case colIsCA:
		err = cw.Bools(b.isCA)
	case colAllDomains:
		err = cw.List(b.domains.vals, b.domains.def, b.domains.rep)
	case colChain:
		err = cw.List(b.chain.vals, b.chain.def, b.chain.rep)
	case colAsDER:
		err = cw.ByteArrays(b.der)
	default:
		err = cw.ByteArrays(b.strs[strIndex[col]])
	}
	if err != nil {
		return fmt.Errorf("write column %s: %w", fileColumns[col], err)
	}
	return nil
}
