package record

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"testing"

	"filippo.io/sunlight"
	ct "github.com/google/certificate-transparency-go"
)

func TestDecodeRFC6962FourEntries(t *testing.T) {
	for i, e := range fourEntries(t) {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			typ, cert, chain, err := DecodeRFC6962(e.LeafInput, e.ExtraData)
			if err != nil {
				t.Fatalf("DecodeRFC6962(entry %d) error %v", i, err)
			}
			// ct-go's own decoder is the independent reference.
			raw, err := ct.RawLogEntryFromLeaf(int64(i), &ct.LeafEntry{LeafInput: e.LeafInput, ExtraData: e.ExtraData})
			if err != nil {
				t.Fatalf("ct.RawLogEntryFromLeaf: %v", err)
			}
			if want := EntryType(raw.Leaf.TimestampedEntry.EntryType); typ != want {
				t.Errorf("type = %d, want %d", typ, want)
			}
			if !bytes.Equal(cert, raw.Cert.Data) {
				t.Errorf("cert = %d bytes, want the %d bytes ct-go decoded", len(cert), len(raw.Cert.Data))
			}
			if len(chain) != len(raw.Chain) {
				t.Fatalf("chain has %d certificates, want %d", len(chain), len(raw.Chain))
			}
			for j := range chain {
				if !bytes.Equal(chain[j], raw.Chain[j].Data) {
					t.Errorf("chain[%d] differs from ct-go's", j)
				}
			}
		})
	}
}

// leafInput builds a MerkleTreeLeaf of the given entry type around body.
func leafInput(typ uint16, body []byte) []byte {
	b := []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, byte(typ >> 8), byte(typ)}
	return append(b, body...)
}

func u24(b []byte) []byte {
	return append([]byte{byte(len(b) >> 16), byte(len(b) >> 8), byte(len(b))}, b...)
}

func TestDecodeRFC6962Rules(t *testing.T) {
	cert := []byte("CERT")
	pre := []byte("PRECERT")
	c1, c2 := []byte("C1"), []byte("C2-longer")
	chainBody := append(u24(c1), u24(c2)...)
	tests := []struct {
		name      string
		leaf      []byte
		extra     []byte
		wantType  EntryType
		wantCert  []byte
		wantChain [][]byte
		wantErr   error // nil: success; errTruncated or ErrSkippedEntryType
	}{
		{"x509", leafInput(0, u24(cert)), u24(chainBody), X509Entry, cert, [][]byte{c1, c2}, nil},
		{"x509 trailing extensions ignored", leafInput(0, append(u24(cert), 0, 0)), nil, X509Entry, cert, nil, nil},
		{"x509 total length ignored", leafInput(0, u24(cert)), append([]byte{0, 0, 1}, chainBody...), X509Entry, cert, [][]byte{c1, c2}, nil},
		{"x509 chain stops at overlong element", leafInput(0, u24(cert)), append(u24(chainBody), 0, 0, 9, 1), X509Entry, cert, [][]byte{c1, c2}, nil},
		{"x509 chain ignores tail under 4 bytes", leafInput(0, u24(cert)), append(u24(chainBody), 0, 0, 0), X509Entry, cert, [][]byte{c1, c2}, nil},
		{"x509 empty chain element kept", leafInput(0, u24(cert)), u24(append([]byte{0, 0, 0}, u24(c1)...)), X509Entry, cert, [][]byte{{}, c1}, nil},
		{"x509 short extra_data", leafInput(0, u24(cert)), []byte{0, 0}, X509Entry, cert, nil, nil},
		{"precert uses pre_certificate", leafInput(1, u24([]byte("TBS"))), append(u24(pre), u24(chainBody)...), PrecertEntry, pre, [][]byte{c1, c2}, nil},
		{"precert no chain", leafInput(1, u24([]byte("TBS"))), u24(pre), PrecertEntry, pre, nil, nil},
		{"leaf shorter than 15", leafInput(0, []byte{0, 0}), nil, 0, nil, nil, errTruncated},
		{"x509 length past end", leafInput(0, []byte{0, 0, 9, 1, 2}), nil, 0, nil, nil, errTruncated},
		{"precert missing", leafInput(1, []byte{0, 0, 0}), nil, 0, nil, nil, errTruncated},
		{"precert overlong", leafInput(1, []byte{0, 0, 0}), []byte{0, 0, 5, 1}, 0, nil, nil, errTruncated},
		{"type 2 skipped", leafInput(2, u24(cert)), nil, 0, nil, nil, ErrSkippedEntryType},
		{"type 256 skipped", leafInput(256, u24(cert)), nil, 0, nil, nil, ErrSkippedEntryType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			typ, cert, chain, err := DecodeRFC6962(tt.leaf, tt.extra)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("DecodeRFC6962() error = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeRFC6962() error = %v", err)
			}
			if typ != tt.wantType || !bytes.Equal(cert, tt.wantCert) {
				t.Errorf("DecodeRFC6962() = %d, %q, want %d, %q", typ, cert, tt.wantType, tt.wantCert)
			}
			if fmt.Sprintf("%q", chain) != fmt.Sprintf("%q", tt.wantChain) {
				t.Errorf("DecodeRFC6962() chain = %q, want %q", chain, tt.wantChain)
			}
		})
	}
}

// checkTileAgainstSunlight decodes tile with DecodeTile and with sunlight's
// ReadTileLeaf and compares every leaf.
func checkTileAgainstSunlight(t *testing.T, body []byte, wantLeaves int) []TileLeaf {
	t.Helper()
	leaves, err := DecodeTile(body)
	if err != nil {
		t.Fatalf("DecodeTile() error %v", err)
	}
	if len(leaves) != wantLeaves {
		t.Fatalf("DecodeTile() = %d leaves, want %d", len(leaves), wantLeaves)
	}
	plain := body
	if bytes.HasPrefix(body, []byte{0x1f, 0x8b}) {
		plain, _ = gunzip(body)
	}
	for i := range leaves {
		e, rest, err := sunlight.ReadTileLeafMaybeArchival(plain)
		if err != nil {
			t.Fatalf("sunlight.ReadTileLeaf(leaf %d): %v", i, err)
		}
		plain = rest
		want, wantType := e.Certificate, X509Entry
		if e.IsPrecert {
			want, wantType = e.PreCertificate, PrecertEntry
		}
		if leaves[i].Type != wantType || !bytes.Equal(leaves[i].Cert, want) {
			t.Errorf("leaf %d = type %d, %d bytes, want type %d, %d bytes", i, leaves[i].Type, len(leaves[i].Cert), wantType, len(want))
		}
		if fmt.Sprint(leaves[i].ChainFingerprints) != fmt.Sprint(e.ChainFingerprints) {
			t.Errorf("leaf %d chain fingerprints = %x, want %x", i, leaves[i].ChainFingerprints, e.ChainFingerprints)
		}
	}
	if len(plain) != 0 {
		t.Errorf("sunlight left %d bytes after %d leaves", len(plain), len(leaves))
	}
	return leaves
}

func TestDecodeTileTesseract(t *testing.T) {
	leaves := checkTileAgainstSunlight(t, tesseractTile(), 256)
	for i, l := range leaves {
		if l.Type != PrecertEntry {
			t.Errorf("leaf %d type = %d, want precert", i, l.Type)
		}
	}
}

func TestDecodeTileNavigli(t *testing.T) {
	total := 0
	for _, tile := range navigliTiles(t) {
		t.Run(tile.name, func(t *testing.T) {
			want := 256
			if tile.name == "003.p/10" {
				want = 10
			}
			total += len(checkTileAgainstSunlight(t, tile.body, want))
		})
	}
	if total != 1034 {
		t.Errorf("navigli2025h2 tiles hold %d leaves, want 1034", total)
	}
}

func TestDecodeTileMalformed(t *testing.T) {
	full := tesseractTile()
	leaves, err := DecodeTile(full)
	if err != nil {
		t.Fatal(err)
	}
	// Byte offsets of the leaves, from the sizes sunlight sees.
	var offsets []int
	for rest := full; len(rest) > 0; {
		offsets = append(offsets, len(full)-len(rest))
		_, r, err := sunlight.ReadTileLeafMaybeArchival(rest)
		if err != nil {
			t.Fatal(err)
		}
		rest = r
	}
	corrupt := func(at int, b byte) []byte {
		c := bytes.Clone(full)
		c[at] = b
		return c
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(full[:offsets[7]+20])
	zw.Close()
	tests := []struct {
		name     string
		body     []byte
		wantLeaf int // position of the first leaf lost; -1: no error
	}{
		{"whole", full, -1},
		{"empty", nil, -1},
		{"truncated inside leaf 100", full[:offsets[100]+50], 100},
		{"truncated after leaf 99", full[:offsets[100]], -1},
		{"unknown entry type at leaf 3", corrupt(offsets[3]+9, 2), 3},
		{"chain length not multiple of 32 at leaf 255", corrupt(len(full)-2-len(leaves[255].ChainFingerprints)*32+1, 0x21), 255},
		{"257 leaves", append(bytes.Clone(full), full[:offsets[1]]...), 256},
		{"gzip truncated inside leaf 7", gz.Bytes(), 7},
		{"bad gzip falls back to raw body", []byte{0x1f, 0x8b, 0, 0}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeTile(tt.body)
			if tt.wantLeaf < 0 {
				if err != nil {
					t.Fatalf("DecodeTile() error %v", err)
				}
				return
			}
			var te *TileError
			if !errors.As(err, &te) {
				t.Fatalf("DecodeTile() error = %v, want a *TileError", err)
			}
			if te.Leaf != tt.wantLeaf || len(got) != tt.wantLeaf {
				t.Fatalf("DecodeTile() = %d leaves, error at leaf %d (%v), want %d and %d", len(got), te.Leaf, err, tt.wantLeaf, tt.wantLeaf)
			}
			if tt.wantLeaf < len(offsets) && tt.name != "gzip truncated inside leaf 7" && tt.name != "257 leaves" && te.Offset != offsets[tt.wantLeaf] {
				t.Errorf("TileError.Offset = %d, want %d", te.Offset, offsets[tt.wantLeaf])
			}
			for i := range got {
				if !bytes.Equal(got[i].Cert, leaves[i].Cert) {
					t.Errorf("leaf %d differs from the intact tile's", i)
				}
			}
		})
	}
}
