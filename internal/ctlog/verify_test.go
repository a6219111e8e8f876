package ctlog

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/certlake/certlake/internal/ctlogtest"
	"github.com/certlake/certlake/internal/record"
)

// tamperProxy forwards requests to a real log and lets a test change the
// answers: a man in the middle, or a log that misbehaves.
type tamperProxy struct {
	mu       sync.Mutex
	upstream string                                           // scheme://host:port of the log; guarded by mu
	tamper   func(r *http.Request, body []byte) (int, []byte) // nil: honest
	// rewrite, if set, changes the request sent upstream.
	rewrite func(r *http.Request) string
}

// setUpstream sends the requests to another log from now on.
func (p *tamperProxy) setUpstream(u string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.upstream = u
}

func (p *tamperProxy) set(tamper func(r *http.Request, body []byte) (int, []byte)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tamper = tamper
}

func (p *tamperProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	upstream, tamper, rewrite := p.upstream, p.tamper, p.rewrite
	p.mu.Unlock()
	uri := r.URL.RequestURI()
	if rewrite != nil {
		uri = rewrite(r)
	}
	resp, err := http.Get(upstream + uri)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	status := resp.StatusCode
	if tamper != nil && status == http.StatusOK {
		status, body = tamper(r, body)
	}
	w.WriteHeader(status)
	w.Write(body)
}

// verifiedLog is a real in-process log behind a tampering proxy, with the
// certificates it holds.
type verifiedLog struct {
	log   *ctlogtest.Log
	proxy *tamperProxy
	url   string // the log's URL through the proxy
	certs []ctlogtest.Cert
	skip  int // generator certificates left out before the first logged
}

func startVerifiedLog(t *testing.T, static bool, n int) *verifiedLog {
	t.Helper()
	return startVerifiedLogWith(t, static, n, ctlogtest.Options{}, 0)
}

// startVerifiedLogWith is startVerifiedLog with options and skip
// certificates of the generator left out (to log others).
func startVerifiedLogWith(t *testing.T, static bool, n int, opts ctlogtest.Options, skip int) *verifiedLog {
	t.Helper()
	var l *ctlogtest.Log
	if static {
		l = ctlogtest.NewStaticTB(t, opts)
	} else {
		opts.MaxGetEntries = 100
		l = ctlogtest.NewRFC6962TB(t, opts)
	}
	v := &verifiedLog{log: l, skip: skip}
	v.add(t, n)
	v.proxy = &tamperProxy{upstream: hostOf(l.URL)}
	srv := httptest.NewServer(v.proxy)
	t.Cleanup(srv.Close)
	v.url = srv.URL + l.URL[len(hostOf(l.URL)):]
	return v
}

// hostOf is the scheme://host:port of a log's URL.
func hostOf(u string) string {
	return u[:strings.Index(u[len("http://"):], "/")+len("http://")]
}

func (v *verifiedLog) add(t *testing.T, n int) {
	t.Helper()
	gen, err := ctlogtest.NewGenerator(ctlogtest.GeneratorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for range v.skip + len(v.certs) { // fresh certificates after the ones logged
		if _, err := gen.Next(); err != nil {
			t.Fatal(err)
		}
	}
	if err := v.log.AddBulk(t.Context(), n, gen, func(c ctlogtest.Cert) { v.certs = append(v.certs, c) }); err != nil {
		t.Fatal(err)
	}
}

func (v *verifiedLog) reader(t *testing.T, m Metrics) Reader {
	cfg := testConfig(t)
	cfg.Metrics = m
	cfg.VerifyGroup = 128
	return New(Log{URL: v.url, Static: v.log.Static, Key: v.log.KeyDER(), Origin: v.log.Origin}, cfg)
}

// checkHonest checks that entries are exactly the logged certificates at
// their indices, from start on without a gap.
func (v *verifiedLog) checkHonest(t *testing.T, entries []record.Entry, start uint64) {
	t.Helper()
	for i, e := range entries {
		want := start + uint64(i)
		if e.Index != want {
			t.Fatalf("entry %d has index %d, want %d", i, e.Index, want)
		}
		if c := v.certByIndex(want); c == nil || !bytes.Equal(e.Cert, c.DER) {
			t.Fatalf("entry %d is not the certificate logged at %d", want, want)
		}
	}
}

func (v *verifiedLog) certByIndex(i uint64) *ctlogtest.Cert {
	for k := range v.certs {
		if v.certs[k].Index == i {
			return &v.certs[k]
		}
	}
	return nil
}

// wantVerificationFailure checks that f failed verification from start to
// end, after emitting exactly the honest entries before start.
func (v *verifiedLog) wantVerificationFailure(t *testing.T, f fetched, from, start, end uint64, reason string) {
	t.Helper()
	var re *RangeError
	if !errors.As(f.err, &re) || !errors.Is(f.err, ErrVerification) || re.Start != start || re.End != end {
		t.Fatalf("Entries = %v, want a verification RangeError [%d, %d]", f.err, start, end)
	}
	if !strings.Contains(f.err.Error(), reason) {
		t.Errorf("Entries = %v, want the reason to mention %q", f.err, reason)
	}
	if uint64(len(f.entries)+len(f.bad)) != start-from || len(f.bad) != 0 {
		t.Errorf("emitted %d entries and %d bad, want %d entries (the proven prefix)", len(f.entries), len(f.bad), start-from)
	}
	v.checkHonest(t, f.entries, from)
}

func TestVerifiedHonestLogs(t *testing.T) {
	for _, static := range []bool{true, false} {
		t.Run(kindName(static), func(t *testing.T) {
			const n = 700 // static: two full tiles and a partial one
			v := startVerifiedLog(t, static, n)
			m := &countingMetrics{}
			r := v.reader(t, m)
			size, err := r.TreeSize(t.Context())
			if err != nil || size != n {
				t.Fatalf("TreeSize = %d, %v, want %d", size, err, n)
			}
			for _, rg := range [][2]uint64{{0, n - 1}, {1, 1}, {255, 257}, {300, 650}, {n - 1, n - 1}} {
				f := fetchRange(t, r, rg[0], rg[1])
				if f.err != nil || len(f.bad) != 0 || uint64(len(f.entries)) != rg[1]-rg[0]+1 {
					t.Fatalf("Entries(%d, %d) = %d entries, %d bad, %v", rg[0], rg[1], len(f.entries), len(f.bad), f.err)
				}
				v.checkHonest(t, f.entries, rg[0])
			}
			// The log grows: the new head is checked against the old one.
			v.add(t, 300)
			if size, err = r.TreeSize(t.Context()); err != nil || size != n+300 {
				t.Fatalf("TreeSize after growth = %d, %v, want %d", size, err, n+300)
			}
			f := fetchRange(t, r, n-10, n+299)
			if f.err != nil || len(f.entries) != 310 {
				t.Fatalf("Entries across the growth = %d entries, %v", len(f.entries), f.err)
			}
			v.checkHonest(t, f.entries, n-10)
			if m.verification.Load() != 0 {
				t.Errorf("verification failures = %d, want 0", m.verification.Load())
			}
		})
	}
}

func kindName(static bool) string {
	if static {
		return "static"
	}
	return "rfc6962"
}

// leafSpans splits a data tile into its leaves' bytes.
func leafSpans(t *testing.T, tile []byte) [][]byte {
	t.Helper()
	leaves, err := record.DecodeTile(tile)
	if err != nil {
		t.Fatal(err)
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(tile)))
	var spans [][]byte
	for i := range leaves {
		start := int(uintptr(unsafe.Pointer(unsafe.SliceData(leaves[i].Timestamped))) - base)
		end := len(tile)
		if i+1 < len(leaves) {
			end = int(uintptr(unsafe.Pointer(unsafe.SliceData(leaves[i+1].Timestamped))) - base)
		}
		spans = append(spans, tile[start:end])
	}
	return spans
}

func TestVerifiedStaticTampering(t *testing.T) {
	const n = 700
	v := startVerifiedLog(t, true, n)
	tile0 := fetchBody(t, v.log.URL+"tile/data/000")
	cp := fetchBody(t, v.log.URL+"checkpoint")
	onPath := func(suffix string, f func([]byte) []byte) func(*http.Request, []byte) (int, []byte) {
		return func(r *http.Request, body []byte) (int, []byte) {
			if strings.HasSuffix(r.URL.Path, suffix) {
				return http.StatusOK, f(body)
			}
			return http.StatusOK, body
		}
	}
	for _, tc := range []struct {
		name   string
		tamper func(*http.Request, []byte) (int, []byte)
		start  uint64 // first index reported failed
		reason string
	}{
		{"wrongTileAtPath", onPath("/tile/data/001", func([]byte) []byte { return tile0 }), 256, "entry 256 (data tile 1) does not hash into the tree"},
		{"entryReplaced", onPath("/tile/data/001", func(b []byte) []byte {
			s := leafSpans(t, b)
			s[5] = s[6] // a well-formed leaf, at the wrong place
			return bytes.Join(s, nil)
		}), 256, "entry 261 (data tile 1) does not hash"},
		{"partialTileEntryReplaced", onPath("/tile/data/002.p/188", func(b []byte) []byte {
			s := leafSpans(t, b)
			s[7] = s[8]
			return bytes.Join(s, nil)
		}), 512, "entry 519 (data tile 2) does not hash"},
		{"level1TileChanged", onPath("/tile/1/000.p/2", func(b []byte) []byte {
			b = bytes.Clone(b)
			b[0] ^= 1
			return b
		}), 100, "do not give its root"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v.proxy.set(tc.tamper)
			defer v.proxy.set(nil)
			m := &countingMetrics{}
			r := v.reader(t, m)
			f := fetchRange(t, r, 100, 650)
			v.wantVerificationFailure(t, f, 100, tc.start, 650, tc.reason)
			if m.verification.Load() != 1 {
				t.Errorf("verification failures = %d, want 1", m.verification.Load())
			}
		})
	}

	t.Run("emptyTile", func(t *testing.T) {
		v.proxy.set(onPath("/tile/data/001", func([]byte) []byte { return nil }))
		defer v.proxy.set(nil)
		f := fetchRange(t, v.reader(t, nil), 100, 650)
		var re *RangeError
		if !errors.As(f.err, &re) || re.Start != 256 || errors.Is(f.err, ErrVerification) || len(f.entries) != 156 {
			t.Fatalf("Entries = %d entries, %v; want 156 and a failed fetch from 256", len(f.entries), f.err)
		}
		v.checkHonest(t, f.entries, 100)
	})

	headCases(t, v, cp, n)
}

// headCases runs the tree head cases common to both kinds of log. old is
// an honest tree head of size n, served by the log before it grew.
func headCases(t *testing.T, v *verifiedLog, old []byte, n uint64) {
	t.Run("badSignature", func(t *testing.T) {
		v.proxy.set(func(r *http.Request, b []byte) (int, []byte) {
			if isHead(r) {
				return http.StatusOK, corruptSignature(t, v.log.Static, b)
			}
			return http.StatusOK, b
		})
		defer v.proxy.set(nil)
		r := v.reader(t, nil)
		if _, err := r.TreeSize(t.Context()); !errors.Is(err, ErrVerification) || !strings.Contains(err.Error(), "signature") {
			t.Errorf("TreeSize = %v, want a bad signature", err)
		}
		f := fetchRange(t, r, 0, 10)
		if !errors.Is(f.err, ErrVerification) || len(f.entries) != 0 {
			t.Errorf("Entries = %d entries, %v; want none and the bad signature", len(f.entries), f.err)
		}
	})
	t.Run("inflatedHead", func(t *testing.T) {
		r := v.reader(t, nil)
		size, err := r.TreeSize(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		v.proxy.set(func(r *http.Request, b []byte) (int, []byte) {
			if isHead(r) {
				return http.StatusOK, inflate(t, v.log.Static, b, 1000)
			}
			return http.StatusOK, b
		})
		defer v.proxy.set(nil)
		if _, err := r.TreeSize(t.Context()); !errors.Is(err, ErrVerification) {
			t.Errorf("TreeSize of an inflated head = %v, want a verification failure", err)
		}
		// Nothing of the inflated head was kept.
		f := fetchRange(t, r, size-5, size-1)
		if f.err != nil || len(f.entries) != 5 {
			t.Errorf("Entries below the verified size = %d, %v", len(f.entries), f.err)
		}
		if f := fetchRange(t, r, size, size+5); !errors.Is(f.err, ErrVerification) {
			t.Errorf("Entries beyond the verified size = %v, want the inflated head rejected", f.err)
		}
	})
	t.Run("rolledBack", func(t *testing.T) {
		v.add(t, 10) // old is now behind
		m := &countingMetrics{}
		r := v.reader(t, m)
		if size, err := r.TreeSize(t.Context()); err != nil || size != n+10 {
			t.Fatalf("TreeSize = %d, %v, want %d", size, err, n+10)
		}
		v.proxy.set(func(r *http.Request, b []byte) (int, []byte) {
			if isHead(r) {
				return http.StatusOK, old
			}
			return http.StatusOK, b
		})
		defer v.proxy.set(nil)
		var ve *VerificationError
		if _, err := r.TreeSize(t.Context()); !errors.As(err, &ve) || !ve.Misbehaviour || !strings.Contains(err.Error(), "backwards") {
			t.Errorf("TreeSize of an older head = %v, want misbehaviour: tree size went backwards", err)
		}
		if m.verification.Load() != 1 {
			t.Errorf("verification failures = %d, want 1", m.verification.Load())
		}
	})
	t.Run("wrongOriginOrNoKey", func(t *testing.T) {
		if v.log.Static {
			r := New(Log{URL: v.url, Static: true, Key: v.log.KeyDER(), Origin: "elsewhere.example/log"}, testConfig(t))
			var ve *VerificationError
			if _, err := r.TreeSize(t.Context()); !errors.As(err, &ve) || !ve.Misbehaviour || !strings.Contains(err.Error(), "origin") {
				t.Errorf("TreeSize with another origin = %v, want misbehaviour naming the origin", err)
			}
		}
		r := New(Log{URL: v.url, Static: v.log.Static}, testConfig(t))
		if _, err := r.TreeSize(t.Context()); !errors.Is(err, ErrNoKey) || !strings.Contains(err.Error(), "verify: false") {
			t.Errorf("TreeSize without a key = %v, want ErrNoKey saying how to fix it", err)
		}
		if err := r.Entries(t.Context(), 0, 1, func(Batch) error { return nil }); !errors.Is(err, ErrNoKey) {
			t.Errorf("Entries without a key = %v, want ErrNoKey", err)
		}
	})
}

func isHead(r *http.Request) bool {
	return strings.HasSuffix(r.URL.Path, "/checkpoint") || strings.HasSuffix(r.URL.Path, "/get-sth")
}

// corruptSignature flips a bit of the signature of a checkpoint or STH.
func corruptSignature(t *testing.T, static bool, b []byte) []byte {
	t.Helper()
	if static {
		i := bytes.LastIndex(b, []byte(" "))
		sig, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b[i+1:])))
		if err != nil {
			t.Fatal(err)
		}
		sig[len(sig)-1] ^= 1
		return append(bytes.Clone(b[:i+1]), base64.StdEncoding.EncodeToString(sig)+"\n"...)
	}
	var sth map[string]any
	if err := json.Unmarshal(b, &sth); err != nil {
		t.Fatal(err)
	}
	sig, _ := base64.StdEncoding.DecodeString(sth["tree_head_signature"].(string))
	sig[len(sig)-1] ^= 1
	sth["tree_head_signature"] = base64.StdEncoding.EncodeToString(sig)
	out, _ := json.Marshal(sth)
	return out
}

// inflate raises the tree size of a checkpoint or STH by k, keeping its
// signature.
func inflate(t *testing.T, static bool, b []byte, k uint64) []byte {
	t.Helper()
	if static {
		lines := strings.SplitN(string(b), "\n", 3)
		size, _ := strconv.ParseUint(lines[1], 10, 64)
		return []byte(lines[0] + "\n" + strconv.FormatUint(size+k, 10) + "\n" + lines[2])
	}
	var sth map[string]any
	if err := json.Unmarshal(b, &sth); err != nil {
		t.Fatal(err)
	}
	sth["tree_size"] = sth["tree_size"].(float64) + float64(k)
	out, _ := json.Marshal(sth)
	return out
}

func fetchBody(t *testing.T, u string) []byte {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d, %v", u, resp.StatusCode, err)
	}
	return b
}

func TestVerifiedRFC6962Tampering(t *testing.T) {
	const n = 700
	v := startVerifiedLog(t, false, n)
	sth := fetchBody(t, v.log.URL+"ct/v1/get-sth")
	for _, tc := range []struct {
		name    string
		tamper  func(*http.Request, []byte) (int, []byte)
		rewrite func(*http.Request) string
	}{
		{name: "shiftedByOne", rewrite: func(r *http.Request) string {
			if !strings.HasSuffix(r.URL.Path, "/get-entries") {
				return r.URL.RequestURI()
			}
			q := r.URL.Query()
			s, _ := strconv.ParseUint(q.Get("start"), 10, 64)
			e, _ := strconv.ParseUint(q.Get("end"), 10, 64)
			if s < 256 {
				return r.URL.RequestURI()
			}
			return fmt.Sprintf("%s?start=%d&end=%d", r.URL.Path, s+1, e+1)
		}},
		{name: "entryReplaced", tamper: func(r *http.Request, b []byte) (int, []byte) {
			if !strings.HasSuffix(r.URL.Path, "/get-entries") || r.URL.Query().Get("start") != "300" {
				return http.StatusOK, b
			}
			var resp struct {
				Entries []json.RawMessage `json:"entries"`
			}
			if err := json.Unmarshal(b, &resp); err != nil || len(resp.Entries) < 5 {
				t.Errorf("get-entries answer: %v", err)
				return http.StatusOK, b
			}
			resp.Entries[3] = resp.Entries[4] // a well-formed entry at the wrong index
			out, _ := json.Marshal(resp)
			return http.StatusOK, out
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v.proxy.mu.Lock()
			v.proxy.tamper, v.proxy.rewrite = tc.tamper, tc.rewrite
			v.proxy.mu.Unlock()
			defer func() {
				v.proxy.mu.Lock()
				v.proxy.tamper, v.proxy.rewrite = nil, nil
				v.proxy.mu.Unlock()
			}()
			m := &countingMetrics{}
			r := v.reader(t, m)
			f := fetchRange(t, r, 100, 600)
			// Answers of 100 entries (aligned) make groups of at least
			// 128 from 100: [100, 255], [256, 399], ...; the group
			// holding the first tampered index fails.
			v.wantVerificationFailure(t, f, 100, 256, 600, "do not hash into the tree")
			if m.verification.Load() != 1 {
				t.Errorf("verification failures = %d, want 1", m.verification.Load())
			}
		})
	}
	headCases(t, v, sth, n)
}

// A precertificate's issuer_key_hash names its issuer's key: the first
// chain certificate's, or the second's after a Precertificate Signing
// Certificate.
func TestIssuerKeyHash(t *testing.T) {
	g, err := ctlogtest.NewGenerator(ctlogtest.GeneratorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	inter, root, pre := g.Intermediate(), g.Root(), g.PrecertSigner()
	ikh := sha256.Sum256(inter.RawSubjectPublicKeyInfo)
	for _, tc := range []struct {
		name  string
		chain [][]byte
		ok    bool
	}{
		{"issuer", [][]byte{inter.Raw, root.Raw}, true},
		{"precertSigner", [][]byte{pre.Raw, inter.Raw, root.Raw}, true},
		{"otherIssuer", [][]byte{root.Raw}, false},
		{"precertSignerAlone", [][]byte{pre.Raw}, false},
		{"noChain", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newIssuerKeys()
			var fps [][32]byte
			for _, c := range tc.chain {
				fps = append(fps, sha256.Sum256(c))
			}
			for i := range 2 { // the second time from the caches
				if err := k.check(ikh, tc.chain); (err == nil) != tc.ok {
					t.Errorf("check #%d = %v, want ok %t", i, err, tc.ok)
				}
				if err := k.checkFP(ikh, fps, tc.chain); (err == nil) != tc.ok {
					t.Errorf("checkFP #%d = %v, want ok %t", i, err, tc.ok)
				}
			}
		})
	}
}
