package ctlog

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sync"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/certlake/certlake/internal/record"
)

// getEntriesResponse is the get-entries answer as encoding/json reads it.
// Fields are kept as strings so that one entry with bad base64 does not
// spoil the whole response.
type getEntriesResponse struct {
	Entries []struct {
		LeafInput string `json:"leaf_input"`
		ExtraData string `json:"extra_data"`
	} `json:"entries"`
}

// entryText is one get-entries element: the base64 text of its leaf_input
// and extra_data.
type entryText struct{ leaf, extra []byte }

// parseGetEntries returns the elements of a get-entries body, with the
// strings and the error (or its absence) that json.Unmarshal into
// getEntriesResponse gives. A body of the shape every log sends, exactly
// {"entries":[{"leaf_input":"...","extra_data":"..."},...]} with optional
// whitespace, the two keys in either order and strings of printable ASCII
// without backslashes (see plainText), is scanned directly and its strings alias
// body; encoding/json reads anything else (escapes, other keys, null, or
// malformed JSON), so the two paths never disagree. json.Unmarshal spent
// most of its time validating and copying ~2 KB of base64 per entry.
// The elements are appended to dst[:0], to reuse its array.
func parseGetEntries(body []byte, dst []entryText) ([]entryText, error) {
	if out, ok := scanGetEntries(body, dst); ok {
		return out, nil
	}
	return decodeGetEntriesJSON(body)
}

// decodeGetEntriesJSON decodes a get-entries answer with encoding/json: any
// shape the direct scan does not take (escapes, other keys, nulls) and the
// errors of malformed answers.
func decodeGetEntriesJSON(body []byte) ([]entryText, error) {
	var resp getEntriesResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, err
	}
	out := make([]entryText, len(resp.Entries))
	for i, e := range resp.Entries {
		out[i] = entryText{leaf: []byte(e.LeafInput), extra: []byte(e.ExtraData)}
	}
	return out, nil
}

// plainText reports whether a string's raw bytes are what encoding/json
// would decode them to: printable ASCII without a backslash (no escapes,
// no control characters, nothing non-ASCII that it might rewrite). Any
// such byte that base64 does not allow fails the decoding later, with the
// same error the JSON path gives. Eight bytes are checked at a time: the
// values are kilobytes of base64 per entry.
func plainText(v []byte) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	// bad flags, in each byte's high bit, a byte with its high bit set, a
	// byte below 0x20 or a byte equal to '\\'.
	bad := func(w uint64) uint64 {
		bs := w ^ ('\\' * ones)
		return (w | (w-0x20*ones)&^w | (bs-ones)&^bs) & highs
	}
	i := 0
	for ; i+32 <= len(v); i += 32 {
		u := v[i : i+32 : i+32]
		if bad(binary.LittleEndian.Uint64(u))|bad(binary.LittleEndian.Uint64(u[8:]))|
			bad(binary.LittleEndian.Uint64(u[16:]))|bad(binary.LittleEndian.Uint64(u[24:])) != 0 {
			return false
		}
	}
	for ; i+8 <= len(v); i += 8 {
		if bad(binary.LittleEndian.Uint64(v[i:])) != 0 {
			return false
		}
	}
	for ; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c >= 0x80 || c == '\\' {
			return false
		}
	}
	return true
}

// entriesScanner reads the usual get-entries shape; any deviation makes
// its methods return false.
type entriesScanner struct {
	b []byte
	i int
}

func (s *entriesScanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// punct consumes c after optional whitespace.
func (s *entriesScanner) punct(c byte) bool {
	s.space()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str reads a string of plain characters after optional whitespace.
func (s *entriesScanner) str() ([]byte, bool) {
	if !s.punct('"') {
		return nil, false
	}
	// Find the closing quote first (IndexByte is vectorized), then check
	// the characters before it in a loop without bounds checks.
	n := bytes.IndexByte(s.b[s.i:], '"')
	if n < 0 {
		return nil, false
	}
	v := s.b[s.i : s.i+n : s.i+n]
	if !plainText(v) {
		return nil, false
	}
	s.i += n + 1
	return v, true
}

// member reads `"key": "value"`.
func (s *entriesScanner) member() (key, val []byte, ok bool) {
	if key, ok = s.str(); !ok || !s.punct(':') {
		return nil, nil, false
	}
	val, ok = s.str()
	return key, val, ok
}

// entry reads {"leaf_input": ..., "extra_data": ...} in either order.
func (s *entriesScanner) entry() (entryText, bool) {
	var e entryText
	if !s.punct('{') {
		return e, false
	}
	var haveLeaf, haveExtra bool
	for i := range 2 {
		if i == 1 && !s.punct(',') {
			return e, false
		}
		k, v, ok := s.member()
		switch {
		case !ok:
			return e, false
		case string(k) == "leaf_input" && !haveLeaf:
			e.leaf, haveLeaf = v, true
		case string(k) == "extra_data" && !haveExtra:
			e.extra, haveExtra = v, true
		default:
			return e, false // another key, or one twice (the last would win)
		}
	}
	return e, s.punct('}')
}

// scanGetEntries appends the elements of a body of the usual shape to
// dst[:0], or returns false.
func scanGetEntries(body []byte, dst []entryText) ([]entryText, bool) {
	s := entriesScanner{b: body}
	if !s.punct('{') {
		return nil, false
	}
	if k, ok := s.str(); !ok || string(k) != "entries" || !s.punct(':') || !s.punct('[') {
		return nil, false
	}
	// Each element takes at least 30 bytes; sizing from that bounds
	// the allocation by the body while avoiding regrowth.
	out := dst[:0]
	if want := min(len(body)/30+1, 1024); cap(out) < want {
		out = make([]entryText, 0, want)
	}
	if !s.punct(']') {
		for {
			e, ok := s.entry()
			if !ok {
				return nil, false
			}
			out = append(out, e)
			if s.punct(']') {
				break
			}
			if !s.punct(',') {
				return nil, false
			}
		}
	}
	if !s.punct('}') {
		return nil, false
	}
	s.space()
	return out, s.i == len(s.b)
}

// decodeEntries base64-decodes texts (entries first, first+1, ...) and
// appends them to b as Entries (Seen left for the caller) or, when they do
// not decode, as BadEntries. The strings are decoded into scratch, which
// it returns (grown if it had to be) for the next answer: only the
// certificates are copied out, into one buffer of their size that the
// Entries alias, and the chain certificates come from chains. So an answer
// allocates little more than its certificates, and the leaf_input of a
// precertificate (its TBSCertificate) and the chains repeated in every
// extra_data are neither allocated nor held by the entries.
func decodeEntries(b *Batch, texts []entryText, first uint64, scratch []byte, chains *chainCache) []byte {
	scratch, _ = decodeEntriesChecked(b, texts, first, scratch, chains, nil)
	return scratch
}

// entryChecks are what verification adds to decoding get-entries: the
// leaf hash of every entry (into Batch.hashes, for the range proof), and
// for precertificates the issuer_key_hash against their chains and the
// precertificate against the TBSCertificate in the leaf.
type entryChecks struct {
	log  string
	lh   *treeHasher
	keys *issuerKeys
}

// decodeEntriesChecked is decodeEntries with checks, if not nil. A leaf
// that cannot be hashed or a precertificate whose chain does not hold its
// issuer makes it fail with a *VerificationError.
func decodeEntriesChecked(b *Batch, texts []entryText, first uint64, scratch []byte, chains *chainCache, checks *entryChecks) ([]byte, error) {
	size := 0
	for _, t := range texts {
		size += base64.StdEncoding.DecodedLen(len(t.leaf)) + base64.StdEncoding.DecodedLen(len(t.extra))
	}
	if cap(scratch) < size {
		scratch = make([]byte, size)
	}
	buf := scratch[:size]
	// decode decodes src into the front of buf and returns it.
	decode := func(src []byte) ([]byte, error) {
		dst := buf[:base64.StdEncoding.DecodedLen(len(src))]
		n, err := base64.StdEncoding.Decode(dst, src)
		if err != nil {
			return nil, err
		}
		out := dst[:n:n]
		buf = buf[n:]
		return out, nil
	}
	b.Entries = make([]record.Entry, 0, len(texts))
	if checks != nil {
		b.hashes = make([]tlog.Hash, 0, len(texts))
	}
	certSize := 0
	var pending []byte // the leaf before, while it waits to be hashed with this one
	for i, t := range texts {
		idx := first + uint64(i)
		leaf, err := decode(t.leaf)
		if err != nil {
			if checks != nil {
				return scratch, verificationErr(checks.log, "entry %d: leaf_input is not base64, so it cannot be proven: %v", idx, err)
			}
			b.Bad = append(b.Bad, BadEntry{Index: idx, Err: fmt.Errorf("entry %d: leaf_input: %w", idx, err)})
			continue
		}
		if checks != nil { // leaves are hashed in pairs
			if i%2 == 1 {
				b.hashes = append(b.hashes, tlog.Hash{}, tlog.Hash{})
				checks.lh.leaf2(pending, leaf, &b.hashes[i-1], &b.hashes[i])
			} else if i == len(texts)-1 {
				b.hashes = append(b.hashes, checks.lh.leaf(leaf))
			}
			pending = leaf
		}
		ent, err := decodeEntryCached(idx, leaf, t.extra, decode, chains)
		if err != nil {
			b.Bad = append(b.Bad, BadEntry{Index: idx, Err: err})
			continue
		}
		if checks != nil && ent.Type == record.PrecertEntry {
			// MerkleTreeLeaf: version(1) leaf_type(1) timestamp(8)
			// entry_type(2) issuer_key_hash(32) ...
			if len(leaf) < 44 {
				return scratch, verificationErr(checks.log, "entry %d: precert_entry leaf of %d bytes has no issuer_key_hash", idx, len(leaf))
			}
			if err := checks.keys.check([32]byte(leaf[12:44]), ent.Chain); err != nil {
				return scratch, verificationErr(checks.log, "entry %d: %v", idx, err)
			}
			// The leaf covers the TBSCertificate; the row is made of the
			// precertificate in extra_data, which must be its source.
			if tbs, ok := timestampedTBS(leaf[2:]); !ok {
				return scratch, verificationErr(checks.log, "entry %d: precert_entry leaf without its tbs_certificate", idx)
			} else if err := checks.keys.checkPrecert(ent.Cert, tbs, ent.Chain); err != nil {
				return scratch, verificationErr(checks.log, "entry %d: %v", idx, err)
			}
		}
		b.Entries = append(b.Entries, ent)
		certSize += len(ent.Cert)
	}
	// Out of scratch, each capped so that no append can reach the next
	// entry's bytes.
	certs := make([]byte, certSize)
	for i := range b.Entries {
		e := &b.Entries[i]
		n := copy(certs, e.Cert)
		e.Cert, certs = certs[:n:n], certs[n:]
	}
	return scratch, nil
}

// decodeEntryCached is decodeEntry with the chain from chains: an
// x509_entry's extra_data is its chain alone, the same text in every entry
// a given issuer signed, so the text already seen is not decoded again and
// its entries share one chain list. A precert_entry's extra_data starts
// with the precertificate itself and is decoded every time.
func decodeEntryCached(idx uint64, leaf, extraText []byte, decode func([]byte) ([]byte, error), chains *chainCache) (record.Entry, error) {
	x509 := len(leaf) >= 12 && record.EntryType(uint16(leaf[10])<<8|uint16(leaf[11])) == record.X509Entry
	if x509 {
		if chain, ok := chains.list(extraText); ok {
			typ, cert, _, err := record.DecodeRFC6962(leaf, nil)
			if err != nil {
				return record.Entry{}, fmt.Errorf("entry %d: %w", idx, err)
			}
			return record.Entry{Index: idx, Type: typ, Cert: cert, Chain: chain}, nil
		}
	}
	extra, err := decode(extraText)
	if err != nil {
		return record.Entry{}, fmt.Errorf("entry %d: extra_data: %w", idx, err)
	}
	typ, cert, chain, err := record.DecodeRFC6962(leaf, extra)
	if err != nil {
		return record.Entry{}, fmt.Errorf("entry %d: %w", idx, err)
	}
	for j, c := range chain {
		chain[j] = chains.intern(c)
	}
	chain = chain[:len(chain):len(chain)]
	if x509 {
		chains.keepList(extraText, chain)
	}
	return record.Entry{Index: idx, Type: typ, Cert: cert, Chain: chain}, nil
}

// chainCache holds one copy of each chain certificate recently seen in a
// log's get-entries answers: a log repeats the same few issuers in every
// extra_data, and entries share the copy instead of each holding its own
// (as static-ct-api entries share their issuers). It is safe for
// concurrent use.
type chainCache struct {
	mu    sync.Mutex
	certs map[string][]byte // DER -> the shared copy; guarded by mu
	size  int               // bytes in certs; guarded by mu
	// lists maps the extra_data text of x509_entries to their chain
	// (elements from certs); listBytes counts the keys' bytes. Guarded
	// by mu.
	lists     map[string][][]byte
	listBytes int
}

// Bounds of a chainCache; when either would be exceeded, it is emptied
// and refilled with the issuers in use.
const (
	maxChainCerts = 1024
	maxChainBytes = 4 << 20
)

// list returns the chain of an x509_entry whose extra_data text is extra,
// if it was kept.
func (c *chainCache) list(extra []byte) ([][]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l, ok := c.lists[string(extra)]
	return l, ok
}

// keepList keeps chain as the chain of x509_entries whose extra_data text
// is extra. Within the bounds of certs: when they would be exceeded, the
// lists are emptied.
func (c *chainCache) keepList(extra []byte, chain [][]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(extra) > maxChainBytes/4 {
		return
	}
	if c.lists == nil || len(c.lists) >= maxChainCerts || c.listBytes+len(extra) > maxChainBytes {
		c.lists, c.listBytes = map[string][][]byte{}, 0
	}
	c.lists[string(extra)] = chain
	c.listBytes += len(extra)
}

// intern returns the shared copy of der, which it makes if there is none.
// The copy's capacity is its length, so appending to it reallocates.
func (c *chainCache) intern(der []byte) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.certs[string(der)]; ok {
		return v
	}
	v := make([]byte, len(der))
	copy(v, der)
	if c.certs == nil || len(c.certs) >= maxChainCerts || c.size+len(v) > maxChainBytes {
		c.certs, c.size = map[string][]byte{}, 0
	}
	if len(v) <= maxChainBytes {
		c.certs[string(v)] = v
		c.size += len(v)
	}
	return v
}
