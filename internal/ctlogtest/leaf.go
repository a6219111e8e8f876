package ctlogtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	encasn1 "encoding/asn1"
	"fmt"
	"math/big"
	"time"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// Leaves are encoded here rather than with x509.CreateCertificate, which
// verifies every signature it makes and re-parses through reflection-based
// ASN.1: on 2 cores that capped generation at ~4,700 leaves/s, too slow for
// the million-entry benchmarks. The encoding is plain DER (RFC 5280), and the
// tests check that crypto/x509 parses every leaf and verifies its signature.

var (
	oidECDSAWithSHA256 = encasn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidCountry         = encasn1.ObjectIdentifier{2, 5, 4, 6}
	oidOrganization    = encasn1.ObjectIdentifier{2, 5, 4, 10}
	oidCommonName      = encasn1.ObjectIdentifier{2, 5, 4, 3}
	oidKeyUsage        = encasn1.ObjectIdentifier{2, 5, 29, 15}
	oidExtKeyUsage     = encasn1.ObjectIdentifier{2, 5, 29, 37}
	oidBasicConstr     = encasn1.ObjectIdentifier{2, 5, 29, 19}
	oidAuthorityKeyID  = encasn1.ObjectIdentifier{2, 5, 29, 35}
	oidSubjectAltName  = encasn1.ObjectIdentifier{2, 5, 29, 17}
	oidServerAuth      = encasn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 1}
	oidClientAuth      = encasn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 2}
)

// leafFields are the variable parts of a generated leaf.
type leafFields struct {
	serial              *big.Int
	commonName, org, c  string
	notBefore, notAfter time.Time
	dnsNames            []string
	precert             bool
}

// encodeLeaf returns the DER of a leaf with fields f, signed by parent's key,
// and its TBSCertificate. For a precertificate it also returns the TBS an
// RFC 6962 log records (section 3.2): without the poison and, when parent is
// a Precertificate Signing Certificate (finalIssuer not nil), with the
// issuer name and authority key ID of the final issuer. This is what
// BuildPrecertTBS of certificate-transparency-go computes by re-parsing; the
// tests check both agree.
func encodeLeaf(f leafFields, spki []byte, parent, finalIssuer *x509.Certificate, parentKey *ecdsa.PrivateKey) (der, tbs, loggedTBS []byte, err error) {
	tbs, err = encodeTBS(f, spki, parent.RawSubject, parent.SubjectKeyId, f.precert)
	if err != nil {
		return nil, nil, nil, err
	}
	if f.precert {
		issuer := parent
		if finalIssuer != nil {
			issuer = finalIssuer
		}
		if loggedTBS, err = encodeTBS(f, spki, issuer.RawSubject, issuer.SubjectKeyId, false); err != nil {
			return nil, nil, nil, err
		}
	}
	digest := sha256.Sum256(tbs)
	// A nil rand gives RFC 6979 deterministic signatures, so the whole DER
	// follows from the seed.
	sig, err := parentKey.Sign(nil, digest[:], crypto.SHA256)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("sign tbs: %w", err)
	}
	var c cryptobyte.Builder
	c.AddASN1(asn1.SEQUENCE, func(c *cryptobyte.Builder) {
		c.AddBytes(tbs)
		addAlgorithm(c)
		c.AddASN1BitString(sig)
	})
	der, err = c.Bytes()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("encode certificate: %w", err)
	}
	return der, tbs, loggedTBS, nil
}

// encodeTBS encodes a leaf's TBSCertificate (RFC 5280 4.1).
func encodeTBS(f leafFields, spki, issuer, authorityKeyID []byte, poison bool) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(asn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddASN1Int64(2) // v3
		})
		b.AddASN1BigInt(f.serial)
		addAlgorithm(b)
		b.AddBytes(issuer)
		b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
			addTime(b, f.notBefore)
			addTime(b, f.notAfter)
		})
		b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) { // subject, in crypto/x509's order
			if f.c != "" {
				addRDN(b, oidCountry, asn1.PrintableString, f.c)
			}
			if f.org != "" {
				addRDN(b, oidOrganization, asn1.UTF8String, f.org)
			}
			addRDN(b, oidCommonName, asn1.UTF8String, f.commonName)
		})
		b.AddBytes(spki)
		b.AddASN1(asn1.Tag(3).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
				addExtension(b, oidKeyUsage, true, func(b *cryptobyte.Builder) {
					b.AddASN1(asn1.BIT_STRING, func(b *cryptobyte.Builder) {
						b.AddUint8(7)    // unused bits
						b.AddUint8(0x80) // digitalSignature
					})
				})
				addExtension(b, oidExtKeyUsage, false, func(b *cryptobyte.Builder) {
					b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1ObjectIdentifier(oidServerAuth)
						b.AddASN1ObjectIdentifier(oidClientAuth)
					})
				})
				addExtension(b, oidBasicConstr, true, func(b *cryptobyte.Builder) {
					b.AddASN1(asn1.SEQUENCE, func(*cryptobyte.Builder) {}) // cA FALSE
				})
				addExtension(b, oidAuthorityKeyID, false, func(b *cryptobyte.Builder) {
					b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1(asn1.Tag(0).ContextSpecific(), func(b *cryptobyte.Builder) {
							b.AddBytes(authorityKeyID)
						})
					})
				})
				addExtension(b, oidSubjectAltName, false, func(b *cryptobyte.Builder) {
					b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
						for _, n := range f.dnsNames {
							b.AddASN1(asn1.Tag(2).ContextSpecific(), func(b *cryptobyte.Builder) { // dNSName
								b.AddBytes([]byte(n))
							})
						}
					})
				})
				if poison {
					addExtension(b, OIDCTPoison, true, func(b *cryptobyte.Builder) { b.AddASN1NULL() })
				}
			})
		})
	})
	tbs, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("encode tbs: %w", err)
	}
	return tbs, nil
}

func addAlgorithm(b *cryptobyte.Builder) {
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oidECDSAWithSHA256)
	})
}

// addTime encodes t as RFC 5280 4.1.2.5 requires: UTCTime through 2049.
func addTime(b *cryptobyte.Builder, t time.Time) {
	t = t.UTC()
	if t.Year() >= 1950 && t.Year() < 2050 {
		b.AddASN1UTCTime(t)
		return
	}
	b.AddASN1GeneralizedTime(t)
}

func addRDN(b *cryptobyte.Builder, oid encasn1.ObjectIdentifier, tag asn1.Tag, v string) {
	b.AddASN1(asn1.SET, func(b *cryptobyte.Builder) {
		b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oid)
			b.AddASN1(tag, func(b *cryptobyte.Builder) { b.AddBytes([]byte(v)) })
		})
	})
}

func addExtension(b *cryptobyte.Builder, oid encasn1.ObjectIdentifier, critical bool, value func(*cryptobyte.Builder)) {
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oid)
		if critical {
			b.AddASN1Boolean(true)
		}
		b.AddASN1(asn1.OCTET_STRING, value)
	})
}
