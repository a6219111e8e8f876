package ctlog

import (
	"bytes"
	"errors"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// errPrecertTBS reports a precertificate that is not the one the log
// signed: the leaf hash covers the TBSCertificate it recorded, not the
// precertificate stored beside it (extra_data, or the tile entry's
// pre_certificate), which is what the row is made of.
var errPrecertTBS = errors.New("the precertificate does not match the TBSCertificate the log signed")

// The DER of the OIDs of the CT poison extension, 1.3.6.1.4.1.11129.2.4.3
// (RFC 6962 section 3.1), and of the authority key identifier, 2.5.29.35.
var (
	poisonOID = []byte{0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0xd6, 0x79, 0x02, 0x04, 0x03}
	akiOID    = []byte{0x06, 0x03, 0x55, 0x1d, 0x23}
)

// checkPrecert checks that precert (DER) is the precertificate whose
// TBSCertificate the log signed, tbs (RFC 6962 section 3.2): its own
// TBSCertificate without the poison extension. When a Precertificate
// Signing Certificate (chain[0]) signed it, the log put the issuer and
// authority key identifier of that certificate's issuer in their place
// (as ct-go's BuildPrecertTBS does); those two are then compared with the
// signing certificate's. Both TBSCertificates are walked element by element
// on their DER, without parsing the certificate.
func (k *issuerKeys) checkPrecert(precert, tbs []byte, chain [][]byte) error {
	ptbs, ok := precertTBS(precert)
	if !ok {
		return errPrecertTBS
	}
	if withoutPoison(ptbs, tbs) {
		return nil
	}
	if len(chain) == 0 {
		return errPrecertTBS
	}
	if in := k.get(chain[0]); in.precertSigner && tbsMatches(ptbs, tbs, &in) {
		return nil
	}
	return errPrecertTBS
}

// timestampedTBS returns the TBSCertificate of a precert_entry's
// TimestampedEntry: timestamp(8) entry_type(2) issuer_key_hash(32)
// tbs_certificate<1..2^24-1> extensions.
func timestampedTBS(te []byte) ([]byte, bool) {
	if len(te) < 45 {
		return nil, false
	}
	n := int(te[42])<<16 | int(te[43])<<8 | int(te[44])
	if len(te) < 45+n {
		return nil, false
	}
	return te[45 : 45+n], true
}

// precertCheck is what is known of a precert_entry when its tile is read:
// checkPrecert's answer, or that it needs a signer not yet known.
type precertCheck uint8

const (
	precertOK      precertCheck = iota // not a precertificate, or the one the log signed
	precertBad                         // not the precertificate the log signed
	precertPending                     // signed by a certificate not known yet: check against the chain
)

// precertState is checkPrecert for a static-ct-api precert_entry whose
// TimestampedEntry is te, run while its tile is read: the chain is known
// only by its fingerprints (fps), so a Precertificate Signing Certificate
// is looked up among the issuers already seen, and the answer is
// precertPending when chain[0] was not seen yet.
func (k *issuerKeys) precertState(precert, te []byte, fps [][32]byte) precertCheck {
	ptbs, ok1 := precertTBS(precert)
	tbs, ok2 := timestampedTBS(te)
	switch {
	case !ok1 || !ok2:
		return precertBad
	case withoutPoison(ptbs, tbs):
		return precertOK
	case len(fps) == 0:
		return precertBad
	}
	in, ok := k.cachedFP(fps[0])
	switch {
	case !ok:
		return precertPending
	case in.precertSigner && tbsMatches(ptbs, tbs, &in):
		return precertOK
	}
	return precertBad
}

// precertTBS returns the TBSCertificate element of a certificate.
func precertTBS(der []byte) ([]byte, bool) {
	tag, hdr, n := derElement(der)
	if n == 0 || tag != tagSequence {
		return nil, false
	}
	cert := der[hdr:n]
	if tag, _, n = derElement(cert); n == 0 || tag != tagSequence {
		return nil, false
	}
	return cert[:n], true
}

// DER tags (ITU-T X.690) of the elements a TBSCertificate check reads.
const (
	tagSequence   = 0x30
	tagVersion    = 0xa0 // [0] EXPLICIT
	tagExtensions = 0xa3 // [3] EXPLICIT
)

// derElement reads the header of the DER element at the start of b: its
// tag, the length of its header and its whole length n, or n = 0 if b does
// not start with an element. It accepts what cryptobyte's
// ReadAnyASN1Element accepts (a tag number below 31, a length in its
// shortest form of at most four octets, within b) and is what makes the
// checks below cheap: a log holds a precertificate in about every other
// entry, and each check reads a few dozen elements, most of them short
// enough for the inlined case.
func derElement(b []byte) (tag byte, hdr, n int) {
	if len(b) >= 2 && b[1] < 0x80 && b[0]&0x1f != 0x1f && int(b[1])+2 <= len(b) {
		return b[0], 2, int(b[1]) + 2
	}
	return derLongElement(b)
}

// derLongElement is derElement of an element whose length is in long
// form, or of no element.
func derLongElement(b []byte) (tag byte, hdr, n int) {
	if len(b) < 2 || b[0]&0x1f == 0x1f || b[1] < 0x80 {
		return 0, 0, 0
	}
	k := int(b[1] & 0x7f)
	if k == 0 || k > 4 || len(b) < 2+k || b[2] == 0 {
		return 0, 0, 0
	}
	l := 0
	for _, c := range b[2 : 2+k] {
		l = l<<8 | int(c)
	}
	if l < 0x80 || l > len(b)-2-k {
		return 0, 0, 0
	}
	return b[0], 2 + k, 2 + k + l
}

// derContents returns the contents of der, a single element of the given
// tag.
func derContents(der []byte, tag byte) ([]byte, bool) {
	t, hdr, n := derElement(der)
	if n == 0 || t != tag || n != len(der) {
		return nil, false
	}
	return der[hdr:], true
}

// extensionIs reports whether an Extension element, whose contents
// derElement found after its header of hdr bytes, has the OID whose DER
// is oid.
func extensionIs(ext []byte, hdr int, oid []byte) bool {
	return bytes.HasPrefix(ext[hdr:], oid)
}

// withoutPoison is tbsMatches(ptbs, tbs, nil), the usual case: tbs must be
// ptbs without its first poison extension, byte for byte but for the
// lengths of the elements around it. It reads only ptbs's elements (each
// must parse, as in tbsMatches) and compares the rest in runs of bytes,
// where tbsMatches compares element by element.
func withoutPoison(ptbs, tbs []byte) bool {
	a, ok1 := derContents(ptbs, tagSequence)
	b, ok2 := derContents(tbs, tagSequence)
	if !ok1 || !ok2 {
		return false
	}
	// a is head, its one extensions element, then tail (nothing, in
	// X.509); b must be head, an extensions element, tail.
	extStart, extEnd := -1, -1
	for off := 0; off < len(a); {
		tag, _, n := derElement(a[off:])
		if n == 0 || tag == tagExtensions && extStart >= 0 {
			return false
		}
		if tag == tagExtensions {
			extStart, extEnd = off, off+n
		}
		off += n
	}
	if extStart < 0 || len(b) < extStart || !bytes.Equal(b[:extStart], a[:extStart]) {
		return false
	}
	tag, _, n := derElement(b[extStart:])
	if n == 0 || tag != tagExtensions || !bytes.Equal(b[extStart+n:], a[extEnd:]) {
		return false
	}
	// Inside: a's extensions are b's with a's first poison extension
	// taken out.
	xa, ok1 := derContents(a[extStart:extEnd], tagExtensions)
	xb, ok2 := derContents(b[extStart:extStart+n], tagExtensions)
	la, ok3 := derContents(xa, tagSequence)
	lb, ok4 := derContents(xb, tagSequence)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return false
	}
	poison, after := -1, -1
	for off := 0; off < len(la); {
		tag, hdr, n := derElement(la[off:])
		if n == 0 || tag != tagSequence {
			return false
		}
		if poison < 0 && extensionIs(la[off:off+n], hdr, poisonOID) {
			poison, after = off, off+n
		}
		off += n
	}
	return poison >= 0 && len(lb) == len(la)-(after-poison) &&
		bytes.Equal(lb[:poison], la[:poison]) && bytes.Equal(lb[poison:], la[after:])
}

// tbsMatches reports whether tbs is ptbs without its poison extension: the
// same elements, and the same extensions in the same order but for exactly
// one poison extension. With pre (a Precertificate Signing Certificate),
// tbs's issuer must be pre's issuer and its authority key identifier pre's
// (or absent if pre has none), whatever ptbs has there. It walks both in
// step, allocating nothing.
func tbsMatches(ptbs, tbs []byte, pre *issuerInfo) bool {
	a, ok1 := derContents(ptbs, tagSequence)
	b, ok2 := derContents(tbs, tagSequence)
	if !ok1 || !ok2 {
		return false
	}
	seenExt := false
	for pos := 0; len(a) > 0; {
		ta, _, na := derElement(a)
		if na == 0 {
			return false
		}
		tb, _, nb := derElement(b)
		if nb == 0 || ta != tb {
			return false
		}
		ea, eb := a[:na], b[:nb]
		a, b = a[na:], b[nb:]
		switch {
		case ta == tagExtensions:
			if seenExt || !sameExtensions(ea, eb, pre) {
				return false
			}
			seenExt = true
		case ta != tagVersion && pos == 2 && pre != nil: // serial, signature, issuer
			if !bytes.Equal(eb, pre.rawIssuer) {
				return false
			}
		default:
			if !bytes.Equal(ea, eb) {
				return false
			}
		}
		if ta != tagVersion {
			pos++
		}
	}
	return seenExt && len(b) == 0
}

// sameExtensions compares two [3] EXPLICIT Extensions elements: a's
// extensions must be b's with exactly one poison extension added, and
// with pre, the authority key identifiers as tbsMatches says.
func sameExtensions(a, b []byte, pre *issuerInfo) bool {
	xa, ok1 := derContents(a, tagExtensions)
	xb, ok2 := derContents(b, tagExtensions)
	la, ok3 := derContents(xa, tagSequence)
	lb, ok4 := derContents(xb, tagSequence)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return false
	}
	// next returns the next extension of l (nil at its end), skipping an
	// authority key identifier when pre is set (its value is checked
	// apart).
	var akiB []byte
	next := func(l *[]byte, isB bool) (e []byte, hdr int, ok bool) {
		for len(*l) > 0 {
			tag, hdr, n := derElement(*l)
			if n == 0 || tag != tagSequence {
				return nil, 0, false
			}
			e := (*l)[:n]
			*l = (*l)[n:]
			if pre != nil && extensionIs(e, hdr, akiOID) {
				if isB {
					akiB = e
				}
				continue
			}
			return e, hdr, true
		}
		return nil, 0, true
	}
	poisoned := false
	for {
		ea, hdr, ok := next(&la, false)
		if !ok {
			return false
		}
		if ea != nil && !poisoned && extensionIs(ea, hdr, poisonOID) {
			poisoned = true
			continue
		}
		eb, _, ok := next(&lb, true)
		if !ok || !bytes.Equal(ea, eb) {
			return false
		}
		if ea == nil {
			break
		}
	}
	if !poisoned {
		return false
	}
	if pre == nil {
		return true
	}
	if akiB == nil {
		return pre.authKeyID == nil
	}
	v, ok := extensionValue(akiB)
	return ok && pre.authKeyID != nil && bytes.Equal(v, pre.authKeyID)
}

// extensionValue returns the extnValue of an Extension element.
func extensionValue(ext []byte) ([]byte, bool) {
	c, ok := derContents(ext, tagSequence)
	in := cryptobyte.String(c)
	var oid, v cryptobyte.String
	if !ok || !in.ReadASN1(&oid, asn1.OBJECT_IDENTIFIER) {
		return nil, false
	}
	in.SkipOptionalASN1(asn1.BOOLEAN)
	if !in.ReadASN1(&v, asn1.OCTET_STRING) || !in.Empty() {
		return nil, false
	}
	return v, true
}
