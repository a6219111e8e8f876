package record

import (
	"errors"
	"fmt"

	ctx509 "github.com/google/certificate-transparency-go/x509"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// ErrBadCertificate reports DER that does not parse as a certificate. For
// "the certificate" of an entry it means no row (spec section 6.3); a chain
// certificate with it is left out of the chain.
var ErrBadCertificate = errors.New("bad certificate")

// certFields are the parts of a certificate the row format reads, taken from
// the raw DER so that they match the live ingester byte for byte.
type certFields struct {
	serial    []byte // content octets of serialNumber, as encoded
	sigAlg    []byte // DER content of the outer signatureAlgorithm OID
	subject   name
	issuer    name
	notBefore int64 // Unix seconds
	notAfter  int64
	exts      []extension
}

// parseCertificate parses der as spec section 4 says. Bytes after the
// certificate's outer SEQUENCE are ignored here (they are still hashed and
// stored by the caller).
//
// Acceptance is decided by ct-go's lenient x509 parser: a certificate with
// only non-fatal errors (negative serial, odd names, unknown critical
// extensions such as the CT poison) is accepted. The fields themselves are
// read from the raw DER with cryptobyte; if that walk fails too the
// certificate is rejected.
func parseCertificate(der []byte) (certFields, error) {
	var f certFields
	input := cryptobyte.String(der)
	var certElem cryptobyte.String
	if !input.ReadASN1Element(&certElem, cbasn1.SEQUENCE) {
		return f, fmt.Errorf("%w: no outer SEQUENCE", ErrBadCertificate)
	}
	cert, err := ctx509.ParseCertificate(certElem)
	if ctx509.IsFatal(err) {
		return f, fmt.Errorf("%w: %w", ErrBadCertificate, err)
	}
	f.notBefore = cert.NotBefore.Unix()
	f.notAfter = cert.NotAfter.Unix()
	if err := walkCertificate(certElem, &f); err != nil {
		return f, fmt.Errorf("%w: %w", ErrBadCertificate, err)
	}
	return f, nil
}

// walkCertificate fills f's raw fields from the Certificate element.
//
//	Certificate  ::=  SEQUENCE  { tbsCertificate, signatureAlgorithm, signatureValue }
//	TBSCertificate  ::=  SEQUENCE  {
//	     version         [0]  EXPLICIT Version DEFAULT v1,
//	     serialNumber         CertificateSerialNumber,
//	     signature            AlgorithmIdentifier,
//	     issuer               Name,
//	     validity             Validity,
//	     subject              Name,
//	     subjectPublicKeyInfo SubjectPublicKeyInfo,
//	     issuerUniqueID  [1]  IMPLICIT UniqueIdentifier OPTIONAL,
//	     subjectUniqueID [2]  IMPLICIT UniqueIdentifier OPTIONAL,
//	     extensions      [3]  EXPLICIT Extensions OPTIONAL }
func walkCertificate(elem cryptobyte.String, f *certFields) error {
	var certSeq, tbs, sigAlg, sigOID cryptobyte.String
	if !elem.ReadASN1(&certSeq, cbasn1.SEQUENCE) ||
		!certSeq.ReadASN1(&tbs, cbasn1.SEQUENCE) ||
		!certSeq.ReadASN1(&sigAlg, cbasn1.SEQUENCE) ||
		!sigAlg.ReadASN1(&sigOID, cbasn1.OBJECT_IDENTIFIER) {
		return errors.New("malformed certificate structure")
	}
	f.sigAlg = sigOID
	var serial, issuer, subject cryptobyte.String
	if !tbs.SkipOptionalASN1(cbasn1.Tag(0).Constructed().ContextSpecific()) ||
		!tbs.ReadASN1(&serial, cbasn1.INTEGER) ||
		!tbs.SkipASN1(cbasn1.SEQUENCE) ||
		!tbs.ReadASN1Element(&issuer, cbasn1.SEQUENCE) ||
		!tbs.SkipASN1(cbasn1.SEQUENCE) ||
		!tbs.ReadASN1Element(&subject, cbasn1.SEQUENCE) ||
		!tbs.SkipASN1(cbasn1.SEQUENCE) {
		return errors.New("malformed TBSCertificate")
	}
	f.serial = serial
	var ok bool
	if f.issuer, ok = parseName(issuer); !ok {
		return errors.New("malformed issuer name")
	}
	if f.subject, ok = parseName(subject); !ok {
		return errors.New("malformed subject name")
	}
	// Unique identifiers: primitive or (BER) constructed.
	for _, n := range []uint8{1, 2} {
		if !tbs.SkipOptionalASN1(cbasn1.Tag(n).ContextSpecific()) ||
			!tbs.SkipOptionalASN1(cbasn1.Tag(n).Constructed().ContextSpecific()) {
			return errors.New("malformed unique identifier")
		}
	}
	var extsWrap, exts cryptobyte.String
	var present bool
	if !tbs.ReadOptionalASN1(&extsWrap, &present, cbasn1.Tag(3).Constructed().ContextSpecific()) {
		return errors.New("malformed extensions")
	}
	if !present {
		return nil
	}
	if !extsWrap.ReadASN1(&exts, cbasn1.SEQUENCE) {
		return errors.New("malformed extensions")
	}
	for !exts.Empty() {
		var ext, oid, value cryptobyte.String
		if !exts.ReadASN1(&ext, cbasn1.SEQUENCE) ||
			!ext.ReadASN1(&oid, cbasn1.OBJECT_IDENTIFIER) ||
			!ext.SkipOptionalASN1(cbasn1.BOOLEAN) ||
			!ext.ReadASN1(&value, cbasn1.OCTET_STRING) {
			return errors.New("malformed extension")
		}
		f.exts = append(f.exts, extension{oid: oid, value: value})
	}
	return nil
}
