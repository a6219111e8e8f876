package record

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	ctx509 "github.com/google/certificate-transparency-go/x509"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

func TestSerialNumber(t *testing.T) {
	tests := []struct {
		content []byte
		want    string
	}{
		{[]byte{0x0b, 0x67, 0x71}, "0B6771"},
		{[]byte{0x00, 0x80}, "80"},
		{[]byte{0x00, 0x00, 0x01}, "01"}, // not DER, but what the bytes say
		{[]byte{0xff}, "FF"},             // -1
		{[]byte{0xff, 0x01}, "FF01"},     // -255
		{[]byte{0x80, 0x00}, "8000"},     // -32768
		{[]byte{0x00}, "00"},
		{[]byte{0x00, 0x00}, "00"},
		{[]byte{0x14, 0x84, 0xf9, 0x05, 0x00, 0x00, 0x00, 0x00, 0x7d, 0x3c}, "1484F905000000007D3C"},
	}
	for _, tt := range tests {
		if got := serialHex(tt.content); got != tt.want {
			t.Errorf("serialHex(% x) = %q, want %q", tt.content, got, tt.want)
		}
		// Through Build, where ct-go's lenient parser accepts the certificate.
		row, err := Build(Entry{Type: X509Entry, Cert: certSpec{serial: tt.content}.der()}, Source{})
		if err != nil {
			t.Logf("Build() with serial % x refused: %v", tt.content, err)
			continue
		}
		if row.SerialNumber != tt.want {
			t.Errorf("Build() serial_number for % x = %q, want %q", tt.content, row.SerialNumber, tt.want)
		}
	}
	if got := serialHex(nil); got != "00" {
		t.Errorf("serialHex(empty) = %q, want 00", got)
	}
	// Negative serials must yield rows: crypto/x509 refuses them, ct-go does not.
	for _, c := range [][]byte{{0xff}, {0xff, 0x01}} {
		if _, err := Build(Entry{Type: X509Entry, Cert: certSpec{serial: c}.der()}, Source{}); err != nil {
			t.Errorf("Build() with negative serial % x error %v, want a row", c, err)
		}
	}
}

func TestSignatureAlgorithm(t *testing.T) {
	tests := []struct {
		oid  []byte
		want string
	}{
		{[]byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x02}, "md2, rsa"},
		{[]byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x04}, "md5, rsa"},
		{[]byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05}, "sha1, rsa"},
		{[]byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b}, "sha256, rsa"},
		{[]byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c}, "sha384, rsa"},
		{[]byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d}, "sha512, rsa"},
		{[]byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a}, "sha256, rsa-pss"},
		{[]byte{0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x03}, "dsa, sha1"},
		{[]byte{0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x02}, "dsa, sha256"},
		{[]byte{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01}, "ecdsa, sha1"},
		{[]byte{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02}, "ecdsa, sha256"},
		{[]byte{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03}, "ecdsa, sha384"},
		{[]byte{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04}, "ecdsa, sha512"},
		{[]byte{0x2b, 0x65, 0x70}, "ed25519"},
		{[]byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0e}, "unknown"}, // sha224WithRSA
		{[]byte{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x01}, "unknown"},       // ecdsa-with-SHA224
		{[]byte{0x2b, 0x65, 0x71}, "unknown"},                                     // Ed448
		{[]byte{0x69, 0x82, 0xe6, 0xd1, 0xa4, 0xb8, 0xf0, 0x8c, 0xb3, 0x9c, 0x87, 0x71}, "unknown"},
	}
	for _, tt := range tests {
		row := buildSpec(t, certSpec{sigOID: tt.oid})
		if row.SignatureAlgorithm != tt.want {
			t.Errorf("signature_algorithm(% x) = %q, want %q", tt.oid, row.SignatureAlgorithm, tt.want)
		}
	}
}

// bmp encodes s as a BMPString (UTF-16BE).
func bmp(s string) string {
	var b []byte
	for _, r := range s {
		b = append(b, byte(r>>8), byte(r))
	}
	return string(b)
}

func TestNames(t *testing.T) {
	cn := func(v string) atv { return utf8ATV(oidCommonName, v) }
	o := func(v string) atv { return utf8ATV(oidOrganization, v) }
	sanExt := extDER(oidExtSAN, false, sanDER(generalName{2, []byte("a.example")}, generalName{2, []byte("b.example")}))
	caExt := extDER(oidExtBasicConstr, true, seq(tlv(cbasn1.BOOLEAN, []byte{0xff})))
	tests := []struct {
		name        string
		subject     []byte
		exts        [][]byte
		wantAgg     string
		wantJSON    string // subject Name object
		wantDomains string
	}{
		{"all six in fixed order", nameDER(rdns(
			utf8ATV(oidState, "California"), o("Google Inc"), utf8ATV(oidCountry, "US"),
			utf8ATV(oidEmailAddress, "a@b.example"), utf8ATV(oidOrgUnit, "IT"),
			utf8ATV(oidLocality, "Mountain View"), cn("mail.google.com"))...), nil,
			"/C=US/CN=mail.google.com/L=Mountain View/O=Google Inc/OU=IT/ST=California",
			`{"C":"US","CN":"mail.google.com","L":"Mountain View","O":"Google Inc","OU":"IT","ST":"California","aggregated":"/C=US/CN=mail.google.com/L=Mountain View/O=Google Inc/OU=IT/ST=California","email_address":"a@b.example"}`,
			`["mail.google.com"]`},
		{"BMPString keeps zero bytes", nameDER(rdns(atv{oidCommonName, cbasn1.Tag(30), bmp("Te")})...), nil,
			"/CN=\x00T\x00e", `{"CN":"\u0000T\u0000e","aggregated":"/CN=\u0000T\u0000e"}`, "[\"\\x00T\\x00e\"]"},
		{"repeated RDNs: last wins", nameDER(rdns(o("First"), cn("x.example"), o("Second"))...), nil,
			"/CN=x.example/O=Second", `{"CN":"x.example","O":"Second","aggregated":"/CN=x.example/O=Second"}`, `["x.example"]`},
		{"multi-valued RDN: last wins", nameDER([]atv{cn("one.example"), cn("two.example")}), nil,
			"/CN=two.example", `{"CN":"two.example","aggregated":"/CN=two.example"}`, `["two.example"]`},
		{"non-UTF-8 value dropped and does not overwrite", nameDER(rdns(o("Good"), atv{oidOrganization, cbasn1.Tag(20), "Caf\xe9"})...), nil,
			"/O=Good", `{"O":"Good","aggregated":"/O=Good"}`, `[]`},
		{"empty CN kept in name, not a domain", nameDER(rdns(cn(""))...), [][]byte{sanExt},
			"/CN=", `{"CN":"","aggregated":"/CN="}`, `["a.example" "b.example"]`},
		{"empty name", nameDER(), nil, "", `{"aggregated":""}`, `[]`},
		{"slash and equals verbatim", nameDER(rdns(o("A/B=C"), cn("Some Server"))...), nil,
			"/CN=Some Server/O=A/B=C", `{"CN":"Some Server","O":"A/B=C","aggregated":"/CN=Some Server/O=A/B=C"}`, `["Some Server"]`},
		{"CN deduplicated against SAN", nameDER(rdns(cn("b.example"))...), [][]byte{sanExt},
			"/CN=b.example", `{"CN":"b.example","aggregated":"/CN=b.example"}`, `["b.example" "a.example"]`},
		{"CA certificate: CN excluded, SANs kept", nameDER(rdns(cn("Example CA"))...), [][]byte{caExt, sanExt},
			"/CN=Example CA", `{"CN":"Example CA","aggregated":"/CN=Example CA"}`, `["a.example" "b.example"]`},
		{"PrintableString and TeletexString ASCII", nameDER(rdns(atv{oidCountry, cbasn1.PrintableString, "DE"}, atv{oidCommonName, cbasn1.T61String, "t.example"})...), nil,
			"/C=DE/CN=t.example", `{"C":"DE","CN":"t.example","aggregated":"/C=DE/CN=t.example"}`, `["t.example"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := certSpec{subject: tt.subject, issuer: tt.subject, exts: tt.exts}
			row := buildSpec(t, spec)
			if row.SubjectAggregated != tt.wantAgg || row.IssuerAggregated != tt.wantAgg {
				t.Errorf("subject/issuer_aggregated = %q, %q, want %q", row.SubjectAggregated, row.IssuerAggregated, tt.wantAgg)
			}
			if got := fmt.Sprintf("%q", row.AllDomains); got != tt.wantDomains {
				t.Errorf("all_domains = %s, want %s", got, tt.wantDomains)
			}
			js := chainOf(t, spec)
			if want := `{"subject":` + tt.wantJSON + `,"issuer":` + tt.wantJSON + `,"serial_number"`; !strings.HasPrefix(js, want) {
				t.Errorf("chain object = %s, want it to start with %s", js, want)
			}
		})
	}
}

func TestExtensionFormats(t *testing.T) {
	ip := func(b ...byte) generalName { return generalName{7, b} }
	dns := func(s string) generalName { return generalName{2, []byte(s)} }
	ext := func(oid, value []byte) [][]byte { return [][]byte{extDER(oid, false, value)} }
	oid := func(b ...byte) []byte { return tlv(cbasn1.OBJECT_IDENTIFIER, b) }
	v6 := []byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}
	mapped := []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4}
	zeros := []byte{0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1} // 1:0:0:1:0:0:1:1: two equal runs, the first is shortened
	bc := func(content ...[]byte) []byte { return seq(content...) }
	boolT, boolF := tlv(cbasn1.BOOLEAN, []byte{0xff}), tlv(cbasn1.BOOLEAN, []byte{0})
	bigPolicy := []byte{0x69, 0x82, 0xe6, 0xd1, 0xa4, 0xb8, 0xf0, 0x8c, 0xb3, 0x9c, 0x87, 0x71} // 2.25 + a 10-byte arc
	tests := []struct {
		name     string
		exts     [][]byte
		wantExts string // the Extensions object
		wantCA   bool
	}{
		{"none", nil, `{}`, false},
		{"SAN mixed", ext(oidExtSAN, sanDER(dns("a.example"), generalName{1, []byte("x@a.example")},
			ip(192, 0, 2, 1), ip(v6...), ip(mapped...), ip(zeros...), ip(1, 2, 3, 4, 5), generalName{6, []byte("https://u.example/")}, dns("*.a.example"))),
			`{"subjectAltName":"DNS:a.example, email:x@a.example, IP Address:192.0.2.1, IP Address:2001:db8::1, IP Address:::ffff:1.2.3.4, IP Address:1::1:0:0:1:1, DNS:*.a.example"}`, false},
		{"SAN only URIs: key absent", ext(oidExtSAN, sanDER(generalName{6, []byte("https://u.example/")})), `{}`, false},
		{"SAN with non-UTF-8 dNSName ignored", ext(oidExtSAN, sanDER(dns("a.example"), dns("b\xff"))), `{}`, false},
		{"two SANs accumulate", append(ext(oidExtSAN, sanDER(dns("a.example"))), ext(oidExtSAN, sanDER(dns("b.example")))...),
			`{"subjectAltName":"DNS:a.example, DNS:b.example"}`, false},
		{"basicConstraints CA", ext(oidExtBasicConstr, bc(boolT, tlv(cbasn1.INTEGER, []byte{0}))), `{"basicConstraints":"CA:TRUE"}`, true},
		{"basicConstraints empty", ext(oidExtBasicConstr, bc()), `{"basicConstraints":"CA:FALSE"}`, false},
		{"basicConstraints explicit false", ext(oidExtBasicConstr, bc(boolF)), `{"basicConstraints":"CA:FALSE"}`, false},
		{"basicConstraints pathLen only", ext(oidExtBasicConstr, bc(tlv(cbasn1.INTEGER, []byte{3}))), `{"basicConstraints":"CA:FALSE"}`, false},
		{"basicConstraints bad boolean", ext(oidExtBasicConstr, bc(tlv(cbasn1.BOOLEAN, []byte{1}))), `{}`, false},
		{"two basicConstraints: not CA", append(ext(oidExtBasicConstr, bc(boolT)), ext(oidExtBasicConstr, bc(boolT))...), `{"basicConstraints":"CA:TRUE"}`, false},
		{"keyUsage", ext(oidExtKeyUsage, tlv(cbasn1.BIT_STRING, []byte{7, 0x80})), `{"keyUsage":"Digital Signature"}`, false},
		{"keyUsage all nine", ext(oidExtKeyUsage, tlv(cbasn1.BIT_STRING, []byte{7, 0xff, 0x80})),
			`{"keyUsage":"Digital Signature, Content Commitment, Key Encipherment, Data Encipherment, Key Agreement, Certificate Signing, CRL Signing, Encipher Only, Decipher Only"}`, false},
		{"keyUsage none set", ext(oidExtKeyUsage, tlv(cbasn1.BIT_STRING, []byte{0})), `{"keyUsage":""}`, false},
		{"EKU fixed order, unknown dropped", ext(oidExtEKU, seq(oid(0x2b, 6, 1, 5, 5, 7, 3, 2), oid(0x2b, 6, 1, 4, 1, 0xd6, 0x79, 2, 4, 4), oid(0x2b, 6, 1, 5, 5, 7, 3, 1))),
			`{"extendedKeyUsage":"serverAuth, clientAuth"}`, false},
		{"EKU none known", ext(oidExtEKU, seq(oid(0x2b, 6, 1, 4, 1, 0xd6, 0x79, 2, 4, 4))), `{"extendedKeyUsage":""}`, false},
		{"AKI", ext(oidExtAKI, seq(tlv(cbasn1.Tag(0).ContextSpecific(), []byte{0xab, 0x01}))), `{"authorityKeyIdentifier":"keyid:ab:01"}`, false},
		{"AKI empty keyid", ext(oidExtAKI, seq(tlv(cbasn1.Tag(0).ContextSpecific()))), `{"authorityKeyIdentifier":"keyid:"}`, false},
		{"AKI without keyid", ext(oidExtAKI, seq(tlv(cbasn1.Tag(2).ContextSpecific(), []byte{1}))), `{}`, false},
		{"SKI", ext(oidExtSKI, tlv(cbasn1.OCTET_STRING, []byte{0xbf, 0xc0})), `{"subjectKeyIdentifier":"keyid:bf:c0"}`, false},
		{"policies with big-arc OID", ext(oidExtPolicies, seq(seq(oid(0x67, 0x81, 0x0c, 1, 2, 1)), seq(oid(bigPolicy...), seq(seq(oid(0x2b, 6, 1, 5, 5, 7, 2, 1), tlv(cbasn1.IA5String, []byte("https://cps.example"))))))),
			`{"certificatePolicies":"Policy: 2.23.140.1.2.1\nPolicy: 69 82 e6 d1 a4 b8 f0 8c b3 9c 87 71\n"}`, false},
		{"AIA URIs only", ext(oidExtAIA, seq(
			seq(oid(0x2b, 6, 1, 5, 5, 7, 48, 2), tlv(cbasn1.Tag(6).ContextSpecific(), []byte("http://ca.example/c.crt"))),
			seq(oid(0x2b, 6, 1, 5, 5, 7, 48, 1), tlv(cbasn1.Tag(2).ContextSpecific(), []byte("not.a.uri"))),
			seq(oid(0x2b, 6, 1, 5, 5, 7, 48, 1), tlv(cbasn1.Tag(6).ContextSpecific(), []byte("http://ocsp.example"))))),
			`{"authorityInfoAccess":"URI:http://ca.example/c.crt, URI:http://ocsp.example"}`, false},
		{"undecodable extension ignored", ext(oidExtKeyUsage, []byte{0x03}), `{}`, false},
		{"later extension wins", append(ext(oidExtSKI, tlv(cbasn1.OCTET_STRING, []byte{1})), ext(oidExtSKI, tlv(cbasn1.OCTET_STRING, []byte{2}))...),
			`{"subjectKeyIdentifier":"keyid:02"}`, false},
		{"key order", append(append(append(ext(oidExtSKI, tlv(cbasn1.OCTET_STRING, []byte{2})), ext(oidExtKeyUsage, tlv(cbasn1.BIT_STRING, []byte{0}))...),
			ext(oidExtAKI, seq(tlv(cbasn1.Tag(0).ContextSpecific(), []byte{1})))...), ext(oidExtBasicConstr, bc())...),
			`{"authorityKeyIdentifier":"keyid:01","basicConstraints":"CA:FALSE","keyUsage":"","subjectKeyIdentifier":"keyid:02"}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := certSpec{exts: tt.exts}
			js := chainOf(t, spec)
			wantTail := fmt.Sprintf(`"is_ca":%t,"extensions":%s}`, tt.wantCA, tt.wantExts)
			if !strings.HasSuffix(js, wantTail) {
				t.Errorf("chain object = %s, want it to end with %s", js, wantTail)
			}
			if row := buildSpec(t, spec); row.IsCA != tt.wantCA {
				t.Errorf("is_ca = %t, want %t", row.IsCA, tt.wantCA)
			}
		})
	}
}

func TestAppendOID(t *testing.T) {
	tests := []struct {
		oid  []byte
		want string
	}{
		{[]byte{0x2b, 6, 1, 4, 1, 0xa0, 0x32, 1, 1}, "1.3.6.1.4.1.4146.1.1"},
		{[]byte{0x55, 0x1d, 0x20, 0x00}, "2.5.29.32.0"},
		{[]byte{0x67, 0x81, 0x0c, 1, 2, 1}, "2.23.140.1.2.1"},
		// 9-byte arc (63 bits) still fits; 10 bytes do not, whatever their value.
		{[]byte{0x69, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, "2.25.9223372036854775807"},
		{[]byte{0x69, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, "69 80 80 80 80 80 80 80 80 80 01"},
		// The first two arcs come from the first byte only (asn1-rs).
		{[]byte{0x88, 0x37, 0x03}, "3.16.55.3"},
		{[]byte{0x00}, "0.0"},
		{nil, ""},
		{[]byte{0x2b, 0x86}, "1.3.6"}, // unterminated last arc still printed
	}
	for _, tt := range tests {
		if got := string(appendOID(nil, tt.oid)); got != tt.want {
			t.Errorf("appendOID(% x) = %q, want %q", tt.oid, got, tt.want)
		}
	}
}

func TestAppendJSONString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", `"plain"`},
		{`q"b\s`, `"q\"b\\s"`},
		{"\b\t\n\f\r", `"\b\t\n\f\r"`},
		{"\x00\x01\x1f", `"\u0000\u0001\u001f"`},
		{"\x0b\x1b", `"\u000b\u001b"`},
		{"a/b<c>&d\x7f", "\"a/b<c>&d\x7f\""},
		{"\u2028\u2029", "\"\u2028\u2029\""},
		{"é日本😀", `"é日本😀"`},
		{"", `""`},
	}
	for _, tt := range tests {
		if got := string(appendJSONString(nil, tt.in)); got != tt.want {
			t.Errorf("appendJSONString(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// encodingJSONSerde is encoding/json adjusted to serde_json's output, as
// spec section 5.4 describes: an independent reference for valid UTF-8.
func encodingJSONSerde(s string) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.Encode(s)
	out := strings.TrimSuffix(buf.String(), "\n")
	return strings.NewReplacer(`\u2028`, "\u2028", `\u2029`, "\u2029").Replace(out)
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"a", "\x00\u2028\"\\", "<&>", "\x7f\u00e9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) || strings.Contains(s, `\u2028`) || strings.Contains(s, `\u2029`) {
			t.Skip()
		}
		if got, want := string(appendJSONString(nil, s)), encodingJSONSerde(s); got != want {
			t.Errorf("appendJSONString(%q) = %s, want %s", s, got, want)
		}
	})
}

func TestBuildFailures(t *testing.T) {
	good := certSpec{}.der()
	withTrailing := append(bytes.Clone(good), 0xde, 0xad)
	tests := []struct {
		name    string
		e       Entry
		wantErr error
	}{
		{"garbage", Entry{Type: X509Entry, Cert: []byte("garbage")}, ErrBadCertificate},
		{"empty", Entry{Type: X509Entry}, ErrBadCertificate},
		{"truncated", Entry{Type: X509Entry, Cert: good[:len(good)-1]}, ErrBadCertificate},
		{"entry type 2", Entry{Type: 2, Cert: good}, ErrSkippedEntryType},
		{"trailing bytes accepted", Entry{Type: X509Entry, Cert: withTrailing}, nil},
		{"bad chain element dropped", Entry{Type: PrecertEntry, Cert: good, Chain: [][]byte{[]byte("junk"), good, nil}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			row, err := Build(tt.e, Source{URL: "https://l.example"})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Build() error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if row.AllDomains == nil || row.Chain == nil {
				t.Errorf("Build() lists nil: all_domains %v, chain %v", row.AllDomains == nil, row.Chain == nil)
			}
			if !bytes.Equal(row.AsDER, tt.e.Cert) {
				t.Errorf("as_der = % x, want the entry's bytes", row.AsDER)
			}
		})
	}
	// Trailing bytes are hashed with the certificate (spec section 4.1).
	a, _ := Build(Entry{Type: X509Entry, Cert: good}, Source{})
	b, _ := Build(Entry{Type: X509Entry, Cert: withTrailing}, Source{})
	if a.SHA256 == b.SHA256 || a.SubjectAggregated != b.SubjectAggregated {
		t.Errorf("trailing bytes: sha256 %s vs %s, subject %q vs %q", a.SHA256, b.SHA256, a.SubjectAggregated, b.SubjectAggregated)
	}
	row, _ := Build(Entry{Type: PrecertEntry, Cert: good, Chain: [][]byte{[]byte("junk"), good, nil}}, Source{})
	if len(row.Chain) != 1 || row.UpdateType != "PrecertLogEntry" {
		t.Errorf("chain = %d objects, update_type %q, want 1 and PrecertLogEntry", len(row.Chain), row.UpdateType)
	}
}

func TestSeen(t *testing.T) {
	tests := []struct {
		in       time.Time
		wantUS   int64
		wantDate string
	}{
		{time.Unix(1700000000, 0), 1700000000000000, "2023-11-14"},
		{time.Unix(1732550400, 123999999).In(time.FixedZone("x", -8*3600)), 1732550400123000, "2024-11-25"},
		{time.Date(2024, 12, 31, 23, 59, 59, 999999999, time.UTC), time.Date(2024, 12, 31, 23, 59, 59, 999000000, time.UTC).UnixMicro(), "2024-12-31"},
		{time.Date(2025, 1, 1, 0, 30, 0, 0, time.FixedZone("y", 3600)), time.Date(2024, 12, 31, 23, 30, 0, 0, time.UTC).UnixMicro(), "2024-12-31"},
	}
	for _, tt := range tests {
		row := buildSpecSeen(t, tt.in)
		if row.Seen.UnixMicro() != tt.wantUS || row.SeenDate != tt.wantDate || row.Seen.Location() != time.UTC {
			t.Errorf("seen(%v) = %d %s %v, want %d %s UTC", tt.in, row.Seen.UnixMicro(), row.SeenDate, row.Seen.Location(), tt.wantUS, tt.wantDate)
		}
	}
}

func buildSpecSeen(t *testing.T, seen time.Time) Row {
	t.Helper()
	row, err := Build(Entry{Type: X509Entry, Cert: certSpec{}.der(), Seen: seen}, Source{})
	if err != nil {
		t.Fatal(err)
	}
	return row
}

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
		// As asn1-rs 0.6 reads UTCTime: seconds optional before Z, offsets
		// subtracted (the sign on the hours only), none without seconds.
		{cbasn1.UTCTime, "1302201334Z", utc(2013, 2, 20, 13, 34, 0), true},
		{cbasn1.UTCTime, "130220133451+0000", utc(2013, 2, 20, 13, 34, 51), true},
		{cbasn1.UTCTime, "130220133451+0130", utc(2013, 2, 20, 12, 4, 51), true},
		{cbasn1.UTCTime, "130220233451-0200", utc(2013, 2, 21, 1, 34, 51), true},
		{cbasn1.UTCTime, "130220133451-0030", utc(2013, 2, 20, 13, 4, 51), true}, // -00:30 is +00:30
		{cbasn1.UTCTime, "491231233000-0100", utc(2050, 1, 1, 0, 30, 0), true},
		{cbasn1.UTCTime, "1302201334+0100", 0, false}, // no seconds: "+0" read as seconds
		{cbasn1.UTCTime, "130220133451+2600", 0, false},
		{cbasn1.UTCTime, "130220133451+0060", 0, false},
		{cbasn1.UTCTime, "130220133451", 0, false},
		{cbasn1.UTCTime, "130220133451+01", 0, false},
		{cbasn1.UTCTime, "130220133460Z", 0, false},
		{cbasn1.UTCTime, "131320133451Z", 0, false},
		{cbasn1.UTCTime, "13022013345xZ", 0, false},
		{cbasn1.GeneralizedTime, "20500101000000Z", utc(2050, 1, 1, 0, 0, 0), true},
		{cbasn1.GeneralizedTime, "99991231235959Z", utc(9999, 12, 31, 23, 59, 59), true},
		{cbasn1.GeneralizedTime, "19691231235959.999Z", -1, true}, // fraction dropped
		{cbasn1.GeneralizedTime, "20250101000000.Z", utc(2025, 1, 1, 0, 0, 0), true},
		{cbasn1.GeneralizedTime, "202501010000Z", utc(2025, 1, 1, 0, 0, 0), true},
		{cbasn1.GeneralizedTime, "20250101000000.1234Z", 0, false}, // four fraction digits
		{cbasn1.GeneralizedTime, "20250101000000,5Z", 0, false},
		{cbasn1.GeneralizedTime, "20250101000000+0100", 0, false}, // DER: must end in Z
		{cbasn1.GeneralizedTime, "20250101000000", 0, false},
		{cbasn1.GeneralizedTime, "20250101000000.5.Z", 0, false},
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
