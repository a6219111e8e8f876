package ctlogtest

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	ct "github.com/google/certificate-transparency-go"
	"github.com/google/certificate-transparency-go/client"
	"github.com/google/certificate-transparency-go/jsonclient"
	ctx509 "github.com/google/certificate-transparency-go/x509"
	"golang.org/x/crypto/cryptobyte"
)

// newGen is NewGenerator for a test: an error fails it.
func newGen(tb testing.TB, opts GeneratorOptions) *Generator {
	tb.Helper()
	g, err := NewGenerator(opts)
	if err != nil {
		tb.Fatal(err)
	}
	return g
}

// newLogTB starts a static log or an RFC 6962 one with default options.
func newLogTB(tb testing.TB, static bool) *Log {
	tb.Helper()
	if static {
		return NewStaticTB(tb, Options{})
	}
	return NewRFC6962TB(tb, Options{})
}

func TestGeneratorIsDeterministic(t *testing.T) {
	g1 := newGen(t, GeneratorOptions{Seed: "alpha"})
	g2 := newGen(t, GeneratorOptions{Seed: "alpha"})
	if !g1.Root().PublicKey.(*ecdsa.PublicKey).Equal(g2.Root().PublicKey) {
		t.Errorf("root keys of the same seed differ")
	}
	for n := range 6 {
		a, err := g1.Next()
		if err != nil {
			t.Fatal(err)
		}
		b, err := g2.Next()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.DER, b.DER) {
			t.Errorf("cert %d: DER differs between generators of one seed", n)
		}
		if a.Cert.Serial.Cmp(b.Cert.Serial) != 0 || strings.Join(a.Cert.DNSNames, ",") != strings.Join(b.Cert.DNSNames, ",") ||
			!a.Cert.NotBefore.Equal(b.Cert.NotBefore) || a.Cert.Precert != b.Cert.Precert || a.Cert.IssuerCN != b.Cert.IssuerCN {
			t.Errorf("cert %d differs between generators of one seed: %+v vs %+v", n, a.Cert, b.Cert)
		}
		wantHost := fmt.Sprintf("n%d.alpha.certlake.test", n)
		if a.Cert.DNSNames[0] != wantHost {
			t.Errorf("Next() #%d DNSNames[0] = %q, want %q", n, a.Cert.DNSNames[0], wantHost)
		}
		if wantPre := n%3 == 2; a.Cert.Precert != wantPre {
			t.Errorf("Next() #%d Precert = %v, want %v", n, a.Cert.Precert, wantPre)
		}
	}
}

func TestGeneratorCertificates(t *testing.T) {
	g := newGen(t, GeneratorOptions{})
	nb := time.Date(2024, 2, 29, 12, 30, 45, 0, time.UTC)
	tests := []struct {
		name       string
		spec       LeafSpec
		wantIssuer *x509.Certificate
	}{
		{"certificate", LeafSpec{DNSNames: []string{"a.example", "b.example"}, Organization: "Org", Country: "DE",
			Serial: big.NewInt(0x1234), NotBefore: nb, NotAfter: nb.AddDate(1, 0, 0)}, g.Intermediate()},
		{"certificate after 2049", LeafSpec{DNSNames: []string{"late.example"}, CommonName: "Late",
			NotBefore: nb, NotAfter: time.Date(2051, 1, 1, 0, 0, 0, 0, time.UTC)}, g.Intermediate()},
		{"precert by intermediate", LeafSpec{DNSNames: []string{"p.example"}, Precert: true}, g.Intermediate()},
		{"precert by precert signer", LeafSpec{DNSNames: []string{"q.example"}, Precert: true, ViaPrecertSigner: true}, g.PrecertSigner()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is, err := g.Issue(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			// The standard library parses the leaf (the poison is an
			// unhandled critical extension, which parsing allows) and
			// verifies its signature.
			std, err := x509.ParseCertificate(is.DER)
			if err != nil {
				t.Fatalf("x509.ParseCertificate: %v", err)
			}
			if err := std.CheckSignatureFrom(tc.wantIssuer); err != nil {
				t.Errorf("CheckSignatureFrom(%s) = %v", tc.wantIssuer.Subject.CommonName, err)
			}
			if !bytes.Equal(std.AuthorityKeyId, tc.wantIssuer.SubjectKeyId) {
				t.Errorf("AuthorityKeyId = %x, want %x", std.AuthorityKeyId, tc.wantIssuer.SubjectKeyId)
			}
			if tc.spec.Serial != nil && std.SerialNumber.Cmp(tc.spec.Serial) != 0 {
				t.Errorf("serial = %v, want %v", std.SerialNumber, tc.spec.Serial)
			}
			if !std.NotBefore.Equal(is.Cert.NotBefore) || !std.NotAfter.Equal(is.Cert.NotAfter) {
				t.Errorf("validity = [%v, %v], Cert says [%v, %v]", std.NotBefore, std.NotAfter, is.Cert.NotBefore, is.Cert.NotAfter)
			}
			if !tc.spec.NotAfter.IsZero() && !std.NotAfter.Equal(tc.spec.NotAfter) {
				t.Errorf("NotAfter = %v, want %v", std.NotAfter, tc.spec.NotAfter)
			}
			if tc.spec.Organization != "" && (len(std.Subject.Organization) != 1 || std.Subject.Organization[0] != tc.spec.Organization ||
				len(std.Subject.Country) != 1 || std.Subject.Country[0] != tc.spec.Country) {
				t.Errorf("subject = %v, want O=%s C=%s", std.Subject, tc.spec.Organization, tc.spec.Country)
			}
			if std.Subject.CommonName != is.Cert.CommonName {
				t.Errorf("CN = %q, Cert says %q", std.Subject.CommonName, is.Cert.CommonName)
			}
			if tc.spec.Precert {
				// The TBS the logs record, as certificate-transparency-go
				// computes it from the precertificate.
				var preIssuer *ctx509.Certificate
				if tc.spec.ViaPrecertSigner {
					if preIssuer, err = ctx509.ParseCertificate(g.PrecertSigner().Raw); err != nil {
						t.Fatal(err)
					}
				}
				want, err := ctx509.BuildPrecertTBS(std.RawTBSCertificate, preIssuer)
				if err != nil {
					t.Fatal(err)
				}
				got, ikh, err := precertParts(is)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("precertParts TBS differs from BuildPrecertTBS")
				}
				if ikh != sha256.Sum256(g.Intermediate().RawSubjectPublicKeyInfo) {
					t.Errorf("issuer key hash is not the intermediate's")
				}
			}
			if std.BasicConstraintsValid && std.IsCA {
				t.Errorf("leaf is a CA")
			}
			c, err := ctx509.ParseCertificate(is.DER)
			if err != nil {
				t.Fatal(err)
			}
			poisoned := false
			for _, e := range c.Extensions {
				if e.Id.String() == OIDCTPoison.String() {
					poisoned = e.Critical
				}
			}
			if poisoned != tc.spec.Precert {
				t.Errorf("poison extension present = %v, want %v", poisoned, tc.spec.Precert)
			}
			if want := tc.wantIssuer.Subject.CommonName; c.Issuer.CommonName != want || is.Cert.IssuerCN != want {
				t.Errorf("issuer = %q (Cert.IssuerCN %q), want %q", c.Issuer.CommonName, is.Cert.IssuerCN, want)
			}
			if got := strings.Join(c.DNSNames, ","); got != strings.Join(tc.spec.DNSNames, ",") {
				t.Errorf("DNSNames = %s, want %s", got, strings.Join(tc.spec.DNSNames, ","))
			}
			if is.Cert.SHA256 != sha256.Sum256(is.DER) {
				t.Errorf("Cert.SHA256 is not the digest of DER")
			}
		})
	}
}

// staticEntry is a minimally decoded static-ct-api data tile entry.
type staticEntry struct {
	precert bool
	tbs     []byte   // precerts: the logged TBS
	ikh     [32]byte // precerts: issuer key hash
	cert    []byte   // the certificate, or the pre-certificate for precerts
	index   uint64
	chain   [][32]byte
}

// parseDataTile decodes the TileLeaf structures of
// https://c2sp.org/static-ct-api#log-entries.
func parseDataTile(t *testing.T, b []byte) []staticEntry {
	t.Helper()
	s := cryptobyte.String(b)
	var out []staticEntry
	for !s.Empty() {
		var e staticEntry
		var ts uint64
		var typ uint16
		var cert, ext, chain cryptobyte.String
		if !s.ReadUint64(&ts) || !s.ReadUint16(&typ) {
			t.Fatalf("tile entry %d: short header", len(out))
		}
		switch typ {
		case 0:
			if !s.ReadUint24LengthPrefixed(&cert) {
				t.Fatalf("tile entry %d: short certificate", len(out))
			}
		case 1:
			var tbs cryptobyte.String
			if !s.CopyBytes(e.ikh[:]) || !s.ReadUint24LengthPrefixed(&tbs) {
				t.Fatalf("tile entry %d: short precert tbs", len(out))
			}
			e.tbs = tbs
		default:
			t.Fatalf("tile entry %d: entry type %d", len(out), typ)
		}
		if !s.ReadUint16LengthPrefixed(&ext) {
			t.Fatalf("tile entry %d: short extensions", len(out))
		}
		if typ == 1 {
			e.precert = true
			if !s.ReadUint24LengthPrefixed(&cert) {
				t.Fatalf("tile entry %d: short pre-certificate", len(out))
			}
		}
		if !s.ReadUint16LengthPrefixed(&chain) {
			t.Fatalf("tile entry %d: short chain", len(out))
		}
		for !chain.Empty() {
			var fp [32]byte
			if !chain.CopyBytes(fp[:]) {
				t.Fatalf("tile entry %d: short fingerprint", len(out))
			}
			e.chain = append(e.chain, fp)
		}
		var et uint8
		var idx cryptobyte.String
		if !ext.ReadUint8(&et) || et != 0 || !ext.ReadUint16LengthPrefixed(&idx) || len(idx) != 5 {
			t.Fatalf("tile entry %d: no leaf_index extension", len(out))
		}
		for _, c := range idx {
			e.index = e.index<<8 | uint64(c)
		}
		e.cert = cert
		out = append(out, e)
	}
	return out
}

func httpGet(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Ask for nothing so a gzip body arrives as it is sent.
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestStaticLogServesSubmittedEntries(t *testing.T) {
	for _, gz := range []bool{false, true} {
		t.Run(fmt.Sprintf("gzip=%v", gz), func(t *testing.T) {
			l := NewStaticTB(t, Options{Name: "tiles", GzipDataTiles: gz})
			gen := newGen(t, GeneratorOptions{})
			certs, err := l.AddCertificates(t.Context(), 10, gen)
			if err != nil {
				t.Fatal(err)
			}
			certs2, err := l.AddCertificates(t.Context(), 5, gen)
			if err != nil {
				t.Fatal(err)
			}
			certs = append(certs, certs2...)
			precerts := 0
			for i, c := range certs {
				if c.Index != uint64(i) {
					t.Errorf("certs[%d].Index = %d, want %d", i, c.Index, i)
				}
				if c.Precert {
					precerts++
				}
			}
			if precerts != 5 {
				t.Errorf("precerts among 15 = %d, want 5", precerts)
			}
			size, err := l.TreeSize(t.Context())
			if err != nil || size != 15 {
				t.Fatalf("TreeSize() = %d, %v, want 15", size, err)
			}

			resp, body := httpGet(t, l.URL+"checkpoint")
			if resp.StatusCode != 200 || !strings.HasPrefix(string(body), l.Origin+"\n15\n") {
				t.Fatalf("GET checkpoint = %d %q, want 200 starting %q", resp.StatusCode, body, l.Origin+"\n15\n")
			}
			resp, body = httpGet(t, l.URL+"tile/data/000.p/15")
			if resp.StatusCode != 200 {
				t.Fatalf("GET tile/data/000.p/15 = %d %s", resp.StatusCode, body)
			}
			if enc := resp.Header.Get("Content-Encoding"); (enc == "gzip") != gz {
				t.Fatalf("Content-Encoding = %q, gzip option %v", enc, gz)
			}
			if gz {
				zr, err := gzip.NewReader(bytes.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				if body, err = io.ReadAll(zr); err != nil {
					t.Fatal(err)
				}
			}
			entries := parseDataTile(t, body)
			if len(entries) != 15 {
				t.Fatalf("entries in tile = %d, want 15", len(entries))
			}
			for i, e := range entries {
				c := certs[i]
				if e.index != c.Index || e.precert != c.Precert || sha256.Sum256(e.cert) != c.SHA256 {
					t.Errorf("tile entry %d = {index %d precert %v sha %x}, want {%d %v %x}", i, e.index, e.precert, sha256.Sum256(e.cert), c.Index, c.Precert, c.SHA256)
				}
				// Every issuer a reader needs is served.
				for _, fp := range e.chain {
					r, der := httpGet(t, fmt.Sprintf("%sissuer/%x", l.URL, fp))
					if r.StatusCode != 200 || sha256.Sum256(der) != fp {
						t.Errorf("GET issuer/%x = %d, %d bytes", fp, r.StatusCode, len(der))
					}
				}
			}
			// Private state is never served (ServeMux answers ".." with a
			// redirect to the cleaned path, which is not routed).
			for _, p := range []string{".state/treeState", ".ctlogtest/key.pem", "tile/../.ctlogtest/key.pem", "tile/.%2e/.ctlogtest/key.pem"} {
				if r, _ := httpGet(t, l.URL+p); r.StatusCode == http.StatusOK {
					t.Errorf("GET %s = %d, want it refused", p, r.StatusCode)
				}
			}
		})
	}
}

func TestStaticLogPartialTileGoesAway(t *testing.T) {
	l := NewStaticTB(t, Options{GCInterval: 100 * time.Millisecond})
	gen := newGen(t, GeneratorOptions{PrecertEvery: -1})
	if err := l.AddBulk(t.Context(), 100, gen, nil); err != nil {
		t.Fatal(err)
	}
	if r, _ := httpGet(t, l.URL+"tile/data/000.p/100"); r.StatusCode != 200 {
		t.Fatalf("GET tile/data/000.p/100 = %d, want 200", r.StatusCode)
	}
	if err := l.AddBulk(t.Context(), 200, gen, nil); err != nil {
		t.Fatal(err)
	}
	r, body := httpGet(t, l.URL+"tile/data/000")
	if r.StatusCode != 200 || len(parseDataTile(t, body)) != 256 {
		t.Fatalf("GET tile/data/000 = %d, want 200 with 256 entries", r.StatusCode)
	}
	// Once a full tile exists, Tessera's garbage collector removes the
	// partial ones, as on real logs.
	deadline := time.Now().Add(5 * time.Second)
	for {
		r, _ := httpGet(t, l.URL+"tile/data/000.p/100")
		if r.StatusCode == http.StatusNotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET tile/data/000.p/100 = %d after 5 s, want 404", r.StatusCode)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestStaticLogReopens(t *testing.T) {
	dir := t.TempDir()
	gen := newGen(t, GeneratorOptions{})
	l, err := StartStatic(t.Context(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.AddCertificates(t.Context(), 3, gen); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = StartStatic(t.Context(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	certs, err := l.AddCertificates(t.Context(), 2, gen)
	if err != nil {
		t.Fatal(err)
	}
	if certs[0].Index != 3 || certs[1].Index != 4 {
		t.Errorf("indices after reopen = %d, %d, want 3, 4", certs[0].Index, certs[1].Index)
	}
}

func TestRFC6962LogServesSubmittedEntries(t *testing.T) {
	const maxEntries = 8
	l := NewRFC6962TB(t, Options{Name: "argon", MaxGetEntries: maxEntries})
	gen := newGen(t, GeneratorOptions{})
	certs, err := l.AddCertificates(t.Context(), 20, gen)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range certs {
		if c.Index != uint64(i) {
			t.Errorf("certs[%d].Index = %d, want %d", i, c.Index, i)
		}
	}
	size, err := l.TreeSize(t.Context())
	if err != nil || size != 20 {
		t.Fatalf("TreeSize() = %d, %v, want 20", size, err)
	}

	// Short reads: CTFE's cut, at most 8 and aligned to multiples of 8.
	for _, tc := range []struct{ start, end, want int }{
		{0, 19, 8}, {3, 19, 5}, {8, 10, 3}, {16, 30, 4}, {5, 5, 1},
	} {
		r, body := httpGet(t, fmt.Sprintf("%sct/v1/get-entries?start=%d&end=%d", l.URL, tc.start, tc.end))
		var ge ct.GetEntriesResponse
		if err := json.Unmarshal(body, &ge); err != nil || r.StatusCode != 200 {
			t.Fatalf("get-entries [%d, %d] = %d %s", tc.start, tc.end, r.StatusCode, body)
		}
		if len(ge.Entries) != tc.want {
			t.Errorf("get-entries [%d, %d] returned %d entries, want %d", tc.start, tc.end, len(ge.Entries), tc.want)
		}
	}

	// Read every entry with ct-go's client, continuing after short reads.
	lc, err := client.New(l.URL, http.DefaultClient, jsonclient.Options{PublicKeyDER: mustPKIX(t, l)})
	if err != nil {
		t.Fatal(err)
	}
	sth, err := lc.GetSTH(t.Context())
	if err != nil || sth.TreeSize != 20 {
		t.Fatalf("GetSTH() = %v, %v, want size 20", sth, err)
	}
	var got []ct.LogEntry
	for next := int64(0); next < 20; {
		es, err := lc.GetEntries(t.Context(), next, 19)
		if err != nil {
			t.Fatalf("GetEntries(%d, 19): %v", next, err)
		}
		if len(es) > maxEntries {
			t.Errorf("GetEntries(%d, 19) returned %d entries, more than %d", next, len(es), maxEntries)
		}
		got = append(got, es...)
		next += int64(len(es))
	}
	for i, e := range got {
		c := certs[i]
		var der []byte
		switch {
		case e.X509Cert != nil:
			der = e.X509Cert.Raw
		case e.Precert != nil:
			der = e.Precert.Submitted.Data
		}
		if uint64(e.Index) != c.Index || (e.Precert != nil) != c.Precert || sha256.Sum256(der) != c.SHA256 {
			t.Errorf("entry %d = {index %d precert %v sha %x}, want {%d %v %x}", i, e.Index, e.Precert != nil, sha256.Sum256(der), c.Index, c.Precert, c.SHA256)
		}
	}
}

func mustPKIX(t *testing.T, l *Log) []byte {
	t.Helper()
	der, err := ctx509.MarshalPKIXPublicKey(l.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestBulkMatchesHTTPEncoding(t *testing.T) {
	// The bulk path must write what add-chain writes, for both kinds.
	for _, static := range []bool{true, false} {
		t.Run(fmt.Sprintf("static=%v", static), func(t *testing.T) {
			l := newLogTB(t, static)
			gen := newGen(t, GeneratorOptions{PrecertEvery: 2})
			var bulk []Cert
			if err := l.AddBulk(t.Context(), 6, gen, func(c Cert) { bulk = append(bulk, c) }); err != nil {
				t.Fatal(err)
			}
			httpCerts, err := l.AddCertificates(t.Context(), 6, gen)
			if err != nil {
				t.Fatal(err)
			}
			all := append(bulk, httpCerts...)
			got := readAll(t, l, 12)
			for i, c := range all {
				if c.Index != uint64(i) || got[i].precert != c.Precert || sha256.Sum256(got[i].cert) != c.SHA256 {
					t.Errorf("entry %d = {precert %v sha %x}, want {index %d precert %v sha %x}", i, got[i].precert, sha256.Sum256(got[i].cert), c.Index, c.Precert, c.SHA256)
				}
			}
			// Precert leaves carry the same issuer key hash and TBS either
			// way: compare a bulk precert's leaf with an add-pre-chain one.
			if static {
				assertSameLeafShape(t, got)
			}
		})
	}
}

// readAll reads entries [0, n) from either kind of log over HTTP.
func readAll(t *testing.T, l *Log, n int) []staticEntry {
	t.Helper()
	if l.Static {
		_, body := httpGet(t, fmt.Sprintf("%stile/data/000.p/%d", l.URL, n))
		return parseDataTile(t, body)
	}
	lc, err := client.New(l.URL, http.DefaultClient, jsonclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	es, err := lc.GetEntries(t.Context(), 0, int64(n-1))
	if err != nil || len(es) != n {
		t.Fatalf("GetEntries(0, %d) = %d entries, %v", n-1, len(es), err)
	}
	out := make([]staticEntry, n)
	for i, e := range es {
		out[i].index = uint64(e.Index)
		if e.Precert != nil {
			out[i].precert, out[i].cert = true, e.Precert.Submitted.Data
			out[i].tbs = e.Precert.TBSCertificate.Raw
			out[i].ikh = e.Leaf.TimestampedEntry.PrecertEntry.IssuerKeyHash
		} else {
			out[i].cert = e.X509Cert.Raw
		}
	}
	return out
}

func assertSameLeafShape(t *testing.T, entries []staticEntry) {
	t.Helper()
	chains := map[int]int{}
	for _, e := range entries {
		chains[len(e.chain)]++
	}
	// Certificates and intermediate-signed precerts carry [intermediate,
	// root]; precert-signer precerts carry one more.
	if chains[2] == 0 || chains[3] == 0 {
		t.Errorf("chain lengths = %v, want both 2 and 3", chains)
	}
}

func TestCloseLeavesNoServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	l, err := StartRFC6962(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close() = %v, want nil", err)
	}
	if _, err := l.TreeSize(ctx); err == nil {
		t.Errorf("TreeSize() after Close() = nil error, want one")
	}
}

func TestPrecertLeavesMatchTheLogs(t *testing.T) {
	// What the bulk path writes for a precertificate must be what the logs
	// themselves derive from add-pre-chain.
	gen := newGen(t, GeneratorOptions{PrecertEvery: 1})
	issued := make([]*Issued, 4) // alternately by intermediate and by precert signer
	for i := range issued {
		var err error
		if issued[i], err = gen.Next(); err != nil {
			t.Fatal(err)
		}
	}
	for _, static := range []bool{true, false} {
		t.Run(fmt.Sprintf("static=%v", static), func(t *testing.T) {
			l := newLogTB(t, static)
			certs, err := l.Submit(t.Context(), issued)
			if err != nil {
				t.Fatal(err)
			}
			byIndex := map[uint64]*Issued{}
			for _, c := range certs {
				for _, is := range issued {
					if is.Cert.SHA256 == c.SHA256 {
						byIndex[c.Index] = is
					}
				}
			}
			for i, e := range readAll(t, l, len(issued)) {
				is := byIndex[uint64(i)]
				tbs, ikh, err := precertParts(is)
				if err != nil {
					t.Fatal(err)
				}
				if !e.precert || len(e.tbs) == 0 || !bytes.Equal(e.tbs, tbs) || e.ikh != ikh {
					t.Errorf("entry %d (via precert signer %v): logged TBS/issuer key hash differ from the bulk path's", i, is.Cert.IssuerCN == gen.PrecertSigner().Subject.CommonName)
				}
			}
		})
	}
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	gen := newGen(t, GeneratorOptions{})
	before := runtime.NumGoroutine()
	s, err := StartStatic(t.Context(), t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := StartRFC6962(t.Context(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []*Log{s, r} {
		if _, err := l.AddCertificates(t.Context(), 10, gen); err != nil {
			t.Fatal(err)
		}
		if err := l.AddBulk(t.Context(), 10, gen, nil); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// Goroutines end shortly after Close (the HTTP client's idle
	// connections, gRPC's transport); give them a moment.
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		t.Errorf("goroutines after Close = %d, before start %d:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}
