package record

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// ErrBadCertificate reports DER that does not parse as a certificate. For
// "the certificate" of an entry it means no row (spec section 6.3); a chain
// certificate with it is left out of the chain.
var ErrBadCertificate = errors.New("bad certificate")

// maxStackExtensions is the size of the extension arrays callers of
// parseCertificate keep on their stacks.
const maxStackExtensions = 16

// certFields are the parts of a certificate the row format reads, taken from
// the raw DER so that they match the live ingester byte for byte.
type certFields struct {
	serial    []byte // content octets of serialNumber, as encoded
	sigAlg    []byte // DER content of the outer signatureAlgorithm OID
	subject   name
	issuer    name
	notBefore int64 // Unix seconds
	notAfter  int64
	rawExts   []byte // content of the Extensions SEQUENCE (nil: none)
}

// parseCertificate parses der as spec section 4 says. Bytes after the
// certificate's outer SEQUENCE are ignored here (they are still hashed and
// stored by the caller).
//
// What is accepted follows the live ingester's parser (x509-parser 0.16):
// the certificate's structure must be well-formed DER down to the fields the
// row reads, validity times must be valid DER UTCTime or GeneralizedTime,
// and every extension must be an (OID, critical, OCTET STRING) triple; the
// contents of extensions, the public key and the signature are not
// interpreted, so a malformed keyUsage or a policy OID with a 128-bit arc
// still yields a row (spec quirk Q21). ct-go's lenient x509 parser rejects
// both of those, which is why it is not the gate here.
//
// The extensions are appended to exts and returned apart from the fields,
// so a caller can pass a slice of an array on its stack (escape analysis
// would move it to the heap if it were stored in certFields, which holds
// pointers into der): most certificates have fewer than maxStackExtensions,
// and growing the list from empty made more garbage per row than the rest
// of the row together.
func parseCertificate(der []byte, exts []extension) (certFields, []extension, error) {
	var f certFields
	input := cryptobyte.String(der)
	var certSeq cryptobyte.String
	if !input.ReadASN1(&certSeq, cbasn1.SEQUENCE) {
		return f, nil, fmt.Errorf("%w: no certificate SEQUENCE", ErrBadCertificate)
	}
	if err := walkCertificate(certSeq, &f); err != nil {
		return f, nil, fmt.Errorf("%w: %w", ErrBadCertificate, err)
	}
	exts, err := readExtensions(f.rawExts, exts[:0])
	if err != nil {
		return f, nil, fmt.Errorf("%w: %w", ErrBadCertificate, err)
	}
	return f, exts, nil
}

// walkCertificate fills f from the content of the Certificate SEQUENCE.
//
//	Certificate  ::=  SEQUENCE  { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING }
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
func walkCertificate(certSeq cryptobyte.String, f *certFields) error {
	var tbs cryptobyte.String
	if !certSeq.ReadASN1(&tbs, cbasn1.SEQUENCE) {
		return errors.New("malformed TBSCertificate")
	}
	var ok bool
	if f.sigAlg, ok = readAlgorithmOID(&certSeq); !ok || !certSeq.SkipASN1(cbasn1.BIT_STRING) {
		return errors.New("malformed signature")
	}

	var version cryptobyte.String
	var hasVersion bool
	if !tbs.ReadOptionalASN1(&version, &hasVersion, cbasn1.Tag(0).Constructed().ContextSpecific()) {
		return errors.New("malformed version")
	}
	if hasVersion {
		var v int64
		if !version.ReadASN1Int64WithTag(&v, cbasn1.INTEGER) || v < 0 || v > 1<<32-1 {
			return errors.New("malformed version")
		}
	}
	var serial, issuer, validity, subject, spki cryptobyte.String
	if !tbs.ReadASN1(&serial, cbasn1.INTEGER) {
		return errors.New("malformed serial number")
	}
	f.serial = serial
	if _, ok := readAlgorithmOID(&tbs); !ok {
		return errors.New("malformed signature algorithm")
	}
	if !tbs.ReadASN1Element(&issuer, cbasn1.SEQUENCE) ||
		!tbs.ReadASN1(&validity, cbasn1.SEQUENCE) ||
		!tbs.ReadASN1Element(&subject, cbasn1.SEQUENCE) ||
		!tbs.ReadASN1(&spki, cbasn1.SEQUENCE) {
		return errors.New("malformed TBSCertificate")
	}
	if f.issuer, ok = parseName(issuer); !ok {
		return errors.New("malformed issuer name")
	}
	if f.subject, ok = parseName(subject); !ok {
		return errors.New("malformed subject name")
	}
	if f.notBefore, ok = readTime(&validity); !ok {
		return errors.New("malformed notBefore")
	}
	if f.notAfter, ok = readTime(&validity); !ok {
		return errors.New("malformed notAfter")
	}
	if _, ok := readAlgorithmOID(&spki); !ok || !spki.SkipASN1(cbasn1.BIT_STRING) {
		return errors.New("malformed subjectPublicKeyInfo")
	}
	// Unique identifiers: IMPLICIT BIT STRING, primitive (or BER constructed).
	for _, n := range []uint8{1, 2} {
		if !tbs.SkipOptionalASN1(cbasn1.Tag(n).ContextSpecific()) ||
			!tbs.SkipOptionalASN1(cbasn1.Tag(n).Constructed().ContextSpecific()) {
			return errors.New("malformed unique identifier")
		}
	}
	if tbs.Empty() {
		return nil
	}
	var extsWrap, exts cryptobyte.String
	if !tbs.ReadASN1(&extsWrap, cbasn1.Tag(3).Constructed().ContextSpecific()) ||
		!extsWrap.ReadASN1(&exts, cbasn1.SEQUENCE) {
		return errors.New("malformed extensions")
	}
	f.rawExts = exts
	return nil
}

// readExtensions appends the extensions of raw, the content of the
// Extensions SEQUENCE, to out. It returns the list rather than filling a
// certFields through a pointer so that out can live on the caller's stack.
func readExtensions(raw cryptobyte.String, out []extension) ([]extension, error) {
	for !raw.Empty() {
		var ext, oid, value cryptobyte.String
		if !raw.ReadASN1(&ext, cbasn1.SEQUENCE) ||
			!ext.ReadASN1(&oid, cbasn1.OBJECT_IDENTIFIER) ||
			!ext.SkipOptionalASN1(cbasn1.BOOLEAN) ||
			!ext.ReadASN1(&value, cbasn1.OCTET_STRING) {
			return out, errors.New("malformed extension")
		}
		out = append(out, extension{oid: oid, value: value})
	}
	return out, nil
}

// readAlgorithmOID reads an AlgorithmIdentifier (SEQUENCE { OID, params })
// and returns the OID's DER content; parameters are not looked at.
func readAlgorithmOID(s *cryptobyte.String) ([]byte, bool) {
	var alg, oid cryptobyte.String
	if !s.ReadASN1(&alg, cbasn1.SEQUENCE) || !alg.ReadASN1(&oid, cbasn1.OBJECT_IDENTIFIER) {
		return nil, false
	}
	return oid, true
}

// readTime reads a validity time as Unix seconds (spec section 3.12), as
// the live ingester's parser does (x509-parser 0.16 over asn1-rs 0.6):
//
//   - UTCTime is YYMMDDhhmm[ss] then Z or +hhmm/-hhmm; years 00-49 are
//     20xx and 50-99 are 19xx. Seconds may be left out only before Z (the
//     seconds field would take "+h" and fail). An offset is subtracted to
//     give UTC; its sign applies to the hours only, so -0030 is +00:30,
//     and hours over 25 or minutes over 59 are invalid.
//   - GeneralizedTime must end in Z and hold no comma (the DER checks that
//     x509-parser applies to it): YYYYMMDDhhmm[ss][.f]Z with at most three
//     fraction digits (".Z" is a zero fraction), dropped.
//
// Calendar fields must be valid (no Feb 30, no leap second).
func readTime(s *cryptobyte.String) (int64, bool) {
	var v cryptobyte.String
	var tag cbasn1.Tag
	if !s.ReadAnyASN1(&v, &tag) {
		return 0, false
	}
	var year int
	var rest []byte // after the minutes
	switch tag {
	case cbasn1.UTCTime:
		if len(v) < 10 {
			return 0, false
		}
		yy, ok := digits(v[0:2])
		if !ok {
			return 0, false
		}
		year = 1900 + yy
		if yy < 50 {
			year = 2000 + yy
		}
		rest = v[2:]
	case cbasn1.GeneralizedTime:
		if len(v) < 12 || v[len(v)-1] != 'Z' || bytes.IndexByte(v, ',') >= 0 {
			return 0, false
		}
		var ok bool
		if year, ok = digits(v[0:4]); !ok {
			return 0, false
		}
		rest = v[4:]
	default:
		return 0, false
	}
	var f [4]int // month, day, hour, minute
	for i := range f {
		n, ok := digits(rest[2*i : 2*i+2])
		if !ok {
			return 0, false
		}
		f[i] = n
	}
	rem := rest[8:]
	if len(rem) == 0 {
		return 0, false
	}
	second := 0
	if len(rem) >= 2 {
		n, ok := digits(rem[:2])
		if !ok {
			return 0, false
		}
		second, rem = n, rem[2:]
	}
	month, day, hour, minute := f[0], f[1], f[2], f[3]
	if month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59 {
		return 0, false
	}
	offset := 0 // seconds east of UTC
	if tag == cbasn1.GeneralizedTime {
		if len(rem) > 0 && rem[0] == '.' {
			frac := rem[1:]
			n := 0
			for n < len(frac) && frac[n] >= '0' && frac[n] <= '9' {
				n++
			}
			if n > 3 {
				return 0, false
			}
			rem = frac[n:]
		}
		if string(rem) != "Z" {
			return 0, false
		}
	} else {
		switch {
		case string(rem) == "Z":
		case len(rem) == 5 && (rem[0] == '+' || rem[0] == '-'):
			hh, ok1 := digits(rem[1:3])
			mm, ok2 := digits(rem[3:5])
			if !ok1 || !ok2 || hh > 25 || mm > 59 {
				return 0, false
			}
			offset = hh*3600 + mm*60
			if rem[0] == '-' && hh > 0 {
				offset = -offset
			}
		default:
			return 0, false
		}
	}
	t := time.Date(year, time.Month(month), day, hour, minute, second, 0, time.UTC)
	if t.Day() != day { // normalized: the day does not exist in that month
		return 0, false
	}
	return t.Unix() - int64(offset), true
}

// digits parses a short run of ASCII decimal digits.
func digits(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 9 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
