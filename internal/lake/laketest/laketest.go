// Package laketest generates realistic certstream rows (spec/record-format.md
// section 2 of the certlake design documents) for tests and benchmarks of
// the certstream table: random DER-sized certificates, hashes in the
// table's formats, a few shared chains of ~1.5 KB JSON elements, and
// batches of rows sharing one fetch time as real fetches do.
package laketest

import (
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/certlake/certlake/internal/record"
)

// Gen makes rows for one log. The zero value is not usable; use New.
type Gen struct {
	r         *rand.Rand
	sourceURL string
	name      string
	chains    [][]string
	issuers   []string
	// PerFetch rows share one seen value (one get-entries response).
	PerFetch int
}

// New returns a generator for the log at sourceURL, seeded for
// reproducible rows.
func New(seed uint64, sourceURL string) *Gen {
	g := &Gen{
		r:         rand.New(rand.NewPCG(seed, seed^0x5eed)),
		sourceURL: sourceURL,
		name:      "Test log " + sourceURL,
		PerFetch:  32,
	}
	for i := range 6 {
		issuer := fmt.Sprintf("/C=US/CN=Test Intermediate R%d/O=Certlake Test CA", 10+i)
		g.issuers = append(g.issuers, issuer)
		g.chains = append(g.chains, []string{
			g.chainElement(issuer, "/C=US/CN=Test Root X1/O=Certlake Test CA"),
			g.chainElement("/C=US/CN=Test Root X1/O=Certlake Test CA", "/C=US/CN=Test Root X1/O=Certlake Test CA"),
		})
	}
	return g
}

func (g *Gen) hexColons(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(g.r.Uint32())
	}
	h := strings.ToUpper(hex.EncodeToString(b))
	var sb strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			sb.WriteByte(':')
		}
		sb.WriteString(h[i : i+2])
	}
	return sb.String()
}

// chainElement renders a chain certificate as compact JSON in the key
// order of spec 5.1, padded to ~1.5 KB with a long policy text as real
// intermediates' extensions are.
func (g *Gen) chainElement(subject, issuer string) string {
	sha1 := g.hexColons(20)
	policy := strings.Repeat("Policy: 2.23.140.1.2.1\\n  CPS: http://cps.example.org/\\n", 14)
	return fmt.Sprintf(`{"subject":{"C":"US","CN":"x","O":"Certlake Test CA","aggregated":%q},"issuer":{"C":"US","CN":"y","O":"Certlake Test CA","aggregated":%q},"serial_number":%q,"not_before":1700000000,"not_after":1900000000,"fingerprint":%q,"sha1":%q,"sha256":%q,"signature_algorithm":"sha256, rsa","is_ca":true,"extensions":{"authorityInfoAccess":"URI:http://r.example.org/","authorityKeyIdentifier":"keyid:%s","basicConstraints":"CA:TRUE","certificatePolicies":"%s","keyUsage":"Digital Signature, Certificate Signing, CRL Signing","subjectKeyIdentifier":"keyid:%s"}}`,
		subject, issuer, strings.ReplaceAll(g.hexColons(16), ":", ""), sha1, sha1, g.hexColons(32),
		strings.ToLower(g.hexColons(20)), policy, strings.ToLower(g.hexColons(20)))
}

// Rows returns n rows with cert_index start, start+1, ... fetched from
// seen on (every PerFetch rows the fetch time advances by 150 ms).
func (g *Gen) Rows(start uint64, n int, seen time.Time) []record.Row {
	rows := make([]record.Row, n)
	for i := range rows {
		fetch := seen.Add(time.Duration(i/max(g.PerFetch, 1)) * 150 * time.Millisecond).UTC().Truncate(time.Millisecond)
		rows[i] = g.row(start+uint64(i), fetch)
	}
	return rows
}

func (g *Gen) row(index uint64, seen time.Time) record.Row {
	der := make([]byte, 700+g.r.IntN(400))
	for i := range der {
		der[i] = byte(g.r.Uint32())
	}
	der[0], der[1] = 0x30, 0x82
	host := fmt.Sprintf("h%06x.example%d.com", g.r.Uint32()&0xffffff, g.r.IntN(1000))
	domains := []string{host}
	for range g.r.IntN(4) {
		domains = append(domains, fmt.Sprintf("a%04x.%s", g.r.Uint32()&0xffff, host))
	}
	ut := record.PrecertEntry
	if g.r.IntN(10) < 3 {
		ut = record.X509Entry
	}
	c := g.r.IntN(len(g.chains))
	notBefore := int64(1700000000 + g.r.IntN(40_000_000))
	sha1 := g.hexColons(20)
	algs := [...]string{"sha256, rsa", "ecdsa, sha256", "ecdsa, sha384"}
	return record.Row{
		CertIndex:          index,
		UpdateType:         ut.UpdateType(),
		Seen:               seen,
		SeenDate:           seen.Format(time.DateOnly),
		SourceName:         g.name,
		SourceURL:          g.sourceURL,
		CertLink:           fmt.Sprintf("%s/ct/v1/get-entries?start=%d&end=%d", g.sourceURL, index, index),
		SerialNumber:       strings.ReplaceAll(g.hexColons(16), ":", ""),
		Fingerprint:        sha1,
		SHA256:             g.hexColons(32),
		SHA1:               sha1,
		NotBefore:          notBefore,
		NotAfter:           notBefore + 90*86400,
		IsCA:               g.r.IntN(100) == 0,
		SignatureAlgorithm: algs[g.r.IntN(len(algs))],
		SubjectAggregated:  "/CN=" + host,
		IssuerAggregated:   g.issuers[c],
		AllDomains:         domains,
		AsDER:              der,
		Chain:              g.chains[c],
	}
}
