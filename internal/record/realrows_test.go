package record

import (
	"fmt"
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
