package record

import "time"

// Source identifies the log an entry came from.
type Source struct {
	URL    string // normalized log URL (NormalizeURL); the source_url column
	Name   string // the log's description; the source_name column
	Static bool   // static-ct-api (tiles) rather than RFC 6962; decides cert_link
}

// Entry is one decoded log entry: "the certificate" (for a precert, the
// pre-certificate) and its chain, as spec/record-format.md section 6 defines
// them. Decoding the wire formats into an Entry is package ctlog's job.
type Entry struct {
	Index uint64    // cert_index
	Type  EntryType // x509_entry or precert_entry
	Cert  []byte    // exact DER bytes that are hashed and stored in as_der
	Chain [][]byte  // chain certificates' DER, in log order (issuer first)
	Seen  time.Time // when the HTTP response carrying the entry was processed
}
