package lake

import (
	"context"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/certlake/certlake/internal/record"
)

// ReadRows reads every row of files into memory, in file order, taking
// seen_date from each file's partition value. It is meant for tests and
// tools; scans over large tables go through DuckDB. as_der is decoded from
// base64 when the file stores it as a string.
func ReadRows(ctx context.Context, files []FileInfo) ([]record.Row, error) {
	var rows []record.Row
	for _, f := range files {
		var err error
		if rows, err = readFile(ctx, f, rows); err != nil {
			return nil, fmt.Errorf("read %s: %w", f.Path, err)
		}
	}
	return rows, nil
}

func readFile(ctx context.Context, f FileInfo, rows []record.Row) ([]record.Row, error) {
	pf, err := file.OpenParquetFile(f.LocalPath, false)
	if err != nil {
		return nil, err
	}
	defer pf.Close()
	// Strings taken from the arrays alias their buffers. The Go allocator
	// never reuses a buffer (its Free is a no-op; the GC frees it once no
	// string points into it), so the rows stay valid after Release.
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 1 << 14}, memory.NewGoAllocator())
	if err != nil {
		return nil, err
	}
	rr, err := fr.GetRecordReader(ctx, nil, nil)
	if err != nil {
		return nil, err
	}
	defer rr.Release()
	for rr.Next() {
		rec := rr.RecordBatch()
		if rows, err = appendRecord(rec, f.SeenDate, rows); err != nil {
			return nil, err
		}
	}
	if err := rr.Err(); err != nil {
		return nil, err
	}
	return rows, nil
}

func appendRecord(rec arrow.RecordBatch, seenDate string, rows []record.Row) ([]record.Row, error) {
	cols := make(map[string]arrow.Array, rec.NumCols())
	for i, fld := range rec.Schema().Fields() {
		cols[fld.Name] = rec.Column(i)
	}
	for _, name := range fileColumns {
		if cols[name] == nil {
			return nil, fmt.Errorf("no column %s", name)
		}
	}
	base := len(rows)
	rows = append(rows, make([]record.Row, rec.NumRows())...)
	out := rows[base:]
	for i := range out {
		out[i].SeenDate = seenDate
	}
	for _, name := range fileColumns {
		a := cols[name]
		for i := range out {
			r := &out[i]
			if a.IsNull(i) {
				return nil, fmt.Errorf("column %s row %d is null", name, i)
			}
			var err error
			switch name {
			case "cert_index":
				r.CertIndex, err = uintAt(a, i)
			case "seen":
				r.Seen, err = timeAt(a, i)
			case "not_before":
				r.NotBefore, err = intAt(a, i)
			case "not_after":
				r.NotAfter, err = intAt(a, i)
			case "is_ca":
				b, ok := a.(*array.Boolean)
				if !ok {
					return nil, fmt.Errorf("column is_ca has type %s", a.DataType())
				}
				r.IsCA = b.Value(i)
			case "all_domains":
				r.AllDomains, err = listAt(a, i)
			case "chain":
				r.Chain, err = listAt(a, i)
			case "as_der":
				r.AsDER, err = derAt(a, i)
			default:
				var s string
				if s, err = strAt(a, i); err == nil {
					setString(r, name, s)
				}
			}
			if err != nil {
				return nil, fmt.Errorf("column %s: %w", name, err)
			}
		}
	}
	return rows, nil
}

func setString(r *record.Row, name, s string) {
	switch name {
	case "update_type":
		r.UpdateType = s
	case "source_name":
		r.SourceName = s
	case "source_url":
		r.SourceURL = s
	case "cert_link":
		r.CertLink = s
	case "serial_number":
		r.SerialNumber = s
	case "fingerprint":
		r.Fingerprint = s
	case "sha256":
		r.SHA256 = s
	case "sha1":
		r.SHA1 = s
	case "signature_algorithm":
		r.SignatureAlgorithm = s
	case "subject_aggregated":
		r.SubjectAggregated = s
	case "issuer_aggregated":
		r.IssuerAggregated = s
	}
}

func intAt(a arrow.Array, i int) (int64, error) {
	switch a := a.(type) {
	case *array.Int64:
		return a.Value(i), nil
	case *array.Int32:
		return int64(a.Value(i)), nil
	}
	return 0, fmt.Errorf("type %s, want int64", a.DataType())
}

func uintAt(a arrow.Array, i int) (uint64, error) {
	switch a := a.(type) {
	case *array.Uint64:
		return a.Value(i), nil
	case *array.Int64:
		if a.Value(i) < 0 {
			return 0, fmt.Errorf("negative value %d", a.Value(i))
		}
		return uint64(a.Value(i)), nil
	}
	return 0, fmt.Errorf("type %s, want int64", a.DataType())
}

func timeAt(a arrow.Array, i int) (time.Time, error) {
	ts, ok := a.(*array.Timestamp)
	if !ok {
		return time.Time{}, fmt.Errorf("type %s, want timestamp", a.DataType())
	}
	unit := ts.DataType().(*arrow.TimestampType).Unit
	return ts.Value(i).ToTime(unit).UTC(), nil
}

func strAt(a arrow.Array, i int) (string, error) {
	switch a := a.(type) {
	case *array.String:
		return a.Value(i), nil
	case *array.LargeString:
		return a.Value(i), nil
	case *array.Binary:
		return string(a.Value(i)), nil
	}
	return "", fmt.Errorf("type %s, want string", a.DataType())
}

func listAt(a arrow.Array, i int) ([]string, error) {
	l, ok := a.(array.ListLike)
	if !ok {
		return nil, fmt.Errorf("type %s, want list", a.DataType())
	}
	start, end := l.ValueOffsets(i)
	vals := l.ListValues()
	out := make([]string, 0, end-start)
	for j := start; j < end; j++ {
		if vals.IsNull(int(j)) {
			return nil, fmt.Errorf("row %d: null list element", i)
		}
		s, err := strAt(vals, int(j))
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func derAt(a arrow.Array, i int) ([]byte, error) {
	switch a := a.(type) {
	case *array.Binary:
		return append([]byte(nil), a.Value(i)...), nil
	case *array.String:
		b, err := base64.StdEncoding.DecodeString(a.Value(i))
		if err != nil {
			return nil, fmt.Errorf("row %d: %w", i, err)
		}
		return b, nil
	}
	return nil, fmt.Errorf("type %s, want string or binary", a.DataType())
}
