package record

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestBuildFourEntriesMatchesStdlib(t *testing.T) {
	src := Source{URL: "https://ct.example.net/log", Name: "Example Log"}
	for i := range 4 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			e := fourEntry(t, i, uint64(i), time.Now())
			row, err := Build(e, src)
			if err != nil {
				t.Fatalf("Build(entry %d) error %v", i, err)
			}
			if !compareRow(t, "leaf", row, e.Cert) {
				t.Fatal("crypto/x509 cannot parse the leaf")
			}
			if len(row.Chain) != len(e.Chain) {
				t.Fatalf("chain has %d objects, want %d", len(row.Chain), len(e.Chain))
			}
			for j, der := range e.Chain {
				compareChainObject(t, fmt.Sprintf("chain[%d]", j), row.Chain[j], der)
			}
		})
	}
}

// buildTile builds a row from every leaf of a decoded tile and compares it
// with crypto/x509; it returns how many leaves crypto/x509 could check.
func buildTile(t *testing.T, src Source, tileN uint64, leaves []TileLeaf) (checked int) {
	t.Helper()
	seen := time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC)
	for i, l := range leaves {
		idx := tileN*TileWidth + uint64(i)
		row, err := Build(Entry{Index: idx, Type: l.Type, Cert: l.Cert, Seen: seen}, src)
		if err != nil {
			t.Errorf("Build(leaf %d) error %v", idx, err)
			continue
		}
		if row.UpdateType != l.Type.UpdateType() || row.CertIndex != idx || row.CertLink != CertLink(src, idx) {
			t.Errorf("leaf %d: update_type %q, cert_index %d, cert_link %q", idx, row.UpdateType, row.CertIndex, row.CertLink)
		}
		if compareRow(t, fmt.Sprintf("leaf %d", idx), row, l.Cert) {
			checked++
		}
	}
	return checked
}

func TestBuildTesseractTileMatchesStdlib(t *testing.T) {
	leaves, err := DecodeTile(tesseractTile())
	if err != nil {
		t.Fatal(err)
	}
	src := Source{URL: "https://ct.example.net/tesseract", Name: "TesseraCT example", Static: true}
	checked := buildTile(t, src, 0, leaves)
	t.Logf("%d of %d precerts checked against crypto/x509", checked, len(leaves))
	if checked != 256 {
		t.Errorf("crypto/x509 checked %d precerts, want 256", checked)
	}
}

func TestBuildNavigliTilesMatchStdlib(t *testing.T) {
	src := Source{URL: "https://navigli2025h2.skylight.geomys.org", Name: "Geomys 'Navigli2025h2'", Static: true}
	checked, total, precerts := 0, 0, 0
	for _, tile := range navigliTiles(t) {
		leaves, err := DecodeTile(tile.body)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range leaves {
			if l.Type == PrecertEntry {
				precerts++
			}
		}
		total += len(leaves)
		checked += buildTile(t, src, tile.n, leaves)
	}
	t.Logf("%d of %d entries (%d precerts) checked against crypto/x509", checked, total, precerts)
	if total != 1034 || checked != total {
		t.Errorf("built %d entries, crypto/x509 checked %d, want 1034 both", total, checked)
	}
}

// stdlibView is what Go's crypto/x509 says about a certificate, formatted
// the row's way with code independent of Build: the reference the tests
// compare rows against.
type stdlibView struct {
	SHA1, SHA256, Serial string
	NotBefore, NotAfter  int64
	Subject, Issuer      string
	AllDomains           []string
	IsCA                 bool
	SignatureAlgorithm   string
}

func colonUpper(sum []byte) string {
	h := strings.ToUpper(hex.EncodeToString(sum))
	var parts []string
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}

func lastOf(v []string) (string, bool) {
	if len(v) == 0 {
		return "", false
	}
	return v[len(v)-1], true
}

func stdlibAggregated(n pkix.Name) string {
	var b strings.Builder
	add := func(label string, v string, ok bool) {
		if ok {
			b.WriteString("/" + label + "=" + v)
		}
	}
	c, ok := lastOf(n.Country)
	add("C", c, ok)
	add("CN", n.CommonName, n.CommonName != "" || hasAttr(n, []int{2, 5, 4, 3}))
	l, ok := lastOf(n.Locality)
	add("L", l, ok)
	o, ok := lastOf(n.Organization)
	add("O", o, ok)
	ou, ok := lastOf(n.OrganizationalUnit)
	add("OU", ou, ok)
	st, ok := lastOf(n.Province)
	add("ST", st, ok)
	return b.String()
}

func hasAttr(n pkix.Name, oid []int) bool {
	for _, a := range n.Names {
		if fmt.Sprint(a.Type) == fmt.Sprint(oid) {
			return true
		}
	}
	return false
}

var stdlibSigAlgs = map[x509.SignatureAlgorithm]string{
	x509.MD2WithRSA: "md2, rsa", x509.MD5WithRSA: "md5, rsa", x509.SHA1WithRSA: "sha1, rsa",
	x509.SHA256WithRSA: "sha256, rsa", x509.SHA384WithRSA: "sha384, rsa", x509.SHA512WithRSA: "sha512, rsa",
	x509.SHA256WithRSAPSS: "sha256, rsa-pss", x509.SHA384WithRSAPSS: "sha256, rsa-pss", x509.SHA512WithRSAPSS: "sha256, rsa-pss",
	x509.DSAWithSHA1: "dsa, sha1", x509.DSAWithSHA256: "dsa, sha256",
	x509.ECDSAWithSHA1: "ecdsa, sha1", x509.ECDSAWithSHA256: "ecdsa, sha256",
	x509.ECDSAWithSHA384: "ecdsa, sha384", x509.ECDSAWithSHA512: "ecdsa, sha512",
	x509.PureEd25519: "ed25519",
}

// viewWithStdlib parses der with crypto/x509; ok is false if it refuses.
func viewWithStdlib(t testing.TB, der []byte) (stdlibView, bool) {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Logf("crypto/x509 refuses the certificate: %v", err)
		return stdlibView{}, false
	}
	s1, s256 := sha1.Sum(der), sha256.Sum256(der)
	serial := strings.ToUpper(hex.EncodeToString(c.SerialNumber.Bytes()))
	if serial == "" {
		serial = "00"
	}
	v := stdlibView{
		SHA1: colonUpper(s1[:]), SHA256: colonUpper(s256[:]), Serial: serial,
		NotBefore: c.NotBefore.Unix(), NotAfter: c.NotAfter.Unix(),
		Subject: stdlibAggregated(c.Subject), Issuer: stdlibAggregated(c.Issuer),
		IsCA:               c.BasicConstraintsValid && c.IsCA,
		SignatureAlgorithm: stdlibSigAlgs[c.SignatureAlgorithm],
		AllDomains:         []string{},
	}
	if v.SignatureAlgorithm == "" {
		v.SignatureAlgorithm = "unknown"
	}
	if c.Subject.CommonName != "" && !v.IsCA {
		v.AllDomains = append(v.AllDomains, c.Subject.CommonName)
	}
	for _, d := range c.DNSNames {
		dup := false
		for _, have := range v.AllDomains {
			dup = dup || have == d
		}
		if !dup {
			v.AllDomains = append(v.AllDomains, d)
		}
	}
	return v, true
}

// compareRow checks row's certificate columns against crypto/x509's view of
// der; it returns false if crypto/x509 cannot parse der.
func compareRow(t testing.TB, what string, row Row, der []byte) bool {
	t.Helper()
	want, ok := viewWithStdlib(t, der)
	if !ok {
		return false
	}
	got := stdlibView{
		SHA1: row.SHA1, SHA256: row.SHA256, Serial: row.SerialNumber,
		NotBefore: row.NotBefore, NotAfter: row.NotAfter,
		Subject: row.SubjectAggregated, Issuer: row.IssuerAggregated,
		AllDomains: row.AllDomains, IsCA: row.IsCA, SignatureAlgorithm: row.SignatureAlgorithm,
	}
	if fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", want) {
		t.Errorf("%s: Build() =\n%#v\nwant (crypto/x509)\n%#v", what, got, want)
	}
	if row.Fingerprint != row.SHA1 {
		t.Errorf("%s: fingerprint %q != sha1 %q", what, row.Fingerprint, row.SHA1)
	}
	return true
}

// chainObject is the chain JSON object, read back with encoding/json.
type chainObject struct {
	Subject            map[string]string `json:"subject"`
	Issuer             map[string]string `json:"issuer"`
	SerialNumber       string            `json:"serial_number"`
	NotBefore          int64             `json:"not_before"`
	NotAfter           int64             `json:"not_after"`
	Fingerprint        string            `json:"fingerprint"`
	SHA1               string            `json:"sha1"`
	SHA256             string            `json:"sha256"`
	SignatureAlgorithm string            `json:"signature_algorithm"`
	IsCA               bool              `json:"is_ca"`
	Extensions         map[string]string `json:"extensions"`
}

// compareChainObject checks a chain JSON string against crypto/x509's view
// of the chain certificate der.
func compareChainObject(t testing.TB, what, js string, der []byte) {
	t.Helper()
	var o chainObject
	dec := json.NewDecoder(strings.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o); err != nil {
		t.Fatalf("%s: chain JSON %s does not decode: %v", what, js, err)
	}
	want, ok := viewWithStdlib(t, der)
	if !ok {
		return
	}
	got := stdlibView{
		SHA1: o.SHA1, SHA256: o.SHA256, Serial: o.SerialNumber,
		NotBefore: o.NotBefore, NotAfter: o.NotAfter,
		Subject: o.Subject["aggregated"], Issuer: o.Issuer["aggregated"],
		IsCA: o.IsCA, SignatureAlgorithm: o.SignatureAlgorithm,
		AllDomains: want.AllDomains, // not part of chain objects
	}
	if fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", want) {
		t.Errorf("%s: chain object =\n%#v\nwant (crypto/x509)\n%#v", what, got, want)
	}
}
