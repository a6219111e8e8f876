package record

import (
	"bytes"
	"unicode/utf8"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Name attribute keys, in the order of the aggregated form and of the JSON
// Name object (spec sections 3.16 and 5.3).
const (
	attrC = iota
	attrCN
	attrL
	attrO
	attrOU
	attrST
	attrEmail
	numAttrs
)

var attrLabels = [numAttrs]string{"C", "CN", "L", "O", "OU", "ST", "email_address"}

// name holds the attributes extracted from an X.501 Name (spec section 4.2).
type name struct {
	vals [numAttrs][]byte // aliasing the certificate's DER: no copy per attribute
	has  uint8            // bit k set: vals[k] was extracted (it may be "")
}

func (n *name) get(k int) ([]byte, bool) { return n.vals[k], n.has&(1<<k) != 0 }

// attrKey maps an attribute type OID (DER content) to its key, or -1.
func attrKey(oid []byte) int {
	switch {
	case bytes.Equal(oid, oidCommonName):
		return attrCN
	case bytes.Equal(oid, oidCountry):
		return attrC
	case bytes.Equal(oid, oidOrganization):
		return attrO
	case bytes.Equal(oid, oidOrgUnit):
		return attrOU
	case bytes.Equal(oid, oidLocality):
		return attrL
	case bytes.Equal(oid, oidState):
		return attrST
	case bytes.Equal(oid, oidEmailAddress):
		return attrEmail
	}
	return -1
}

// parseName extracts the attributes of a DER Name (the full SEQUENCE
// element). Every RDN and every attribute inside it is visited in encoded
// order; a value is taken as the raw content octets of whatever string type
// it has, kept only if they are valid UTF-8, and a later value of the same
// key replaces an earlier one. So BMPString values keep their zero bytes and
// a repeated attribute keeps its last value, as the live ingester's parser
// does (spec section 4.2, quirk Q18).
func parseName(der []byte) (name, bool) {
	var n name
	s := cryptobyte.String(der)
	var rdns cryptobyte.String
	if !s.ReadASN1(&rdns, cbasn1.SEQUENCE) || !s.Empty() {
		return n, false
	}
	for !rdns.Empty() {
		var set cryptobyte.String
		if !rdns.ReadASN1(&set, cbasn1.SET) {
			return n, false
		}
		for !set.Empty() {
			var atv, oid, val cryptobyte.String
			var tag cbasn1.Tag
			if !set.ReadASN1(&atv, cbasn1.SEQUENCE) ||
				!atv.ReadASN1(&oid, cbasn1.OBJECT_IDENTIFIER) ||
				!atv.ReadAnyASN1(&val, &tag) {
				return n, false
			}
			k := attrKey(oid)
			if k < 0 || !utf8.Valid(val) {
				continue
			}
			n.vals[k] = val
			n.has |= 1 << k
		}
	}
	return n, true
}

// aggregated returns the subject_aggregated / issuer_aggregated form:
// "/C=…/CN=…/L=…/O=…/OU=…/ST=…" with only the extracted attributes, values
// copied verbatim (no escaping), e-mail address never included.
func (n *name) aggregated() string {
	size := 0
	for k := range attrEmail {
		if n.has&(1<<k) != 0 {
			size += 2 + len(attrLabels[k]) + len(n.vals[k])
		}
	}
	if size == 0 {
		return ""
	}
	var buf [256]byte // most names fit: one allocation, the string
	b := buf[:0]
	for k := range attrEmail {
		if n.has&(1<<k) != 0 {
			b = append(b, '/')
			b = append(b, attrLabels[k]...)
			b = append(b, '=')
			b = append(b, n.vals[k]...)
		}
	}
	return string(b)
}

// appendJSON appends the Name object of spec section 5.3: the extracted
// keys among C, CN, L, O, OU, ST, then "aggregated" (always), then
// "email_address" if extracted.
func (n *name) appendJSON(b []byte) []byte {
	b = append(b, '{')
	for k := range attrEmail {
		if v, ok := n.get(k); ok {
			b = appendJSONString(b, attrLabels[k])
			b = append(b, ':')
			b = appendJSONString(b, v)
			b = append(b, ',')
		}
	}
	b = append(b, `"aggregated":`...)
	b = appendJSONString(b, n.aggregated())
	if v, ok := n.get(attrEmail); ok {
		b = append(b, `,"email_address":`...)
		b = appendJSONString(b, v)
	}
	return append(b, '}')
}
