package record

import (
	"testing"
	"time"

	ctx509 "github.com/google/certificate-transparency-go/x509"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

func TestReadTime(t *testing.T) {
	utc := func(y int, mo time.Month, d, h, mi, s int) int64 {
		return time.Date(y, mo, d, h, mi, s, 0, time.UTC).Unix()
	}
	tests := []struct {
		tag    cbasn1.Tag
		in     string
		want   int64
		wantOK bool
	}{
		{cbasn1.UTCTime, "130220133451Z", 1361367291, true},
		{cbasn1.UTCTime, "490101000000Z", utc(2049, 1, 1, 0, 0, 0), true},
		{cbasn1.UTCTime, "500101000000Z", utc(1950, 1, 1, 0, 0, 0), true}, // negative
		{cbasn1.UTCTime, "991231235959Z", utc(1999, 12, 31, 23, 59, 59), true},
		{cbasn1.UTCTime, "240229000000Z", utc(2024, 2, 29, 0, 0, 0), true},
		{cbasn1.UTCTime, "230229000000Z", 0, false}, // no Feb 29 in 2023
		{cbasn1.UTCTime, "1302201334Z", 0, false},   // seconds missing
		{cbasn1.UTCTime, "130220133451+0000", 0, false},
		{cbasn1.UTCTime, "130220133460Z", 0, false},
		{cbasn1.UTCTime, "131320133451Z", 0, false},
		{cbasn1.UTCTime, "13022013345xZ", 0, false},
		{cbasn1.GeneralizedTime, "20500101000000Z", utc(2050, 1, 1, 0, 0, 0), true},
		{cbasn1.GeneralizedTime, "99991231235959Z", utc(9999, 12, 31, 23, 59, 59), true},
		{cbasn1.GeneralizedTime, "19691231235959.999Z", -1, true}, // fraction dropped
		{cbasn1.GeneralizedTime, "20250101000000.Z", 0, false},
		{cbasn1.GeneralizedTime, "20250101000000", 0, false},
		{cbasn1.OCTET_STRING, "130220133451Z", 0, false},
	}
	for _, tt := range tests {
		var b cryptobyte.Builder
		b.AddASN1(tt.tag, func(b *cryptobyte.Builder) { b.AddBytes([]byte(tt.in)) })
		s := cryptobyte.String(b.BytesOrPanic())
		got, ok := readTime(&s)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("readTime(%v %q) = %d, %t, want %d, %t", tt.tag, tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

// TestBuildAcceptsWhatCTGoRefuses documents why ct-go's x509 parser is not
// the acceptance gate: it refuses certificates the live ingester turns into
// rows (spec quirk Q21), such as a 2.25.<uuid> policy OID or a keyUsage
// that does not decode.
func TestBuildAcceptsWhatCTGoRefuses(t *testing.T) {
	uuidPolicy := []byte{0x69, 0x82, 0xe6, 0xd1, 0xa4, 0xb8, 0xf0, 0x8c, 0xb3, 0x9c, 0x87, 0x71}
	tests := []struct {
		name string
		spec certSpec
	}{
		{"2.25 policy OID", certSpec{exts: [][]byte{extDER(oidExtPolicies, false, seq(seq(tlv(cbasn1.OBJECT_IDENTIFIER, uuidPolicy))))}}},
		{"undecodable keyUsage", certSpec{exts: [][]byte{extDER(oidExtKeyUsage, true, []byte{0x03})}}},
		{"2.25 signature OID", certSpec{sigOID: uuidPolicy}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			der := tt.spec.der()
			if _, err := ctx509.ParseCertificate(der); !ctx509.IsFatal(err) {
				t.Errorf("ct-go x509.ParseCertificate() error = %v, want a fatal error", err)
			}
			if _, err := Build(Entry{Type: X509Entry, Cert: der}, Source{}); err != nil {
				t.Errorf("Build() error %v, want a row", err)
			}
		})
	}
}
