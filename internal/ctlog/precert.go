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
	s := cryptobyte.String(der)
	var cert cryptobyte.String
	var tbs cryptobyte.String
	if !s.ReadASN1(&cert, asn1.SEQUENCE) || !cert.ReadASN1Element(&tbs, asn1.SEQUENCE) {
		return nil, false
	}
	return tbs, true
}

// withoutPoison is tbsMatches(ptbs, tbs, nil), the usual case: tbs must be
// ptbs without its first poison extension, byte for byte but for the
// lengths of the elements around it. It walks only ptbs's elements (each
// must parse, as in tbsMatches) and compares the rest in three runs of
// bytes, where tbsMatches compares element by element.
func withoutPoison(ptbs, tbs []byte) bool {
	a, ok1 := inside(ptbs, asn1.SEQUENCE)
	b, ok2 := inside(tbs, asn1.SEQUENCE)
	if !ok1 || !ok2 {
		return false
	}
	extTag := asn1.Tag(3).ContextSpecific().Constructed()
	// a is head, its one extensions element, then tail (nothing, in
	// X.509); b must be head, an extensions element, tail.
	var head, tail []byte
	var extA, extB cryptobyte.String
	for rest := a; extA == nil; {
		var e cryptobyte.String
		var tag asn1.Tag
		if !rest.ReadAnyASN1Element(&e, &tag) {
			return false
		}
		if tag == extTag {
			head, extA, tail = a[:len(a)-len(rest)-len(e)], e, rest
		}
	}
	for rest := cryptobyte.String(tail); !rest.Empty(); {
		var e cryptobyte.String
		var tag asn1.Tag
		if !rest.ReadAnyASN1Element(&e, &tag) || tag == extTag {
			return false
		}
	}
	if len(b) < len(head) || !bytes.Equal(b[:len(head)], head) {
		return false
	}
	rest := cryptobyte.String(b[len(head):])
	var tag asn1.Tag
	if !rest.ReadAnyASN1Element(&extB, &tag) || tag != extTag || !bytes.Equal(rest, tail) {
		return false
	}
	// Inside: a's extensions are b's with a's first poison extension
	// taken out.
	xa, ok1 := inside(extA, extTag)
	xb, ok2 := inside(extB, extTag)
	var la, lb cryptobyte.String
	if !ok1 || !ok2 || !xa.ReadASN1(&la, asn1.SEQUENCE) || !xb.ReadASN1(&lb, asn1.SEQUENCE) || !xa.Empty() || !xb.Empty() {
		return false
	}
	poison, after := -1, -1
	for rest := la; !rest.Empty(); {
		var e cryptobyte.String
		if !rest.ReadASN1Element(&e, asn1.SEQUENCE) {
			return false
		}
		if poison < 0 && extensionIs(e, poisonOID) {
			after = len(la) - len(rest)
			poison = after - len(e)
		}
	}
	return poison >= 0 && len(lb) == len(la)-(after-poison) &&
		bytes.Equal(lb[:poison], la[:poison]) && bytes.Equal(lb[poison:], la[after:])
}

// tbsMatches reports whether tbs is ptbs without its poison extension: the
// same elements, and the same extensions in the same order but for exactly
// one poison extension. With pre (a Precertificate Signing Certificate),
// tbs's issuer must be pre's issuer and its authority key identifier pre's
// (or absent if pre has none), whatever ptbs has there. It walks both in
// step, allocating nothing: a log holds a precertificate in every other
// entry or so.
func tbsMatches(ptbs, tbs []byte, pre *issuerInfo) bool {
	a, ok1 := inside(ptbs, asn1.SEQUENCE)
	b, ok2 := inside(tbs, asn1.SEQUENCE)
	if !ok1 || !ok2 {
		return false
	}
	versionTag := asn1.Tag(0).ContextSpecific().Constructed()
	extTag := asn1.Tag(3).ContextSpecific().Constructed()
	seenExt := false
	for pos := 0; !a.Empty(); {
		var ea, eb cryptobyte.String
		var ta, tb asn1.Tag
		if !a.ReadAnyASN1Element(&ea, &ta) || !b.ReadAnyASN1Element(&eb, &tb) || ta != tb {
			return false
		}
		switch {
		case ta == extTag:
			if seenExt || !sameExtensions(ea, eb, pre) {
				return false
			}
			seenExt = true
		case ta != versionTag && pos == 2 && pre != nil: // serial, signature, issuer
			if !bytes.Equal(eb, pre.rawIssuer) {
				return false
			}
		default:
			if !bytes.Equal(ea, eb) {
				return false
			}
		}
		if ta != versionTag {
			pos++
		}
	}
	return seenExt && b.Empty()
}

// sameExtensions compares two [3] EXPLICIT Extensions elements: a's
// extensions must be b's with exactly one poison extension added, and
// with pre, the authority key identifiers as tbsMatches says.
func sameExtensions(a, b []byte, pre *issuerInfo) bool {
	extTag := asn1.Tag(3).ContextSpecific().Constructed()
	xa, ok1 := inside(a, extTag)
	xb, ok2 := inside(b, extTag)
	var la, lb cryptobyte.String
	if !ok1 || !ok2 || !xa.ReadASN1(&la, asn1.SEQUENCE) || !xb.ReadASN1(&lb, asn1.SEQUENCE) || !xa.Empty() || !xb.Empty() {
		return false
	}
	// next returns the next extension of l, skipping an authority key
	// identifier when pre is set (its value is checked apart).
	var akiB cryptobyte.String
	next := func(l *cryptobyte.String, isB bool) (cryptobyte.String, bool) {
		for !l.Empty() {
			var e cryptobyte.String
			if !l.ReadASN1Element(&e, asn1.SEQUENCE) {
				return nil, false
			}
			if pre != nil && extensionIs(e, akiOID) {
				if isB {
					akiB = e
				}
				continue
			}
			return e, true
		}
		return nil, true
	}
	poisoned := false
	for {
		ea, ok := next(&la, false)
		if !ok {
			return false
		}
		if ea != nil && !poisoned && extensionIs(ea, poisonOID) {
			poisoned = true
			continue
		}
		eb, ok := next(&lb, true)
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

// inside returns the contents of der, a single element of the given tag.
func inside(der []byte, tag asn1.Tag) (cryptobyte.String, bool) {
	s := cryptobyte.String(der)
	var in cryptobyte.String
	if !s.ReadASN1(&in, tag) || !s.Empty() {
		return nil, false
	}
	return in, true
}

// extensionIs reports whether an Extension element has the OID whose DER
// is oid.
func extensionIs(ext, oid []byte) bool {
	in, ok := inside(ext, asn1.SEQUENCE)
	return ok && bytes.HasPrefix(in, oid)
}

// extensionValue returns the extnValue of an Extension element.
func extensionValue(ext []byte) ([]byte, bool) {
	in, ok := inside(ext, asn1.SEQUENCE)
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
