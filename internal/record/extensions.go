package record

import (
	"bytes"
	"net/netip"
	"slices"
	"unicode/utf8"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// extension is one raw certificate extension.
type extension struct {
	oid   []byte // DER content of extnID
	value []byte // content of extnValue (the OCTET STRING)
}

// Keys of the chain JSON Extensions object, in their output order (spec
// section 5.2). ctlSignedCertificateTimestamp and ctlPoisonByte are never
// produced (spec section 4.4, quirk Q17), so they have no slot.
const (
	extAIA = iota
	extAKI
	extBasicConstraints
	extPolicies
	extEKU
	extKeyUsage
	extSAN
	extSKI
	numExtKeys
)

var extLabels = [numExtKeys]string{
	"authorityInfoAccess", "authorityKeyIdentifier", "basicConstraints",
	"certificatePolicies", "extendedKeyUsage", "keyUsage", "subjectAltName",
	"subjectKeyIdentifier",
}

// extSummary is what a row needs from a certificate's extensions.
type extSummary struct {
	dnsNames []string // SAN dNSNames, in order, from every SAN extension that decodes
	isCA     bool     // exactly one basicConstraints, decodable, with cA TRUE

	// Chain JSON values (spec section 4.4), filled only when asked for.
	vals [numExtKeys]string
	has  uint16 // bit k set: vals[k] is present
}

// summarizeExtensions walks exts in order. With full set it also formats
// the values of the chain JSON Extensions object. An extension whose value
// does not decode is ignored as a whole; a later occurrence of the same
// extension replaces an earlier one, except subjectAltName, whose parts
// accumulate.
func summarizeExtensions(exts []extension, full bool) extSummary {
	var s extSummary
	bcCount, bcCA := 0, false
	var san []byte
	var gnBuf [maxStackNames]generalName
	for _, e := range exts {
		switch {
		case bytes.Equal(e.oid, oidExtSAN):
			names, ok := parseGeneralNames(e.value, gnBuf[:0])
			if !ok {
				continue
			}
			dns := 0
			for _, gn := range names {
				if gn.tag == 2 {
					dns++
				}
			}
			s.dnsNames = slices.Grow(s.dnsNames, dns)
			for _, gn := range names {
				if gn.tag == 2 {
					s.dnsNames = append(s.dnsNames, string(gn.val))
				}
				if full {
					san = appendSANPart(san, gn)
				}
			}
		case bytes.Equal(e.oid, oidExtBasicConstr):
			bcCount++
			ca, ok := parseBasicConstraints(e.value)
			bcCA = ok && ca
			if full && ok {
				v := "CA:FALSE"
				if ca {
					v = "CA:TRUE"
				}
				s.set(extBasicConstraints, v)
			}
		case !full:
		case bytes.Equal(e.oid, oidExtAIA):
			if v, ok := formatAIA(e.value); ok && v != "" {
				s.set(extAIA, v)
			}
		case bytes.Equal(e.oid, oidExtAKI):
			if v, ok := formatAKI(e.value); ok {
				s.set(extAKI, v)
			}
		case bytes.Equal(e.oid, oidExtPolicies):
			if v, ok := formatPolicies(e.value); ok {
				s.set(extPolicies, v)
			}
		case bytes.Equal(e.oid, oidExtEKU):
			if v, ok := formatEKU(e.value); ok {
				s.set(extEKU, v)
			}
		case bytes.Equal(e.oid, oidExtKeyUsage):
			if v, ok := formatKeyUsage(e.value); ok {
				s.set(extKeyUsage, v)
			}
		case bytes.Equal(e.oid, oidExtSKI):
			if v, ok := formatSKI(e.value); ok {
				s.set(extSKI, v)
			}
		}
	}
	s.isCA = bcCount == 1 && bcCA
	if len(san) > 0 {
		s.set(extSAN, string(san))
	}
	return s
}

func (s *extSummary) set(k int, v string) {
	s.vals[k] = v
	s.has |= 1 << k
}

// appendJSON appends the Extensions object (spec section 5.2).
func (s *extSummary) appendJSON(b []byte) []byte {
	b = append(b, '{')
	first := true
	for k := range numExtKeys {
		if s.has&(1<<k) == 0 {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendJSONString(b, extLabels[k])
		b = append(b, ':')
		b = appendJSONString(b, s.vals[k])
	}
	return append(b, '}')
}

// generalName is one decoded GeneralName: its context tag number and content.
type generalName struct {
	tag uint8
	val []byte
}

// maxStackNames is the size of the GeneralName array summarizeExtensions
// keeps on its stack for parseGeneralNames; longer SAN lists grow on the
// heap.
const maxStackNames = 16

// parseGeneralNames decodes a GeneralNames SEQUENCE, appending to names. It
// fails when any element fails to decode, since the live ingester's parser
// then drops the whole extension (spec section 4.4).
func parseGeneralNames(der []byte, names []generalName) ([]generalName, bool) {
	s := cryptobyte.String(der)
	var seq cryptobyte.String
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) {
		return nil, false
	}
	for !seq.Empty() {
		gn, ok := readGeneralName(&seq)
		if !ok {
			return nil, false
		}
		names = append(names, gn)
	}
	return names, true
}

// readGeneralName reads one GeneralName and checks what x509-parser checks:
// a context-specific tag 0..8; UTF-8 text for rfc822Name, dNSName and URI
// (IA5String in RFC 5280, but UTF-8 is accepted); an OID first in an
// otherName; a well-formed Name in a directoryName.
func readGeneralName(s *cryptobyte.String) (generalName, bool) {
	var val cryptobyte.String
	var tag cbasn1.Tag
	if !s.ReadAnyASN1(&val, &tag) || tag&0xc0 != 0x80 {
		return generalName{}, false
	}
	n := uint8(tag & 0x1f)
	switch n {
	case 0: // otherName: type-id OID, [0] value
		var oid cryptobyte.String
		if !val.ReadASN1(&oid, cbasn1.OBJECT_IDENTIFIER) {
			return generalName{}, false
		}
	case 1, 2, 6: // rfc822Name, dNSName, uniformResourceIdentifier
		if !utf8.Valid(val) {
			return generalName{}, false
		}
	case 4: // directoryName
		if _, ok := parseName(val); !ok {
			return generalName{}, false
		}
	case 3, 5, 7, 8: // x400Address, ediPartyName, iPAddress, registeredID
	default:
		return generalName{}, false
	}
	return generalName{tag: n, val: val}, true
}

// appendSANPart appends the chain JSON text of one SAN entry, if it has one:
// "DNS:", "email:" or "IP Address:" (4 or 16 bytes; IPv6 in RFC 5952 form
// via net/netip, which writes IPv4-mapped addresses as ::ffff:a.b.c.d).
func appendSANPart(b []byte, gn generalName) []byte {
	var prefix string
	switch {
	case gn.tag == 2:
		prefix = "DNS:"
	case gn.tag == 1:
		prefix = "email:"
	case gn.tag == 7 && (len(gn.val) == 4 || len(gn.val) == 16):
		prefix = "IP Address:"
	default:
		return b
	}
	if len(b) > 0 {
		b = append(b, ", "...)
	}
	b = append(b, prefix...)
	if gn.tag != 7 {
		return append(b, gn.val...)
	}
	if len(gn.val) == 4 {
		return netip.AddrFrom4([4]byte(gn.val)).AppendTo(b)
	}
	return netip.AddrFrom16([16]byte(gn.val)).AppendTo(b)
}

// parseBasicConstraints decodes BasicConstraints as x509-parser does: a
// SEQUENCE of at most two elements, cA (BOOLEAN, DER 00/FF) and
// pathLenConstraint (INTEGER fitting in 32 unsigned bits), either one alone.
func parseBasicConstraints(der []byte) (ca bool, ok bool) {
	s := cryptobyte.String(der)
	var seq cryptobyte.String
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) {
		return false, false
	}
	var elems [2]struct {
		tag cbasn1.Tag
		val cryptobyte.String
	}
	n := 0
	for !seq.Empty() {
		if n == 2 {
			return false, false
		}
		if !seq.ReadAnyASN1(&elems[n].val, &elems[n].tag) {
			return false, false
		}
		n++
	}
	isBool := func(i int) (bool, bool) {
		v := elems[i].val
		if elems[i].tag != cbasn1.BOOLEAN || len(v) != 1 || (v[0] != 0 && v[0] != 0xff) {
			return false, false
		}
		return v[0] == 0xff, true
	}
	isU32 := func(i int) bool {
		v := elems[i].val
		if elems[i].tag != cbasn1.INTEGER || len(v) == 0 || v[0]&0x80 != 0 {
			return false
		}
		for len(v) > 1 && v[0] == 0 {
			v = v[1:]
		}
		return len(v) <= 4
	}
	switch n {
	case 0:
		return false, true
	case 1:
		if b, ok := isBool(0); ok {
			return b, true
		}
		return false, isU32(0)
	default:
		b, ok := isBool(0)
		return b, ok && isU32(1)
	}
}

// formatAIA lists the URI access locations: "URI:a, URI:b" (OCSP and
// caIssuers alike, in encoded order). "" when there is none: the key is then
// absent, and an earlier occurrence's value stays.
func formatAIA(der []byte) (string, bool) {
	s := cryptobyte.String(der)
	var seq cryptobyte.String
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) {
		return "", false
	}
	var b []byte
	for !seq.Empty() {
		var ad, method cryptobyte.String
		if !seq.ReadASN1(&ad, cbasn1.SEQUENCE) || !ad.ReadASN1(&method, cbasn1.OBJECT_IDENTIFIER) {
			return "", false
		}
		gn, ok := readGeneralName(&ad)
		if !ok {
			return "", false
		}
		if gn.tag == 6 {
			if len(b) > 0 {
				b = append(b, ", "...)
			}
			b = append(b, "URI:"...)
			b = append(b, gn.val...)
		}
	}
	return string(b), true
}

// formatAKI returns "keyid:" and the keyIdentifier in lowercase colon hex;
// ok is false when the extension does not decode or has no keyIdentifier
// (the key is then absent; an earlier occurrence's value stays). The optional
// authorityCertIssuer and serial are not looked at, as x509-parser reads
// them leniently and the format does not show them.
func formatAKI(der []byte) (string, bool) {
	s := cryptobyte.String(der)
	var seq, keyID cryptobyte.String
	var tag cbasn1.Tag
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !seq.ReadAnyASN1(&keyID, &tag) || tag&0xdf != 0x80 { // [0], either form
		return "", false
	}
	return keyIDString(keyID), true
}

// formatSKI returns "keyid:" and the SubjectKeyIdentifier in lowercase colon hex.
func formatSKI(der []byte) (string, bool) {
	s := cryptobyte.String(der)
	var id cryptobyte.String
	if !s.ReadASN1(&id, cbasn1.OCTET_STRING) {
		return "", false
	}
	return keyIDString(id), true
}

func keyIDString(id []byte) string {
	const digits = "0123456789abcdef"
	b := make([]byte, 0, len("keyid:")+3*len(id))
	b = append(b, "keyid:"...)
	for i, c := range id {
		if i > 0 {
			b = append(b, ':')
		}
		b = append(b, digits[c>>4], digits[c&0xf])
	}
	return string(b)
}

// formatPolicies returns "Policy: <oid>\n" for each policy, in order;
// qualifiers are dropped.
func formatPolicies(der []byte) (string, bool) {
	s := cryptobyte.String(der)
	var seq cryptobyte.String
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) {
		return "", false
	}
	var b []byte
	for !seq.Empty() {
		var pi, oid cryptobyte.String
		if !seq.ReadASN1(&pi, cbasn1.SEQUENCE) || !pi.ReadASN1(&oid, cbasn1.OBJECT_IDENTIFIER) {
			return "", false
		}
		b = append(b, "Policy: "...)
		b = appendOID(b, oid)
		b = append(b, '\n')
	}
	return string(b), true
}

// formatEKU lists the known purposes in their fixed order, joined by ", ".
func formatEKU(der []byte) (string, bool) {
	s := cryptobyte.String(der)
	var seq cryptobyte.String
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) {
		return "", false
	}
	var seen [len(ekuNames)]bool
	for !seq.Empty() {
		var oid cryptobyte.String
		if !seq.ReadASN1(&oid, cbasn1.OBJECT_IDENTIFIER) {
			return "", false
		}
		for i := range ekuNames {
			if string(oid) == ekuNames[i].oid {
				seen[i] = true
			}
		}
	}
	var b []byte
	for i, ok := range seen {
		if ok {
			if len(b) > 0 {
				b = append(b, ", "...)
			}
			b = append(b, ekuNames[i].name...)
		}
	}
	return string(b), true
}

var keyUsageNames = [9]string{
	"Digital Signature", "Content Commitment", "Key Encipherment",
	"Data Encipherment", "Key Agreement", "Certificate Signing",
	"CRL Signing", "Encipher Only", "Decipher Only",
}

// formatKeyUsage lists the set bits 0..8 in order, joined by ", ". Like
// x509-parser, it reads the bits from the first two bytes of the BIT STRING.
func formatKeyUsage(der []byte) (string, bool) {
	s := cryptobyte.String(der)
	var bits cryptobyte.String
	if !s.ReadASN1(&bits, cbasn1.BIT_STRING) || len(bits) == 0 || bits[0] > 7 {
		return "", false
	}
	data := bits[1:]
	var flags uint16
	for i := 0; i < 2 && i < len(data); i++ {
		for j := range 8 {
			if data[i]&(0x80>>j) != 0 {
				flags |= 1 << (8*i + j)
			}
		}
	}
	var b []byte
	for i, n := range keyUsageNames {
		if flags&(1<<i) != 0 {
			if len(b) > 0 {
				b = append(b, ", "...)
			}
			b = append(b, n...)
		}
	}
	return string(b), true
}
