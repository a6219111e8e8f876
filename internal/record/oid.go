package record

import (
	"strconv"
)

// DER contents of the OIDs the row format looks at. They are compared as
// bytes, so an OID with arcs too large for any integer type still compares
// correctly (and simply matches nothing).
var (
	// Name attributes (spec section 4.2).
	oidCountry        = []byte{0x55, 0x04, 0x06}                                     // 2.5.4.6
	oidCommonName     = []byte{0x55, 0x04, 0x03}                                     // 2.5.4.3
	oidLocality       = []byte{0x55, 0x04, 0x07}                                     // 2.5.4.7
	oidOrganization   = []byte{0x55, 0x04, 0x0a}                                     // 2.5.4.10
	oidOrgUnit        = []byte{0x55, 0x04, 0x0b}                                     // 2.5.4.11
	oidState          = []byte{0x55, 0x04, 0x08}                                     // 2.5.4.8
	oidEmailAddress   = []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01} // 1.2.840.113549.1.9.1
	oidExtAIA         = []byte{0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x01}       // 1.3.6.1.5.5.7.1.1
	oidExtAKI         = []byte{0x55, 0x1d, 0x23}                                     // 2.5.29.35
	oidExtBasicConstr = []byte{0x55, 0x1d, 0x13}                                     // 2.5.29.19
	oidExtPolicies    = []byte{0x55, 0x1d, 0x20}                                     // 2.5.29.32
	oidExtEKU         = []byte{0x55, 0x1d, 0x25}                                     // 2.5.29.37
	oidExtKeyUsage    = []byte{0x55, 0x1d, 0x0f}                                     // 2.5.29.15
	oidExtSAN         = []byte{0x55, 0x1d, 0x11}                                     // 2.5.29.17
	oidExtSKI         = []byte{0x55, 0x1d, 0x0e}                                     // 2.5.29.14
)

// ekuNames lists the extended key usages the chain JSON shows, in the
// fixed order it shows them (spec section 4.4); any other purpose is dropped.
var ekuNames = [...]struct {
	oid  string
	name string
}{
	{"\x2b\x06\x01\x05\x05\x07\x03\x01", "serverAuth"},      // 1.3.6.1.5.5.7.3.1
	{"\x2b\x06\x01\x05\x05\x07\x03\x02", "clientAuth"},      // 1.3.6.1.5.5.7.3.2
	{"\x2b\x06\x01\x05\x05\x07\x03\x03", "codeSigning"},     // 1.3.6.1.5.5.7.3.3
	{"\x2b\x06\x01\x05\x05\x07\x03\x04", "emailProtection"}, // 1.3.6.1.5.5.7.3.4
	{"\x2b\x06\x01\x05\x05\x07\x03\x08", "timeStamping"},    // 1.3.6.1.5.5.7.3.8
	{"\x2b\x06\x01\x05\x05\x07\x03\x09", "OCSPSigning"},     // 1.3.6.1.5.5.7.3.9
	{"\x55\x1d\x25\x00", "anyExtendedKeyUsage"},             // 2.5.29.37.0
}

// signatureAlgorithms maps the DER content of an outer signatureAlgorithm
// OID to the signature_algorithm column (spec section 3.15). The
// inconsistent word order ("sha256, rsa" but "ecdsa, sha256") is the
// format's. Any other OID is "unknown".
var signatureAlgorithms = map[string]string{
	"\x2a\x86\x48\x86\xf7\x0d\x01\x01\x02": "md2, rsa",        // 1.2.840.113549.1.1.2
	"\x2a\x86\x48\x86\xf7\x0d\x01\x01\x04": "md5, rsa",        // 1.2.840.113549.1.1.4
	"\x2a\x86\x48\x86\xf7\x0d\x01\x01\x05": "sha1, rsa",       // 1.2.840.113549.1.1.5
	"\x2a\x86\x48\x86\xf7\x0d\x01\x01\x0b": "sha256, rsa",     // 1.2.840.113549.1.1.11
	"\x2a\x86\x48\x86\xf7\x0d\x01\x01\x0c": "sha384, rsa",     // 1.2.840.113549.1.1.12
	"\x2a\x86\x48\x86\xf7\x0d\x01\x01\x0d": "sha512, rsa",     // 1.2.840.113549.1.1.13
	"\x2a\x86\x48\x86\xf7\x0d\x01\x01\x0a": "sha256, rsa-pss", // 1.2.840.113549.1.1.10
	"\x2a\x86\x48\xce\x38\x04\x03":         "dsa, sha1",       // 1.2.840.10040.4.3
	"\x60\x86\x48\x01\x65\x03\x04\x03\x02": "dsa, sha256",     // 2.16.840.1.101.3.4.3.2
	"\x2a\x86\x48\xce\x3d\x04\x01":         "ecdsa, sha1",     // 1.2.840.10045.4.1
	"\x2a\x86\x48\xce\x3d\x04\x03\x02":     "ecdsa, sha256",   // 1.2.840.10045.4.3.2
	"\x2a\x86\x48\xce\x3d\x04\x03\x03":     "ecdsa, sha384",   // 1.2.840.10045.4.3.3
	"\x2a\x86\x48\xce\x3d\x04\x03\x04":     "ecdsa, sha512",   // 1.2.840.10045.4.3.4
	"\x2b\x65\x70":                         "ed25519",         // 1.3.101.112
}

// signatureAlgorithm names the algorithm whose OID has DER content oid.
func signatureAlgorithm(oid []byte) string {
	if s, ok := signatureAlgorithms[string(oid)]; ok {
		return s
	}
	return "unknown"
}

// appendOID appends the text form of an OID given by its DER content, as the
// live ingester's ASN.1 library (asn1-rs 0.6 without bigint) prints it
// (spec section 4.4):
//   - when no sub-identifier after the first content byte spans more than 9
//     bytes (63 bits), dotted decimal; the first two arcs come from the first
//     content byte alone (byte/40, byte%40), as that library computes them;
//   - otherwise the content bytes as lowercase hex pairs separated by single
//     spaces, e.g. "69 82 …" for a 2.25.<uuid> OID.
func appendOID(b []byte, oid []byte) []byte {
	if len(oid) == 0 {
		return b
	}
	run := 0
	for _, c := range oid[1:] {
		run++
		if c&0x80 == 0 {
			if run > 9 {
				return appendSpacedHex(b, oid)
			}
			run = 0
		}
	}
	b = strconv.AppendUint(b, uint64(oid[0]/40), 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, uint64(oid[0]%40), 10)
	var v uint64
	inArc := false
	for _, c := range oid[1:] {
		v = v<<7 | uint64(c&0x7f)
		inArc = true
		if c&0x80 == 0 {
			b = append(b, '.')
			b = strconv.AppendUint(b, v, 10)
			v, inArc = 0, false
		}
	}
	if inArc { // an unterminated last sub-identifier is still printed
		b = append(b, '.')
		b = strconv.AppendUint(b, v, 10)
	}
	return b
}

func appendSpacedHex(b []byte, data []byte) []byte {
	const digits = "0123456789abcdef"
	for i, c := range data {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, digits[c>>4], digits[c&0x0f])
	}
	return b
}
