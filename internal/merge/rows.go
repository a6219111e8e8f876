package merge

import (
	"database/sql"
	"fmt"
	"time"

	"github.com/certlake/certlake/internal/record"
)

// rowColumns selects the 19 data columns of a certstream file in
// record.Row order, as the types scanRow expects: seen as epoch
// microseconds, as_der as raw bytes (derExpr decodes base64 tables).
func rowColumns(alias string, asDERBinary bool) string {
	p := alias + "."
	der := "from_base64(" + p + "as_der)"
	if asDERBinary {
		der = p + "as_der"
	}
	return p + "cert_index, " + p + "update_type, epoch_us(" + p + "seen), " + p + "source_name, " +
		p + "source_url, " + p + "cert_link, " + p + "serial_number, " + p + "fingerprint, " +
		p + "sha256, " + p + "sha1, " + p + "not_before, " + p + "not_after, " + p + "is_ca, " +
		p + "signature_algorithm, " + p + "subject_aggregated, " + p + "issuer_aggregated, " +
		p + "all_domains, " + der + ", " + p + "chain"
}

// rowScanner scans rowColumns results into record.Rows, reusing its
// destinations between rows.
type rowScanner struct {
	certIndex, seenMicros int64
	notBefore, notAfter   int64
	domains, chain        any
	der                   []byte
	dest                  []any
	row                   record.Row
}

func newRowScanner() *rowScanner {
	s := &rowScanner{}
	r := &s.row
	s.dest = []any{
		&s.certIndex, &r.UpdateType, &s.seenMicros, &r.SourceName, &r.SourceURL, &r.CertLink,
		&r.SerialNumber, &r.Fingerprint, &r.SHA256, &r.SHA1, &s.notBefore, &s.notAfter, &r.IsCA,
		&r.SignatureAlgorithm, &r.SubjectAggregated, &r.IssuerAggregated, &s.domains, &s.der, &s.chain,
	}
	return s
}

// scan reads the current row. The returned Row owns its data (the writer
// keeps references until it encodes them).
func (s *rowScanner) scan(rows *sql.Rows) (record.Row, error) {
	s.row = record.Row{}
	if err := rows.Scan(s.dest...); err != nil {
		return record.Row{}, err
	}
	r := s.row
	if s.certIndex < 0 {
		return record.Row{}, fmt.Errorf("negative cert_index %d", s.certIndex)
	}
	r.CertIndex = uint64(s.certIndex)
	r.Seen = time.UnixMicro(s.seenMicros).UTC()
	r.NotBefore, r.NotAfter = s.notBefore, s.notAfter
	r.AsDER = s.der
	s.der = nil
	var err error
	if r.AllDomains, err = stringList(s.domains); err != nil {
		return record.Row{}, fmt.Errorf("all_domains: %w", err)
	}
	if r.Chain, err = stringList(s.chain); err != nil {
		return record.Row{}, fmt.Errorf("chain: %w", err)
	}
	return r, nil
}

// stringList converts a scanned DuckDB LIST(VARCHAR). The table never holds
// null lists or elements; a null is read as empty to stay writable.
func stringList(v any) ([]string, error) {
	switch l := v.(type) {
	case nil:
		return []string{}, nil
	case []any:
		out := make([]string, len(l))
		for i, e := range l {
			switch s := e.(type) {
			case string:
				out[i] = s
			case nil:
			default:
				return nil, fmt.Errorf("element of type %T", e)
			}
		}
		return out, nil
	default:
		return nil, fmt.Errorf("list of type %T", v)
	}
}
