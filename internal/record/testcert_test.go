package record

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"sync"
	"testing"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Hand-built certificates for the rule tables: crypto/x509 cannot create
// negative serials, BMPString names, repeated extensions and the like.
// Signatures are dummies; nothing here verifies them.

var testSPKI = sync.OnceValue(func() []byte {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		panic(err)
	}
	return spki
})

// DER contents of OIDs used by the tests.
var (
	oidECDSAWithSHA256 = []byte{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02}
)

// atv is one AttributeTypeAndValue.
type atv struct {
	oid []byte
	tag cbasn1.Tag
	val string
}

func utf8ATV(oid []byte, v string) atv { return atv{oid, cbasn1.UTF8String, v} }

// nameDER encodes a Name: one RDN per argument, each a SET of its attributes.
func nameDER(rdns ...[]atv) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for _, rdn := range rdns {
			b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
				for _, a := range rdn {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1(cbasn1.OBJECT_IDENTIFIER, func(b *cryptobyte.Builder) { b.AddBytes(a.oid) })
						b.AddASN1(a.tag, func(b *cryptobyte.Builder) { b.AddBytes([]byte(a.val)) })
					})
				}
			})
		}
	})
	return b.BytesOrPanic()
}

// rdn is a shorthand for a single-attribute RDN list.
func rdns(attrs ...atv) [][]atv {
	out := make([][]atv, len(attrs))
	for i, a := range attrs {
		out[i] = []atv{a}
	}
	return out
}

// extDER encodes an Extension with the given OID content and extnValue content.
func extDER(oid []byte, critical bool, value []byte) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.OBJECT_IDENTIFIER, func(b *cryptobyte.Builder) { b.AddBytes(oid) })
		if critical {
			b.AddASN1Boolean(true)
		}
		b.AddASN1OctetString(value)
	})
	return b.BytesOrPanic()
}

// tlv encodes one element with a single-byte tag.
func tlv(tag cbasn1.Tag, content ...[]byte) []byte {
	var b cryptobyte.Builder
	b.AddASN1(tag, func(b *cryptobyte.Builder) {
		for _, c := range content {
			b.AddBytes(c)
		}
	})
	return b.BytesOrPanic()
}

func seq(content ...[]byte) []byte { return tlv(cbasn1.SEQUENCE, content...) }

// sanDER encodes a SubjectAltName value from (context tag, content) pairs.
func sanDER(names ...generalName) []byte {
	var parts [][]byte
	for _, n := range names {
		tag := cbasn1.Tag(n.tag).ContextSpecific()
		if n.tag == 4 || n.tag == 0 {
			tag = tag.Constructed()
		}
		parts = append(parts, tlv(tag, n.val))
	}
	return seq(parts...)
}

// certSpec describes a hand-built certificate; zero fields get defaults.
type certSpec struct {
	serial              []byte // INTEGER content; default 01
	sigOID              []byte // DER content; default ecdsa-with-SHA256
	issuer, subject     []byte // full Name DER; default CN=Test Issuer / CN=test.example
	notBefore, notAfter string // UTCTime; default 250101000000Z / 260101000000Z
	exts                [][]byte
}

func (s certSpec) der() []byte {
	if s.serial == nil {
		s.serial = []byte{1}
	}
	if s.sigOID == nil {
		s.sigOID = oidECDSAWithSHA256
	}
	if s.issuer == nil {
		s.issuer = nameDER(rdns(utf8ATV(oidCommonName, "Test Issuer"))...)
	}
	if s.subject == nil {
		s.subject = nameDER(rdns(utf8ATV(oidCommonName, "test.example"))...)
	}
	if s.notBefore == "" {
		s.notBefore = "250101000000Z"
	}
	if s.notAfter == "" {
		s.notAfter = "260101000000Z"
	}
	algID := seq(tlv(cbasn1.OBJECT_IDENTIFIER, s.sigOID))
	tbs := [][]byte{
		tlv(cbasn1.Tag(0).Constructed().ContextSpecific(), tlv(cbasn1.INTEGER, []byte{2})),
		tlv(cbasn1.INTEGER, s.serial),
		algID,
		s.issuer,
		seq(tlv(cbasn1.UTCTime, []byte(s.notBefore)), tlv(cbasn1.UTCTime, []byte(s.notAfter))),
		s.subject,
		testSPKI(),
	}
	if len(s.exts) > 0 {
		tbs = append(tbs, tlv(cbasn1.Tag(3).Constructed().ContextSpecific(), seq(s.exts...)))
	}
	return seq(seq(tbs...), algID, tlv(cbasn1.BIT_STRING, []byte{0, 0x30, 0x00}))
}

// buildSpec builds the row of a hand-built certificate used as an x509 entry.
func buildSpec(t *testing.T, s certSpec) Row {
	t.Helper()
	row, err := Build(Entry{Type: X509Entry, Cert: s.der()}, Source{URL: "https://ct.example.net/log"})
	if err != nil {
		t.Fatalf("Build(%+v) error %v", s, err)
	}
	return row
}

// chainOf renders a hand-built certificate as a chain object.
func chainOf(t *testing.T, s certSpec) string {
	t.Helper()
	js, ok := chainJSON(s.der())
	if !ok {
		t.Fatalf("chainJSON(%+v) failed", s)
	}
	return js
}
