package lake

import (
	"encoding/base64"
	"fmt"
	"unsafe"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/schema"

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

// fileSchema builds the Parquet schema of spec 2.1 as delta-rs writes it:
// cert_index plain INT64 (no logical annotation), seen
// TIMESTAMP(MICROS, UTC), strings as STRING, lists as standard 3-level LIST
// with an optional "element", as_der STRING (base64) or bare BYTE_ARRAY.
func fileSchema(asDERBinary bool) (*schema.GroupNode, error) {
	req := parquet.Repetitions.Required
	str := func(name string) schema.Node {
		return schema.MustPrimitive(schema.NewPrimitiveNodeLogical(name, req, schema.StringLogicalType{}, parquet.Types.ByteArray, -1, -1))
	}
	list := func(name string) (schema.Node, error) {
		elem := schema.MustPrimitive(schema.NewPrimitiveNodeLogical("element", parquet.Repetitions.Optional, schema.StringLogicalType{}, parquet.Types.ByteArray, -1, -1))
		return schema.ListOfWithName(name, elem, req, -1)
	}
	fields := make(schema.FieldList, 0, numFileColumns)
	for _, name := range fileColumns {
		var n schema.Node
		switch columnKinds[name] {
		case kindLong:
			n = schema.NewInt64Node(name, req, -1)
		case kindString:
			n = str(name)
		case kindTimestamp:
			n = schema.MustPrimitive(schema.NewPrimitiveNodeLogical(name, req, schema.NewTimestampLogicalTypeForce(true, schema.TimeUnitMicros), parquet.Types.Int64, -1, -1))
		case kindBool:
			n = schema.NewBooleanNode(name, req, -1)
		case kindStringList:
			var err error
			if n, err = list(name); err != nil {
				return nil, fmt.Errorf("list column %s: %w", name, err)
			}
		case kindDER:
			if asDERBinary {
				n = schema.NewByteArrayNode(name, req, -1)
			} else {
				n = str(name)
			}
		}
		fields = append(fields, n)
	}
	return schema.NewGroupNode("schema", req, fields, -1)
}

// dictionaryColumns have dictionary encoding on (spec 2.1 [HEAD] settings,
// with the chain path spelled as written, plus seen, which one fetch shares
// across many rows). Every other column is plain.
var dictionaryColumns = []string{
	"update_type", "seen", "source_name", "source_url", "signature_algorithm",
	"issuer_aggregated", "chain.list.element",
}

// statsColumns get Parquet column statistics (min/max per row group and
// page), which DuckDB uses to skip row groups. The other columns are hashes,
// free text and blobs nobody filters by range; their statistics would cost
// a comparison per value and bloat the footer.
var statsColumns = []string{
	"cert_index", "update_type", "seen", "source_name", "source_url",
	"not_before", "not_after", "is_ca", "signature_algorithm", "issuer_aggregated",
}

func writerProperties(compressionLevel int) *parquet.WriterProperties {
	opts := []parquet.WriterProperty{
		parquet.WithCompression(compress.Codecs.Zstd),
		parquet.WithDictionaryDefault(false),
		parquet.WithStats(false),
		parquet.WithCreatedBy("certlake"),
		// Row groups are closed by the writer (rows or bytes), never here.
		parquet.WithMaxRowGroupLength(1 << 40),
	}
	if compressionLevel != 0 {
		opts = append(opts, parquet.WithCompressionLevel(compressionLevel))
	}
	for _, c := range dictionaryColumns {
		opts = append(opts, parquet.WithDictionaryFor(c, true))
	}
	for _, c := range statsColumns {
		opts = append(opts, parquet.WithStatsFor(c, true))
	}
	return parquet.NewWriterProperties(opts...)
}

// bytesOf views s as bytes without copying. The Parquet writer only reads
// its input, and copying every string would double the writer's memory
// traffic.
func bytesOf(s string) parquet.ByteArray {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// writeColumn writes one column of rows into the buffered row group. Each
// call touches only column col's writer, so different columns may be
// written concurrently.
func writeColumn(rg file.BufferedRowGroupWriter, col int, rows []record.Row, asDERBinary bool) error {
	cw, err := rg.Column(col)
	if err != nil {
		return err
	}
	switch col {
	case colCertIndex, colSeen, colNotBefore, colNotAfter:
		vals := make([]int64, len(rows))
		for i := range rows {
			r := &rows[i]
			switch col {
			case colCertIndex:
				vals[i] = int64(r.CertIndex)
			case colSeen:
				vals[i] = r.Seen.UnixMicro()
			case colNotBefore:
				vals[i] = r.NotBefore
			case colNotAfter:
				vals[i] = r.NotAfter
			}
		}
		_, err = cw.(*file.Int64ColumnChunkWriter).WriteBatch(vals, nil, nil)
	case colIsCA:
		vals := make([]bool, len(rows))
		for i := range rows {
			vals[i] = rows[i].IsCA
		}
		_, err = cw.(*file.BooleanColumnChunkWriter).WriteBatch(vals, nil, nil)
	case colAllDomains, colChain:
		err = writeList(cw.(*file.ByteArrayColumnChunkWriter), col, rows)
	case colAsDER:
		vals := make([]parquet.ByteArray, len(rows))
		if asDERBinary {
			for i := range rows {
				vals[i] = rows[i].AsDER
			}
		} else {
			n := 0
			for i := range rows {
				n += base64.StdEncoding.EncodedLen(len(rows[i].AsDER))
			}
			buf := make([]byte, n)
			off := 0
			for i := range rows {
				m := base64.StdEncoding.EncodedLen(len(rows[i].AsDER))
				base64.StdEncoding.Encode(buf[off:off+m], rows[i].AsDER)
				vals[i] = buf[off : off+m : off+m]
				off += m
			}
		}
		_, err = cw.(*file.ByteArrayColumnChunkWriter).WriteBatch(vals, nil, nil)
	default:
		vals := make([]parquet.ByteArray, len(rows))
		for i := range rows {
			vals[i] = bytesOf(stringColumn(&rows[i], col))
		}
		_, err = cw.(*file.ByteArrayColumnChunkWriter).WriteBatch(vals, nil, nil)
	}
	if err != nil {
		return fmt.Errorf("write column %s: %w", fileColumns[col], err)
	}
	return nil
}

func stringColumn(r *record.Row, col int) string {
	switch col {
	case colUpdateType:
		return r.UpdateType
	case colSourceName:
		return r.SourceName
	case colSourceURL:
		return r.SourceURL
	case colCertLink:
		return r.CertLink
	case colSerialNumber:
		return r.SerialNumber
	case colFingerprint:
		return r.Fingerprint
	case colSHA256:
		return r.SHA256
	case colSHA1:
		return r.SHA1
	case colSignatureAlgorithm:
		return r.SignatureAlgorithm
	case colSubjectAggregated:
		return r.SubjectAggregated
	case colIssuerAggregated:
		return r.IssuerAggregated
	}
	panic(fmt.Sprintf("lake: column %d is not a string column", col))
}

// writeList writes a required LIST of optional strings. Levels per slot:
// an empty list is one slot with definition 0; each element has definition
// 2 (list present, element present) and repetition 0 for a row's first
// element, 1 for the rest.
func writeList(cw *file.ByteArrayColumnChunkWriter, col int, rows []record.Row) error {
	n := 0
	slots := 0
	for i := range rows {
		l := listOf(&rows[i], col)
		n += len(l)
		slots += max(len(l), 1)
	}
	vals := make([]parquet.ByteArray, 0, n)
	def := make([]int16, 0, slots)
	rep := make([]int16, 0, slots)
	for i := range rows {
		l := listOf(&rows[i], col)
		if len(l) == 0 {
			def = append(def, 0)
			rep = append(rep, 0)
			continue
		}
		for j, s := range l {
			vals = append(vals, bytesOf(s))
			def = append(def, 2)
			rep = append(rep, min(int16(j), 1))
		}
	}
	_, err := cw.WriteBatch(vals, def, rep)
	return err
}

func listOf(r *record.Row, col int) []string {
	if col == colChain {
		return r.Chain
	}
	return r.AllDomains
}
