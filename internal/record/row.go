// Package record turns one Certificate Transparency log entry into the
// 20-column certstream row, byte for byte as the live ingester
// (certstream-server-rust) writes it. The format is specified field by field in
// spec/record-format.md of the certlake design documents.
package record

import "time"

// EntryType is the RFC 6962 LogEntryType of an entry.
type EntryType uint16

const (
	X509Entry    EntryType = 0 // x509_entry
	PrecertEntry EntryType = 1 // precert_entry
)

// UpdateType returns the value of the update_type column for t:
// "X509LogEntry" or "PrecertLogEntry".
func (t EntryType) UpdateType() string {
	if t == PrecertEntry {
		return "PrecertLogEntry"
	}
	return "X509LogEntry"
}

// Row is one certstream table row. Field order follows the table's columns.
// No field is ever null; lists may be empty but are never nil when written.
type Row struct {
	CertIndex          uint64    // cert_index: 0-based index in the log
	UpdateType         string    // update_type: "X509LogEntry" or "PrecertLogEntry"
	Seen               time.Time // seen: fetch time, whole milliseconds, UTC
	SeenDate           string    // seen_date: UTC date of Seen, "YYYY-MM-DD" (partition column)
	SourceName         string    // source_name: the log's description
	SourceURL          string    // source_url: the log's normalized URL
	CertLink           string    // cert_link
	SerialNumber       string    // serial_number: uppercase hex of the raw INTEGER content
	Fingerprint        string    // fingerprint: same as SHA1
	SHA256             string    // sha256: uppercase colon-separated hex
	SHA1               string    // sha1: uppercase colon-separated hex
	NotBefore          int64     // not_before: Unix seconds
	NotAfter           int64     // not_after: Unix seconds
	IsCA               bool      // is_ca
	SignatureAlgorithm string    // signature_algorithm
	SubjectAggregated  string    // subject_aggregated
	IssuerAggregated   string    // issuer_aggregated
	AllDomains         []string  // all_domains
	AsDER              []byte    // as_der: raw DER; stored base64 or binary per the table schema
	Chain              []string  // chain: compact JSON objects, one per chain certificate
}

// Columns lists the 20 column names in table order.
var Columns = [20]string{
	"cert_index", "update_type", "seen", "seen_date", "source_name", "source_url",
	"cert_link", "serial_number", "fingerprint", "sha256", "sha1", "not_before",
	"not_after", "is_ca", "signature_algorithm", "subject_aggregated",
	"issuer_aggregated", "all_domains", "as_der", "chain",
}
