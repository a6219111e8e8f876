package ctlog

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"testing"

	ct "github.com/google/certificate-transparency-go"
	"github.com/google/certificate-transparency-go/scanner"
	"github.com/transparency-dev/tesseract/testdata"
	"golang.org/x/crypto/cryptobyte"

	"github.com/certlake/certlake/internal/record"
)

// testEntry is one real captured log entry, decoded independently of the
// code under test: ct-go's RawLogEntryFromLeaf for scanner.FourEntries, a
// local walk of the tile format for tesseract's ExampleFullTile.
type testEntry struct {
	typ       record.EntryType
	cert      []byte   // the certificate, or for a precert the pre-certificate
	chain     [][]byte // chain DER, issuer first
	tbs       []byte   // precert only: the TBSCertificate of the leaf
	issuerKey [32]byte // precert only
	timestamp uint64
	leafInput string // RFC 6962 leaf_input as captured (FourEntries), or ""
	extraData string
}

var (
	corpusOnce sync.Once
	corpus     []testEntry // FourEntries, then the 256 precerts of ExampleFullTile
)

// testCorpus returns 260 distinct real entries. Tile precerts get chains
// made of FourEntries' chain certificates (their real issuers are not
// available), so issuers can be served with matching fingerprints.
func testCorpus(t testing.TB) []testEntry {
	if t != nil {
		t.Helper()
	}
	corpusOnce.Do(func() {
		var resp ct.GetEntriesResponse
		if err := json.Unmarshal([]byte(scanner.FourEntries), &resp); err != nil {
			panic(err)
		}
		var pool [][]byte
		seen := map[[32]byte]bool{}
		for i, e := range resp.Entries {
			raw, err := ct.RawLogEntryFromLeaf(int64(i), &e)
			if err != nil {
				panic(err)
			}
			te := testEntry{typ: record.X509Entry, cert: raw.Cert.Data, timestamp: raw.Leaf.TimestampedEntry.Timestamp,
				leafInput: base64.StdEncoding.EncodeToString(e.LeafInput), extraData: base64.StdEncoding.EncodeToString(e.ExtraData)}
			for _, c := range raw.Chain {
				te.chain = append(te.chain, c.Data)
				if fp := sha256.Sum256(c.Data); !seen[fp] {
					seen[fp] = true
					pool = append(pool, c.Data)
				}
			}
			corpus = append(corpus, te)
		}
		tile := splitTile(testdata.ExampleFullTile)
		var fps [][32]byte
		fpSeen := map[[32]byte]bool{}
		for _, l := range tile {
			for _, fp := range l.fps {
				if !fpSeen[fp] {
					fpSeen[fp] = true
					fps = append(fps, fp)
				}
			}
		}
		sort.Slice(fps, func(i, j int) bool { return bytes.Compare(fps[i][:], fps[j][:]) < 0 })
		issuerFor := map[[32]byte][]byte{}
		for i, fp := range fps {
			issuerFor[fp] = pool[i%len(pool)]
		}
		for _, l := range tile {
			te := testEntry{typ: l.typ, cert: l.cert, tbs: l.tbs, issuerKey: l.issuerKey, timestamp: l.timestamp}
			for _, fp := range l.fps {
				te.chain = append(te.chain, issuerFor[fp])
			}
			corpus = append(corpus, te)
		}
	})
	return corpus
}

// capturedLeaf is a tile leaf as walked by splitTile.
type capturedLeaf struct {
	typ       record.EntryType
	timestamp uint64
	issuerKey [32]byte
	tbs, cert []byte
	fps       [][32]byte
}

// splitTile walks a data tile (c2sp.org/static-ct-api, TileLeaf).
func splitTile(data []byte) []capturedLeaf {
	var out []capturedLeaf
	s := cryptobyte.String(data)
	for !s.Empty() {
		var l capturedLeaf
		var typ uint16
		var cert, tbs, ext, chain cryptobyte.String
		ok := s.ReadUint64(&l.timestamp) && s.ReadUint16(&typ)
		l.typ = record.EntryType(typ)
		switch {
		case ok && typ == 0:
			ok = s.ReadUint24LengthPrefixed(&cert) && s.ReadUint16LengthPrefixed(&ext)
		case ok && typ == 1:
			ok = s.CopyBytes(l.issuerKey[:]) && s.ReadUint24LengthPrefixed(&tbs) &&
				s.ReadUint16LengthPrefixed(&ext) && s.ReadUint24LengthPrefixed(&cert)
		default:
			ok = false
		}
		if !ok || !s.ReadUint16LengthPrefixed(&chain) {
			panic(fmt.Sprintf("splitTile: leaf %d malformed", len(out)))
		}
		l.cert, l.tbs = cert, tbs
		for !chain.Empty() {
			var fp [32]byte
			chain.CopyBytes(fp[:])
			l.fps = append(l.fps, fp)
		}
		out = append(out, l)
	}
	return out
}

// tileLeafBytes encodes e as a static-ct-api TileLeaf.
func (e testEntry) tileLeafBytes() []byte {
	b := cryptobyte.NewBuilder(nil)
	b.AddUint64(e.timestamp)
	b.AddUint16(uint16(e.typ))
	if e.typ == record.X509Entry {
		b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(e.cert) })
		b.AddUint16(0) // extensions
	} else {
		b.AddBytes(e.issuerKey[:])
		b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(e.tbs) })
		b.AddUint16(0) // extensions
		b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(e.cert) })
	}
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, c := range e.chain {
			fp := sha256.Sum256(c)
			b.AddBytes(fp[:])
		}
	})
	return b.BytesOrPanic()
}

// jsonEntry encodes e as a get-entries element (the captured bytes for
// FourEntries).
func (e testEntry) jsonEntry() getEntriesElem {
	if e.leafInput != "" {
		return getEntriesElem{LeafInput: e.leafInput, ExtraData: e.extraData}
	}
	leaf := cryptobyte.NewBuilder(nil)
	leaf.AddUint8(0) // version = v1
	leaf.AddUint8(0) // leaf_type = timestamped_entry
	leaf.AddUint64(e.timestamp)
	leaf.AddUint16(uint16(e.typ))
	extra := cryptobyte.NewBuilder(nil)
	if e.typ == record.X509Entry {
		leaf.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(e.cert) })
	} else {
		leaf.AddBytes(e.issuerKey[:])
		leaf.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(e.tbs) })
		extra.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(e.cert) })
	}
	leaf.AddUint16(0) // extensions
	extra.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, c := range e.chain {
			b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(c) })
		}
	})
	return getEntriesElem{
		LeafInput: base64.StdEncoding.EncodeToString(leaf.BytesOrPanic()),
		ExtraData: base64.StdEncoding.EncodeToString(extra.BytesOrPanic()),
	}
}

type getEntriesElem struct {
	LeafInput string `json:"leaf_input"`
	ExtraData string `json:"extra_data"`
}

// expectEntry is the entry a log built by the test servers holds at idx.
func expectEntry(t testing.TB, idx uint64) testEntry {
	c := testCorpus(t)
	return c[idx%uint64(len(c))]
}
