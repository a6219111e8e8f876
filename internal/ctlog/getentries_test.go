package ctlog

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/certificate-transparency-go/scanner"

	"github.com/certlake/certlake/internal/record"
)

// referenceGetEntries is what the reader did before parseGetEntries:
// encoding/json into getEntriesResponse.
func referenceGetEntries(body []byte) ([]entryText, error) { return decodeGetEntriesJSON(body) }

// checkSameAsJSON fails t unless parseGetEntries(body, nil) gives what
// encoding/json gives: the same strings, or an error for both.
func checkSameAsJSON(t *testing.T, body []byte) {
	t.Helper()
	want, wantErr := referenceGetEntries(body)
	got, err := parseGetEntries(body, nil)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("parseGetEntries(%.200q) error = %v, want %v (encoding/json)", body, err, wantErr)
	}
	if len(got) != len(want) {
		t.Fatalf("parseGetEntries(%.200q) = %d entries, want %d (encoding/json)", body, len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i].leaf, want[i].leaf) || !bytes.Equal(got[i].extra, want[i].extra) {
			t.Fatalf("parseGetEntries(%.200q) entry %d = {%.40q, %.40q}, want {%.40q, %.40q} (encoding/json)",
				body, i, got[i].leaf, got[i].extra, want[i].leaf, want[i].extra)
		}
	}
}

// getEntriesCases are bodies with whether the direct scanner must take
// them (the shape real logs send); all others go through encoding/json.
var getEntriesCases = []struct {
	name    string
	body    string
	scanned bool
}{
	{"compact", `{"entries":[{"leaf_input":"AAEC","extra_data":"AwQF"}]}`, true},
	{"two", `{"entries":[{"leaf_input":"AAEC","extra_data":"AwQF"},{"leaf_input":"Bg==","extra_data":""}]}`, true},
	{"keys swapped", `{"entries":[{"extra_data":"AwQF","leaf_input":"AAEC"}]}`, true},
	{"whitespace", " \r\n{ \"entries\" :\t[ { \"leaf_input\" : \"AAEC\" ,\n \"extra_data\" : \"AwQF\" } , {\"leaf_input\":\"\",\"extra_data\":\"\"} ] }\n ", true},
	{"empty list", `{"entries":[]}`, true},
	{"empty list spaced", `{ "entries" : [ ] }`, true},
	{"not base64 but plain", `{"entries":[{"leaf_input":"abc_=+/","extra_data":"9"}]}`, true},

	// Valid JSON of another shape: encoding/json decides.
	{"escaped slash", `{"entries":[{"leaf_input":"AA\/C","extra_data":"AwQF"}]}`, false},
	{"unicode escape", `{"entries":[{"leaf_input":"\u0041AEC","extra_data":"AwQF"}]}`, false},
	{"escaped newline", `{"entries":[{"leaf_input":"AAEC\nAAEC","extra_data":"AwQF"}]}`, false},
	{"extra key in entry", `{"entries":[{"leaf_input":"AAEC","extra_data":"AwQF","index":3}]}`, false},
	{"extra top-level key", `{"entries":[{"leaf_input":"AAEC","extra_data":"AwQF"}],"more":true}`, false},
	{"top-level key first", `{"more":{"x":[1,2]},"entries":[{"leaf_input":"AAEC","extra_data":"AwQF"}]}`, false},
	{"key case", `{"Entries":[{"LEAF_INPUT":"AAEC","Extra_Data":"AwQF"}]}`, false},
	{"duplicate key", `{"entries":[{"leaf_input":"AAEC","leaf_input":"AwQF","extra_data":""}]}`, false},
	{"duplicate entries", `{"entries":[{"leaf_input":"AAEC","extra_data":""}],"entries":[]}`, false},
	{"missing field", `{"entries":[{"leaf_input":"AAEC"}]}`, false},
	{"empty entry", `{"entries":[{}]}`, false},
	{"null entries", `{"entries":null}`, false},
	{"null entry", `{"entries":[null]}`, false},
	{"null field", `{"entries":[{"leaf_input":null,"extra_data":"AwQF"}]}`, false},
	{"null document", `null`, false},
	{"empty object", `{}`, false},
	{"utf8 in string", `{"entries":[{"leaf_input":"é","extra_data":""}]}`, false},

	// Not valid, or not the type: both must fail.
	{"empty", ``, false},
	{"only space", ` `, false},
	{"truncated", `{"entries":[{"leaf_input":"AAEC","extra_data":"AwQF"}`, false},
	{"truncated string", `{"entries":[{"leaf_input":"AAEC`, false},
	{"trailing garbage", `{"entries":[]}x`, false},
	{"two documents", `{"entries":[]}{"entries":[]}`, false},
	{"trailing comma", `{"entries":[{"leaf_input":"AAEC","extra_data":"AwQF"},]}`, false},
	{"missing comma", `{"entries":[{"leaf_input":"AAEC" "extra_data":"AwQF"}]}`, false},
	{"missing colon", `{"entries":[{"leaf_input" "AAEC","extra_data":"AwQF"}]}`, false},
	{"number field", `{"entries":[{"leaf_input":12,"extra_data":"AwQF"}]}`, false},
	{"array document", `[{"leaf_input":"AAEC","extra_data":"AwQF"}]`, false},
	{"entries object", `{"entries":{"leaf_input":"AAEC"}}`, false},
	{"control char", "{\"entries\":[{\"leaf_input\":\"AA\x01C\",\"extra_data\":\"\"}]}", false},
	{"bad escape", `{"entries":[{"leaf_input":"AA\qC","extra_data":""}]}`, false},
	{"single quotes", `{'entries':[]}`, false},
	{"html error page", `<html><body>502 Bad Gateway</body></html>`, false},
}

func TestParseGetEntriesMatchesEncodingJSON(t *testing.T) {
	for _, c := range getEntriesCases {
		t.Run(c.name, func(t *testing.T) {
			checkSameAsJSON(t, []byte(c.body))
			if _, ok := scanGetEntries([]byte(c.body), nil); ok != c.scanned {
				t.Errorf("scanGetEntries(%q) took it = %v, want %v", c.body, ok, c.scanned)
			}
		})
	}
}

// TestParseGetEntriesRealAnswer checks a captured get-entries answer
// (scanner.FourEntries) and the same re-encoded by encoding/json, both of
// which the scanner must take.
func TestParseGetEntriesRealAnswer(t *testing.T) {
	var resp getEntriesResponse
	if err := json.Unmarshal([]byte(scanner.FourEntries), &resp); err != nil {
		t.Fatal(err)
	}
	reencoded, err := json.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string][]byte{"captured": []byte(scanner.FourEntries), "re-encoded": reencoded} {
		t.Run(name, func(t *testing.T) {
			checkSameAsJSON(t, body)
			got, ok := scanGetEntries(body, nil)
			if !ok || len(got) != 4 {
				t.Errorf("scanGetEntries(%s) = %d entries, %v; want 4, true", name, len(got), ok)
			}
		})
	}
}

// FuzzParseGetEntries checks parseGetEntries against encoding/json on
// arbitrary bodies, and that the scanner takes only valid JSON.
func FuzzParseGetEntries(f *testing.F) {
	for _, c := range getEntriesCases {
		f.Add([]byte(c.body))
	}
	f.Add([]byte(scanner.FourEntries))
	f.Fuzz(func(t *testing.T, body []byte) {
		checkSameAsJSON(t, body)
		if _, ok := scanGetEntries(body, nil); ok && !json.Valid(body) {
			t.Fatalf("scanGetEntries took %q, which is not valid JSON", body)
		}
	})
}

// TestDecodeEntriesMatchesOnePerEntry checks the one-buffer decoding
// against decoding each string on its own, on real entries and on broken
// ones, and that no decoded slice can grow into its neighbour.
func TestDecodeEntriesMatchesOnePerEntry(t *testing.T) {
	var texts []entryText
	for _, e := range testCorpus(t)[:4] {
		texts = append(texts, entryText{leaf: []byte(e.leafInput), extra: []byte(e.extraData)})
	}
	good := texts[0]
	texts = append(texts,
		entryText{leaf: []byte("!!not base64!!"), extra: good.extra},
		entryText{leaf: good.leaf, extra: []byte("%%%")},
		entryText{leaf: []byte("AAAA"), extra: nil},                            // too short
		entryText{leaf: []byte("AAAAAAAAAAAAAAcAAAEw"), extra: []byte("AAAA")}, // entry type 7
		entryText{leaf: []byte("AAE"), extra: good.extra},                      // length not a multiple of 4
		entryText{leaf: []byte("AAEC\r\nAAEC"), extra: good.extra},             // newlines are skipped
		good,
	)
	const first = 1000
	var b Batch
	chains := &chainCache{}
	scratch := decodeEntries(&b, texts, first, nil, chains)
	// The entries must not alias scratch, which the next answer reuses.
	for i := range scratch[:cap(scratch)] {
		scratch[:cap(scratch)][i] = 0xee
	}

	var want Batch
	for i, tx := range texts {
		idx := first + uint64(i)
		ent, err := referenceDecode(idx, tx)
		if err != nil {
			want.Bad = append(want.Bad, BadEntry{Index: idx, Err: err})
			continue
		}
		want.Entries = append(want.Entries, ent)
	}
	if len(b.Entries) != len(want.Entries) || len(b.Bad) != len(want.Bad) {
		t.Fatalf("decodeEntries = %d entries, %d bad; want %d, %d", len(b.Entries), len(b.Bad), len(want.Entries), len(want.Bad))
	}
	for i, w := range want.Entries {
		g := b.Entries[i]
		if g.Index != w.Index || g.Type != w.Type || !bytes.Equal(g.Cert, w.Cert) || len(g.Chain) != len(w.Chain) {
			t.Fatalf("entry %d = {%d %d %d bytes, %d chain}, want {%d %d %d bytes, %d chain}",
				i, g.Index, g.Type, len(g.Cert), len(g.Chain), w.Index, w.Type, len(w.Cert), len(w.Chain))
		}
		for j := range w.Chain {
			if !bytes.Equal(g.Chain[j], w.Chain[j]) {
				t.Errorf("entry %d chain %d differs", g.Index, j)
			}
		}
	}
	for i, w := range want.Bad {
		g := b.Bad[i]
		if g.Index != w.Index || g.Err.Error() != w.Err.Error() {
			t.Errorf("bad %d = {%d %v}, want {%d %v}", i, g.Index, g.Err, w.Index, w.Err)
		}
	}

	// Appending to one entry's certificate must not touch the next one's
	// bytes in the shared buffer.
	next := bytes.Clone(b.Entries[1].Cert)
	for i := 0; i < len(b.Entries)-1; i++ {
		_ = append(b.Entries[i].Chain[len(b.Entries[i].Chain)-1], 0xff, 0xff, 0xff, 0xff)
	}
	if !bytes.Equal(b.Entries[1].Cert, next) {
		t.Errorf("appending to entry 0's last chain certificate changed entry 1's certificate")
	}

	// A second answer reuses scratch and shares the chain certificates
	// already seen.
	var b2 Batch
	if got := decodeEntries(&b2, texts, first, scratch, chains); &got[:1][0] != &scratch[:1][0] {
		t.Errorf("decodeEntries did not decode into the large enough scratch it was given")
	}
	if len(b2.Entries) != len(b.Entries) {
		t.Fatalf("second decodeEntries = %d entries, want %d", len(b2.Entries), len(b.Entries))
	}
	for i, e := range b2.Entries {
		for j, c := range e.Chain {
			if &c[0] != &b.Entries[i].Chain[j][0] {
				t.Errorf("entry %d chain %d: a second copy of a chain certificate already seen", e.Index, j)
			}
			if cap(c) != len(c) {
				t.Errorf("entry %d chain %d: cap %d, len %d; want an exact copy", e.Index, j, cap(c), len(c))
			}
		}
	}
}

// TestChainCacheBounded checks that the chain cache keeps at most
// maxChainCerts certificates and maxChainBytes bytes, and still returns
// equal copies beyond them.
func TestChainCacheBounded(t *testing.T) {
	cases := []struct {
		name        string
		n, certSize int
	}{
		{"many small", 3 * maxChainCerts, 100},
		{"few large", 20, maxChainBytes / 8},
		{"larger than the cache", 2, maxChainBytes + 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var cc chainCache
			for i := range c.n {
				der := bytes.Repeat([]byte{byte(i), byte(i >> 8)}, c.certSize/2+1)[:c.certSize]
				if got := cc.intern(der); !bytes.Equal(got, der) || &got[0] == &der[0] {
					t.Fatalf("intern(cert %d) = %d bytes, want an equal copy", i, len(got))
				}
				if len(cc.certs) > maxChainCerts || cc.size > maxChainBytes {
					t.Fatalf("after %d certificates the cache holds %d, %d bytes; want at most %d, %d",
						i+1, len(cc.certs), cc.size, maxChainCerts, maxChainBytes)
				}
			}
		})
	}
}

// referenceDecode decodes one element as the reader did before
// decodeEntries: a new buffer per string.
func referenceDecode(idx uint64, tx entryText) (record.Entry, error) {
	leaf, err := base64.StdEncoding.DecodeString(string(tx.leaf))
	if err != nil {
		return record.Entry{}, fmt.Errorf("entry %d: leaf_input: %w", idx, err)
	}
	extra, err := base64.StdEncoding.DecodeString(string(tx.extra))
	if err != nil {
		return record.Entry{}, fmt.Errorf("entry %d: extra_data: %w", idx, err)
	}
	typ, cert, chain, err := record.DecodeRFC6962(leaf, extra)
	if err != nil {
		return record.Entry{}, fmt.Errorf("entry %d: %w", idx, err)
	}
	return record.Entry{Index: idx, Type: typ, Cert: cert, Chain: chain}, nil
}

func TestReadCapped(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789"), 10_000) // 100 kB
	cases := []struct {
		name    string
		r       func() io.Reader
		size    int64
		buf     []byte
		limit   int64
		wantErr error
	}{
		{"known size", func() io.Reader { return bytes.NewReader(body) }, int64(len(body)), nil, 1 << 20, nil},
		{"unknown size", func() io.Reader { return bytes.NewReader(body) }, -1, nil, 1 << 20, nil},
		{"small reads", func() io.Reader { return iotest.OneByteReader(bytes.NewReader(body[:3000])) }, -1, nil, 1 << 20, nil},
		{"into a small buffer", func() io.Reader { return bytes.NewReader(body) }, -1, make([]byte, 7, 100), 1 << 20, nil},
		{"into a large buffer", func() io.Reader { return bytes.NewReader(body) }, int64(len(body)), make([]byte, 0, 1<<20), 1 << 20, nil},
		{"exactly the limit", func() io.Reader { return bytes.NewReader(body) }, -1, nil, int64(len(body)), nil},
		{"over the limit", func() io.Reader { return bytes.NewReader(body) }, -1, nil, int64(len(body)) - 1, errTooLarge},
		{"declared over the limit", func() io.Reader { return bytes.NewReader(body) }, int64(len(body)), nil, 1000, errTooLarge},
		{"empty", func() io.Reader { return bytes.NewReader(nil) }, 0, nil, 1000, nil},
		{"read error", func() io.Reader {
			return io.MultiReader(bytes.NewReader(body[:10]), iotest.ErrReader(io.ErrUnexpectedEOF))
		}, -1, nil, 1000, io.ErrUnexpectedEOF},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := readCapped(c.r(), c.limit, c.size, c.buf)
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("readCapped = %v, want %v", err, c.wantErr)
				}
				if errors.Is(c.wantErr, errTooLarge) && !errors.As(err, new(permanentError)) {
					t.Errorf("readCapped = %v, want a permanent error", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("readCapped = %v, want nil", err)
			}
			want := body
			if c.name == "small reads" {
				want = body[:3000]
			} else if c.name == "empty" {
				want = nil
			}
			if !bytes.Equal(got, want) {
				t.Errorf("readCapped = %d bytes, want %d", len(got), len(want))
			}
			if c.buf != nil && cap(c.buf) > len(want) && &got[0] != &c.buf[:1][0] {
				t.Errorf("readCapped did not read into the large enough buffer it was given")
			}
		})
	}
}

// TestGetEntriesBuffersReused checks that get-entries bodies are read into
// kept buffers: after a range is read, the fetcher holds a buffer, and
// entries read later are still intact (they never alias a body).
func TestGetEntriesBuffersReused(t *testing.T) {
	s := &rfcServer{size: 64, maxBatch: 8}
	r := New(Log{Unverified: true, URL: s.start(t)}, testConfig(t)).(*rfc6962)
	first := fetchRange(t, r, 0, 31)
	if first.err != nil {
		t.Fatal(first.err)
	}
	if len(r.f.buffers) == 0 {
		t.Errorf("after a range, the fetcher keeps no body buffer")
	}
	snapshot := make([][]byte, len(first.entries))
	for i, e := range first.entries {
		snapshot[i] = bytes.Clone(e.Cert)
	}
	if f := fetchRange(t, r, 32, 63); f.err != nil {
		t.Fatal(f.err)
	}
	for i, e := range first.entries {
		if !bytes.Equal(e.Cert, snapshot[i]) {
			t.Fatalf("entry %d changed after later answers were read", e.Index)
		}
	}
	if len(first.entries) != 32 {
		t.Errorf("Entries(0, 31) = %d entries, want 32", len(first.entries))
	}
	checkEntries(t, first.entries)
}

// BenchmarkParseGetEntries compares the scanner with encoding/json on a
// 256-entry answer of real entries.
func BenchmarkParseGetEntries(b *testing.B) {
	var resp getEntriesResponse
	for i := range 256 {
		e := testCorpus(b)[i%4]
		resp.Entries = append(resp.Entries, struct {
			LeafInput string `json:"leaf_input"`
			ExtraData string `json:"extra_data"`
		}{e.leafInput, e.extraData})
	}
	body, err := json.Marshal(resp)
	if err != nil {
		b.Fatal(err)
	}
	for name, parse := range map[string]func([]byte) ([]entryText, error){
		"scan":          func(body []byte) ([]entryText, error) { return parseGetEntries(body, nil) },
		"encoding-json": referenceGetEntries,
	} {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if texts, err := parse(body); err != nil || len(texts) != 256 {
					b.Fatalf("parse = %d entries, %v", len(texts), err)
				}
			}
		})
	}
}

// TestPlainText checks the eight-bytes-at-a-time test against a byte by
// byte one, for every byte value at every position of strings around the
// word size.
func TestPlainText(t *testing.T) {
	ref := func(v []byte) bool {
		for _, c := range v {
			if c < 0x20 || c >= 0x80 || c == '\\' {
				return false
			}
		}
		return true
	}
	for n := 1; n <= 17; n++ {
		for pos := range n {
			for c := range 256 {
				v := bytes.Repeat([]byte("A"), n)
				v[pos] = byte(c)
				if got, want := plainText(v), ref(v); got != want {
					t.Fatalf("plainText(%q) = %v, want %v", v, got, want)
				}
			}
		}
	}
	// Borrows between bytes must not hide or invent a bad byte.
	for _, v := range []string{"\x1f\x20\x20\x20\x20\x20\x20\x20", "\x20\x1f" + strings.Repeat("\x7f", 6), "ZZZZZZZ\x5c", "\x5d\x5b\x5c\x5d\x5d\x5d\x5d\x5d", "~~~~~~~~"} {
		if got, want := plainText([]byte(v)), ref([]byte(v)); got != want {
			t.Errorf("plainText(%q) = %v, want %v", v, got, want)
		}
	}
}
