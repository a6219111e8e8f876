package record

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func FuzzDecodeRFC6962(f *testing.F) {
	for _, e := range fourEntries(f) {
		f.Add(e.LeafInput, e.ExtraData)
	}
	f.Add([]byte{}, []byte{})
	f.Add(leafInput(1, u24([]byte("TBS"))), append(u24([]byte("PRE")), u24(u24([]byte("C1")))...))
	f.Fuzz(func(t *testing.T, leaf, extra []byte) {
		typ, cert, chain, err := DecodeRFC6962(leaf, extra)
		if err != nil {
			return
		}
		if typ != X509Entry && typ != PrecertEntry {
			t.Fatalf("DecodeRFC6962() type %d without error", typ)
		}
		total := len(cert)
		for _, c := range chain {
			total += len(c)
		}
		if total > len(leaf)+len(extra) {
			t.Fatalf("DecodeRFC6962() returned %d bytes from %d", total, len(leaf)+len(extra))
		}
		checkBuild(t, Entry{Type: typ, Cert: cert, Chain: chain})
	})
}

func FuzzDecodeTile(f *testing.F) {
	// Seeds: the first three leaves of tesseract's tile, plain and gzipped,
	// and the partial navigli2025h2 tile (10 leaves).
	full := tesseractTile()
	end := 0
	for range 3 {
		_, n, err := decodeTileLeaf(full[end:])
		if err != nil {
			f.Fatal(err)
		}
		end += n
	}
	f.Add(full[:end])
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(full[:end])
	zw.Close()
	f.Add(gz.Bytes())
	for _, tile := range navigliTiles(f) {
		if tile.name == "003.p/10" {
			f.Add(tile.body)
		}
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		leaves, err := DecodeTile(data)
		var te *TileError
		if err != nil && (!errors.As(err, &te) || te.Leaf != len(leaves)) {
			t.Fatalf("DecodeTile() = %d leaves, error %v: want a *TileError at leaf %d", len(leaves), err, len(leaves))
		}
		if len(leaves) > TileWidth {
			t.Fatalf("DecodeTile() = %d leaves", len(leaves))
		}
		for i, l := range leaves {
			if l.Type != X509Entry && l.Type != PrecertEntry {
				t.Fatalf("leaf %d type %d", i, l.Type)
			}
			checkBuild(t, Entry{Index: uint64(i), Type: l.Type, Cert: l.Cert})
		}
	})
}

func FuzzBuild(f *testing.F) {
	for i, e := range fourEntries(f) {
		_, cert, chain, _ := DecodeRFC6962(e.LeafInput, e.ExtraData)
		f.Add(cert, []byte(nil))
		if i == 0 {
			f.Add(cert, chain[0])
		}
	}
	leaves, _ := DecodeTile(tesseractTile())
	f.Add(leaves[0].Cert, leaves[1].Cert)
	f.Add(certSpec{serial: []byte{0xff}, exts: [][]byte{
		extDER(oidExtSAN, false, sanDER(generalName{2, []byte("a.example")}, generalName{7, make([]byte, 16)})),
		extDER(oidExtBasicConstr, true, seq()),
		extDER(oidExtPolicies, false, seq(seq(tlv(6, []byte{0x69, 0x82, 0xe6, 0xd1, 0xa4, 0xb8, 0xf0, 0x8c, 0xb3, 0x9c, 0x87, 0x71})))),
	}}.der(), []byte{})
	f.Fuzz(func(t *testing.T, cert, chainCert []byte) {
		checkBuild(t, Entry{Type: X509Entry, Cert: cert, Chain: [][]byte{chainCert, cert}})
	})
}

// checkBuild builds e and checks the invariants every row must meet.
func checkBuild(t *testing.T, e Entry) {
	t.Helper()
	e.Seen = time.Unix(1700000000, 0)
	row, err := Build(e, Source{URL: "https://l.example", Name: "L"})
	if err != nil {
		if !errors.Is(err, ErrBadCertificate) {
			t.Fatalf("Build() error %v, want ErrBadCertificate", err)
		}
		return
	}
	if len(row.SHA1) != 59 || len(row.SHA256) != 95 || row.Fingerprint != row.SHA1 || row.SerialNumber == "" {
		t.Fatalf("Build() = sha1 %q, sha256 %q, serial %q", row.SHA1, row.SHA256, row.SerialNumber)
	}
	if row.AllDomains == nil || row.Chain == nil {
		t.Fatal("Build() returned a nil list")
	}
	for _, c := range row.Chain {
		if !json.Valid([]byte(c)) {
			t.Fatalf("chain element is not JSON: %s", c)
		}
	}
}
