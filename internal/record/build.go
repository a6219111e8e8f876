package record

import (
	"crypto/sha1"
	"crypto/sha256"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// Build turns one decoded log entry into its row (spec sections 2 to 5).
//
// e.Cert must parse as a certificate, otherwise Build returns an error
// wrapping ErrBadCertificate and the entry gets no row: the caller reports
// it with its index. Chain certificates that do not parse are left out of
// Row.Chain, as the live ingester does. Row.AsDER aliases e.Cert.
//
// Build keeps no state; a Builder caches the chain objects of repeated
// intermediate certificates and is the faster choice for a stream of entries.
func Build(e Entry, src Source) (Row, error) {
	return build(e, src, nil)
}

// Builder builds rows like Build and remembers the chain JSON of the chain
// certificates it has seen, since the same few intermediates recur in almost
// every entry of a log. It is safe for concurrent use. The zero value is
// ready to use with a cache of DefaultChainCacheSize certificates.
type Builder struct {
	// MaxCached bounds the number of cached chain certificates; 0 means
	// DefaultChainCacheSize. When full, the cache is emptied and refilled.
	MaxCached int

	mu    sync.Mutex
	chain map[string]chainResult // keyed by the certificate's DER
}

// DefaultChainCacheSize is the default of Builder.MaxCached.
const DefaultChainCacheSize = 4096

// chainResult is a cached chain element: its JSON, or that it did not parse.
type chainResult struct {
	json string
	ok   bool
}

// Build is like the package-level Build.
func (b *Builder) Build(e Entry, src Source) (Row, error) {
	return build(e, src, b)
}

func (b *Builder) chainJSON(der []byte) (string, bool) {
	b.mu.Lock()
	r, hit := b.chain[string(der)]
	b.mu.Unlock()
	if hit {
		return r.json, r.ok
	}
	r.json, r.ok = chainJSON(der)
	b.mu.Lock()
	limit := b.MaxCached
	if limit <= 0 {
		limit = DefaultChainCacheSize
	}
	if b.chain == nil || len(b.chain) >= limit {
		b.chain = make(map[string]chainResult)
	}
	b.chain[string(der)] = r
	b.mu.Unlock()
	return r.json, r.ok
}

func build(e Entry, src Source, cache *Builder) (Row, error) {
	if e.Type != X509Entry && e.Type != PrecertEntry {
		return Row{}, fmt.Errorf("entry %d type %d: %w", e.Index, uint16(e.Type), ErrSkippedEntryType)
	}
	var extBuf [maxStackExtensions]extension
	f, exts, err := parseCertificate(e.Cert, extBuf[:0])
	if err != nil {
		return Row{}, fmt.Errorf("entry %d: %w", e.Index, err)
	}
	ext := summarizeExtensions(exts, false)
	sha1Hex, sha256Hex := digests(e.Cert)
	seen := e.Seen.Truncate(time.Millisecond).UTC()
	row := Row{
		CertIndex:          e.Index,
		UpdateType:         e.Type.UpdateType(),
		Seen:               seen,
		SeenDate:           seen.Format(time.DateOnly),
		SourceName:         src.Name,
		SourceURL:          src.URL,
		CertLink:           CertLink(src, e.Index),
		SerialNumber:       serialHex(f.serial),
		Fingerprint:        sha1Hex,
		SHA256:             sha256Hex,
		SHA1:               sha1Hex,
		NotBefore:          f.notBefore,
		NotAfter:           f.notAfter,
		IsCA:               ext.isCA,
		SignatureAlgorithm: signatureAlgorithm(f.sigAlg),
		SubjectAggregated:  f.subject.aggregated(),
		IssuerAggregated:   f.issuer.aggregated(),
		AllDomains:         allDomains(&f.subject, ext),
		AsDER:              e.Cert,
		Chain:              make([]string, 0, len(e.Chain)),
	}
	for _, der := range e.Chain {
		var js string
		var ok bool
		if cache != nil {
			js, ok = cache.chainJSON(der)
		} else {
			js, ok = chainJSON(der)
		}
		if ok {
			row.Chain = append(row.Chain, js)
		}
	}
	return row, nil
}

// allDomains builds all_domains (spec section 3.18): the subject CN unless
// it is absent or empty or the certificate is a CA, then the SAN dNSNames,
// each string once (exact byte comparison, nothing normalized).
func allDomains(subject *name, ext extSummary) []string {
	out := make([]string, 0, 1+len(ext.dnsNames))
	if cn, ok := subject.get(attrCN); ok && len(cn) > 0 && !ext.isCA {
		out = append(out, string(cn))
	}
	for _, d := range ext.dnsNames {
		if !contains(out, d) {
			out = append(out, d)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// chainJSON renders a chain certificate as the compact JSON object of spec
// section 5.1; ok is false when der does not parse.
func chainJSON(der []byte) (string, bool) {
	var extBuf [maxStackExtensions]extension
	f, exts, err := parseCertificate(der, extBuf[:0])
	if err != nil {
		return "", false
	}
	ext := summarizeExtensions(exts, true)
	sha1Hex, sha256Hex := digests(der)
	b := make([]byte, 0, 1024)
	b = append(b, `{"subject":`...)
	b = f.subject.appendJSON(b)
	b = append(b, `,"issuer":`...)
	b = f.issuer.appendJSON(b)
	b = append(b, `,"serial_number":`...)
	b = appendJSONString(b, serialHex(f.serial))
	b = append(b, `,"not_before":`...)
	b = strconv.AppendInt(b, f.notBefore, 10)
	b = append(b, `,"not_after":`...)
	b = strconv.AppendInt(b, f.notAfter, 10)
	b = append(b, `,"fingerprint":"`...)
	b = append(b, sha1Hex...)
	b = append(b, `","sha1":"`...)
	b = append(b, sha1Hex...)
	b = append(b, `","sha256":"`...)
	b = append(b, sha256Hex...)
	b = append(b, `","signature_algorithm":`...)
	b = appendJSONString(b, signatureAlgorithm(f.sigAlg))
	b = append(b, `,"is_ca":`...)
	b = strconv.AppendBool(b, ext.isCA)
	b = append(b, `,"extensions":`...)
	b = ext.appendJSON(b)
	b = append(b, '}')
	return string(b), true
}

// digests returns the SHA-1 and SHA-256 of der in the row's format:
// uppercase hex pairs separated by ':' (spec sections 3.8 to 3.11).
func digests(der []byte) (sha1Hex, sha256Hex string) {
	s1 := sha1.Sum(der)
	s256 := sha256.Sum256(der)
	return colonHex(s1[:]), colonHex(s256[:])
}

func colonHex(b []byte) string {
	const digits = "0123456789ABCDEF"
	// On the stack for digests up to SHA-256: one allocation, the string.
	var buf [3 * sha256.Size]byte
	out := buf[:0]
	for i, c := range b {
		if i > 0 {
			out = append(out, ':')
		}
		out = append(out, digits[c>>4], digits[c&0xf])
	}
	return string(out)
}

// serialHex formats serial_number (spec section 3.7): the INTEGER's content
// octets as an unsigned magnitude, leading zero bytes dropped, two uppercase
// hex digits per byte; "00" for zero. A negative serial is not
// sign-interpreted: FF 01 prints "FF01".
func serialHex(content []byte) string {
	const digits = "0123456789ABCDEF"
	for len(content) > 0 && content[0] == 0 {
		content = content[1:]
	}
	if len(content) == 0 {
		return "00"
	}
	var buf [64]byte // serials are at most 20 octets (RFC 5280); longer ones grow
	out := buf[:0]
	for _, c := range content {
		out = append(out, digits[c>>4], digits[c&0xf])
	}
	return string(out)
}
