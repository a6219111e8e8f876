package ctlog

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"unsafe"

	ctx509 "github.com/google/certificate-transparency-go/x509"
	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"

	"github.com/certlake/certlake/internal/ctlogtest"
	"github.com/certlake/certlake/internal/record"
)

// A precertificate entry whose stored precertificate (the tile's
// pre_certificate, get-entries' extra_data) is another well-formed one:
// the leaf and its hash are the log's, so only the check of the
// precertificate against the signed TBSCertificate catches it.
func TestVerifiedPrecertReplaced(t *testing.T) {
	const n = 700
	for _, static := range []bool{true, false} {
		t.Run(kindName(static), func(t *testing.T) {
			v := startVerifiedLog(t, static, n)
			// RFC 6962: the answer from 300 fails as it is decoded, after
			// [256, 299] were proven. Static: tile 1 ([256, 511]).
			tamper, start := swapRFCPrecert(t), uint64(300)
			if static {
				tamper, start = swapTilePrecert(t), 256
			}
			v.proxy.set(tamper)
			m := &countingMetrics{}
			f := fetchRange(t, v.reader(t, m), 100, 650)
			v.wantVerificationFailure(t, f, 100, start, 650, "does not match the TBSCertificate the log signed")
			if m.verification.Load() != 1 {
				t.Errorf("verification failures = %d, want 1", m.verification.Load())
			}
		})
	}
}

// swapTilePrecert gives the first precertificate of data tile 1 the
// pre_certificate of the next one with the same first chain certificate.
func swapTilePrecert(t *testing.T) func(*http.Request, []byte) (int, []byte) {
	return func(r *http.Request, body []byte) (int, []byte) {
		if !strings.HasSuffix(r.URL.Path, "/tile/data/001") {
			return http.StatusOK, body
		}
		leaves, err := record.DecodeTile(body)
		if err != nil {
			t.Errorf("decode tile: %v", err)
			return http.StatusOK, body
		}
		i, j, ok := samePrecertPair(len(leaves), func(k int) (bool, []byte) {
			l := leaves[k]
			if l.Type != record.PrecertEntry || len(l.ChainFingerprints) == 0 {
				return false, nil
			}
			return true, l.ChainFingerprints[0][:]
		})
		if !ok {
			t.Errorf("tile 1 has no two precertificates with one issuer")
			return http.StatusOK, body
		}
		// pre_certificate is the Cert, after its 3-byte length.
		at := func(c []byte) (int, int) {
			off := int(uintptr(unsafe.Pointer(unsafe.SliceData(c))) - uintptr(unsafe.Pointer(unsafe.SliceData(body))))
			return off - 3, off + len(c)
		}
		s, e := at(leaves[i].Cert)
		js, je := at(leaves[j].Cert)
		out := append(bytes.Clone(body[:s]), body[js:je]...)
		return http.StatusOK, append(out, body[e:]...)
	}
}

// swapRFCPrecert gives the first precertificate of the get-entries answer
// from 300 the extra_data of the next one with the same first chain
// certificate.
func swapRFCPrecert(t *testing.T) func(*http.Request, []byte) (int, []byte) {
	return func(r *http.Request, body []byte) (int, []byte) {
		if !strings.HasSuffix(r.URL.Path, "/get-entries") || r.URL.Query().Get("start") != "300" {
			return http.StatusOK, body
		}
		var resp struct {
			Entries []struct {
				LeafInput []byte `json:"leaf_input"`
				ExtraData []byte `json:"extra_data"`
			} `json:"entries"`
		}
		if err := json.Unmarshal(body, &resp); err != nil {
			t.Errorf("get-entries answer: %v", err)
			return http.StatusOK, body
		}
		i, j, ok := samePrecertPair(len(resp.Entries), func(k int) (bool, []byte) {
			e := resp.Entries[k]
			typ, _, chain, err := record.DecodeRFC6962(e.LeafInput, e.ExtraData)
			if err != nil || typ != record.PrecertEntry || len(chain) == 0 {
				return false, nil
			}
			return true, chain[0]
		})
		if !ok {
			t.Errorf("the answer from 300 has no two precertificates with one issuer")
			return http.StatusOK, body
		}
		resp.Entries[i].ExtraData = resp.Entries[j].ExtraData
		out, _ := json.Marshal(resp)
		return http.StatusOK, out
	}
}

// samePrecertPair finds the first precertificate i and the next one j with
// the same first chain certificate, among n entries described by at.
func samePrecertPair(n int, at func(int) (bool, []byte)) (int, int, bool) {
	for i := range n {
		pi, ci := at(i)
		if !pi {
			continue
		}
		for j := i + 1; j < n; j++ {
			if pj, cj := at(j); pj && bytes.Equal(ci, cj) {
				return i, j, true
			}
		}
	}
	return 0, 0, false
}

// FuzzPrecertTBS checks the precertificate check against ct-go's
// BuildPrecertTBS, the reference for what a log signs: for a generated
// precertificate (directly, or through a Precertificate Signing
// Certificate) the TBS it builds matches, any change to one byte of it does
// not, and arbitrary inputs never panic.
func FuzzPrecertTBS(f *testing.F) {
	g, err := ctlogtest.NewGenerator(ctlogtest.GeneratorOptions{})
	if err != nil {
		f.Fatal(err)
	}
	type precert struct {
		der, tbs []byte
		chain    [][]byte
	}
	var cases []precert
	for _, via := range []bool{false, true} {
		is, err := g.Issue(ctlogtest.LeafSpec{DNSNames: []string{"fuzz.example"}, Precert: true, ViaPrecertSigner: via})
		if err != nil {
			f.Fatal(err)
		}
		ptbs, ok := precertTBS(is.DER)
		if !ok {
			f.Fatal("generated precertificate without a TBSCertificate")
		}
		var pre *ctx509.Certificate
		if via {
			if pre, err = ctx509.ParseCertificate(is.Chain[0]); err != nil {
				f.Fatal(err)
			}
		}
		tbs, err := ctx509.BuildPrecertTBS(ptbs, pre)
		if err != nil {
			f.Fatal(err)
		}
		cases = append(cases, precert{is.DER, tbs, is.Chain})
	}
	f.Add(uint16(0), byte(0), []byte{}, []byte{})
	f.Add(uint16(100), byte(1), cases[0].der, cases[0].tbs)
	// The checks, read with derElement, answer as the same checks written
	// with cryptobyte (walkTBSMatches): withoutPoison and tbsMatches
	// without a signer, and tbsMatches with the signer of the second case.
	signer := newIssuerKeys().get(cases[1].chain[0])
	if !signer.precertSigner {
		f.Fatal("the second case's chain[0] is not a Precertificate Signing Certificate")
	}
	sameAsWalk := func(t *testing.T, what string, ptbs, tbs []byte) {
		want := walkTBSMatches(ptbs, tbs, nil)
		if got := withoutPoison(ptbs, tbs); got != want {
			t.Fatalf("%s: withoutPoison = %t, the walk %t", what, got, want)
		}
		if got := tbsMatches(ptbs, tbs, nil); got != want {
			t.Fatalf("%s: tbsMatches = %t, the walk %t", what, got, want)
		}
		if got, want := tbsMatches(ptbs, tbs, &signer), walkTBSMatches(ptbs, tbs, &signer); got != want {
			t.Fatalf("%s: tbsMatches with a signer = %t, the walk %t", what, got, want)
		}
		p1, ok1 := precertTBS(ptbs)
		p2, ok2 := precertTBSWalk(ptbs)
		if ok1 != ok2 || !bytes.Equal(p1, p2) {
			t.Fatalf("%s: precertTBS = %t, the walk %t", what, ok1, ok2)
		}
	}
	f.Fuzz(func(t *testing.T, pos uint16, x byte, der, tbs []byte) {
		k := newIssuerKeys()
		_ = k.checkPrecert(der, tbs, nil) // arbitrary input: no panic
		sameAsWalk(t, "arbitrary input", der, tbs)
		for i, c := range cases {
			if err := k.checkPrecert(c.der, c.tbs, c.chain); err != nil {
				t.Fatalf("case %d: the TBS BuildPrecertTBS makes is refused: %v", i, err)
			}
			m := bytes.Clone(c.tbs)
			m[int(pos)%len(m)] ^= x
			if err := k.checkPrecert(c.der, m, c.chain); err == nil && x != 0 {
				t.Fatalf("case %d: a TBS changed at %d accepted", i, int(pos)%len(m))
			}
			ptbs, _ := precertTBS(c.der)
			sameAsWalk(t, "changed TBS", ptbs, m)
			mp := bytes.Clone(ptbs)
			mp[int(pos)%len(mp)] ^= x
			sameAsWalk(t, "changed precertificate", mp, c.tbs)
			sameAsWalk(t, "arbitrary TBS", ptbs, tbs)
			sameAsWalk(t, "arbitrary precertificate", der, c.tbs)
		}
	})
}

// precertState, the check run while a static tile is read, gives
// checkPrecert's answer once the first chain certificate is known by its
// fingerprint, and asks for the chain (precertPending) before.
func TestPrecertStateAsCheckPrecert(t *testing.T) {
	g, err := ctlogtest.NewGenerator(ctlogtest.GeneratorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// timestamped is a precert_entry's TimestampedEntry around tbs.
	timestamped := func(tbs []byte) []byte {
		te := make([]byte, 42, 42+3+len(tbs)+2)
		te[9] = 1 // entry_type precert_entry
		te = append(te, byte(len(tbs)>>16), byte(len(tbs)>>8), byte(len(tbs)))
		return append(append(te, tbs...), 0, 0)
	}
	for _, via := range []bool{false, true} {
		is, err := g.Issue(ctlogtest.LeafSpec{DNSNames: []string{"state.example"}, Precert: true, ViaPrecertSigner: via})
		if err != nil {
			t.Fatal(err)
		}
		ptbs, _ := precertTBS(is.DER)
		var pre *ctx509.Certificate
		if via {
			if pre, err = ctx509.ParseCertificate(is.Chain[0]); err != nil {
				t.Fatal(err)
			}
		}
		signed, err := ctx509.BuildPrecertTBS(ptbs, pre)
		if err != nil {
			t.Fatal(err)
		}
		other := bytes.Clone(signed)
		other[len(other)/2] ^= 1
		fps := make([][32]byte, len(is.Chain))
		for i, c := range is.Chain {
			fps[i] = sha256.Sum256(c)
		}
		for _, tc := range []struct {
			name string
			tbs  []byte
			fps  [][32]byte
			want precertCheck // before chain[0] is known (after: checkPrecert's answer)
		}{
			{"signed TBS", signed, fps, map[bool]precertCheck{false: precertOK, true: precertPending}[via]},
			{"changed TBS", other, fps, precertPending},
			{"no chain", other, nil, precertBad},
			{"no TBS", nil, fps, precertBad},
		} {
			k := newIssuerKeys()
			te := timestamped(tc.tbs)
			if tc.tbs == nil {
				te = te[:44]
			}
			if got := k.precertState(is.DER, te, tc.fps); got != tc.want {
				t.Errorf("via signer %t, %s: precertState before the chain = %d, want %d", via, tc.name, got, tc.want)
			}
			var chain [][]byte
			if tc.fps != nil {
				chain = is.Chain
				k.getFP(fps[0], is.Chain[0])
			}
			want := precertOK
			if k.checkPrecert(is.DER, tc.tbs, chain) != nil {
				want = precertBad
			}
			if (tc.name == "signed TBS") != (want == precertOK) {
				t.Errorf("via signer %t, %s: checkPrecert accepts it: %t", via, tc.name, want == precertOK)
			}
			if got := k.precertState(is.DER, te, tc.fps); got != want {
				t.Errorf("via signer %t, %s: precertState with the chain known = %d, checkPrecert's answer is %d", via, tc.name, got, want)
			}
		}
	}
}

// BenchmarkPrecertCheck times the check of a precertificate against the TBS
// its log signed, directly and through a Precertificate Signing
// Certificate: withoutPoison (the fast path) against tbsMatches's walk.
func BenchmarkPrecertCheck(b *testing.B) {
	g, err := ctlogtest.NewGenerator(ctlogtest.GeneratorOptions{})
	if err != nil {
		b.Fatal(err)
	}
	for _, via := range []bool{false, true} {
		is, err := g.Issue(ctlogtest.LeafSpec{DNSNames: []string{"bench.example", "www.bench.example"}, Precert: true, ViaPrecertSigner: via})
		if err != nil {
			b.Fatal(err)
		}
		ptbs, _ := precertTBS(is.DER)
		var pre *ctx509.Certificate
		if via {
			if pre, err = ctx509.ParseCertificate(is.Chain[0]); err != nil {
				b.Fatal(err)
			}
		}
		tbs, err := ctx509.BuildPrecertTBS(ptbs, pre)
		if err != nil {
			b.Fatal(err)
		}
		name := map[bool]string{false: "direct", true: "signer"}[via]
		b.Run(name+"/walk", func(b *testing.B) {
			for b.Loop() {
				tbsMatches(ptbs, tbs, nil)
			}
		})
		b.Run(name+"/withoutPoison", func(b *testing.B) {
			for b.Loop() {
				withoutPoison(ptbs, tbs)
			}
		})
		k := newIssuerKeys()
		fps := [][32]byte{sha256.Sum256(is.Chain[0])}
		k.getFP(fps[0], is.Chain[0])
		te := make([]byte, 42, 42+3+len(tbs)+2)
		te[9] = 1
		te = append(te, byte(len(tbs)>>16), byte(len(tbs)>>8), byte(len(tbs)))
		te = append(append(te, tbs...), 0, 0)
		b.Run(name+"/precertState", func(b *testing.B) {
			for b.Loop() {
				if k.precertState(is.DER, te, fps) != precertOK {
					b.Fatal("not precertOK")
				}
			}
		})
	}
}

// The reference the checks of precert.go are tested against: the same
// checks written with cryptobyte, element by element.

// precertTBSWalk is precertTBS with cryptobyte.
func precertTBSWalk(der []byte) ([]byte, bool) {
	s := cryptobyte.String(der)
	var cert cryptobyte.String
	var tbs cryptobyte.String
	if !s.ReadASN1(&cert, asn1.SEQUENCE) || !cert.ReadASN1Element(&tbs, asn1.SEQUENCE) {
		return nil, false
	}
	return tbs, true
}

// walkTBSMatches reports whether tbs is ptbs without its poison extension: the
// same elements, and the same extensions in the same order but for exactly
// one poison extension. With pre (a Precertificate Signing Certificate),
// tbs's issuer must be pre's issuer and its authority key identifier pre's
// (or absent if pre has none), whatever ptbs has there. It walks both in
// step, allocating nothing: a log holds a precertificate in every other
// entry or so.
func walkTBSMatches(ptbs, tbs []byte, pre *issuerInfo) bool {
	a, ok1 := walkInside(ptbs, asn1.SEQUENCE)
	b, ok2 := walkInside(tbs, asn1.SEQUENCE)
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
			if seenExt || !walkSameExtensions(ea, eb, pre) {
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

// walkSameExtensions compares two [3] EXPLICIT Extensions elements: a's
// extensions must be b's with exactly one poison extension added, and
// with pre, the authority key identifiers as walkTBSMatches says.
func walkSameExtensions(a, b []byte, pre *issuerInfo) bool {
	extTag := asn1.Tag(3).ContextSpecific().Constructed()
	xa, ok1 := walkInside(a, extTag)
	xb, ok2 := walkInside(b, extTag)
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
			if pre != nil && walkExtensionIs(e, akiOID) {
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
		if ea != nil && !poisoned && walkExtensionIs(ea, poisonOID) {
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
func walkInside(der []byte, tag asn1.Tag) (cryptobyte.String, bool) {
	s := cryptobyte.String(der)
	var in cryptobyte.String
	if !s.ReadASN1(&in, tag) || !s.Empty() {
		return nil, false
	}
	return in, true
}

// extensionIs reports whether an Extension element has the OID whose DER
// is oid.
func walkExtensionIs(ext, oid []byte) bool {
	in, ok := walkInside(ext, asn1.SEQUENCE)
	return ok && bytes.HasPrefix(in, oid)
}
