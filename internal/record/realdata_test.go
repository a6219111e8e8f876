package record

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/certificate-transparency-go/scanner"
	tesseractdata "github.com/transparency-dev/tesseract/testdata"
)

// rfc6962Entry is one element of a get-entries response, base64-decoded.
type rfc6962Entry struct {
	LeafInput []byte `json:"leaf_input"`
	ExtraData []byte `json:"extra_data"`
}

// fourEntries returns the four real log entries of ct-go's scanner.FourEntries.
func fourEntries(t testing.TB) []rfc6962Entry {
	t.Helper()
	var resp struct {
		Entries []rfc6962Entry `json:"entries"`
	}
	if err := json.Unmarshal([]byte(scanner.FourEntries), &resp); err != nil {
		t.Fatalf("unmarshal scanner.FourEntries: %v", err)
	}
	if len(resp.Entries) != 4 {
		t.Fatalf("scanner.FourEntries holds %d entries, want 4", len(resp.Entries))
	}
	return resp.Entries
}

// tesseractTile returns tesseract's ExampleFullTile: 256 real precerts.
func tesseractTile() []byte { return tesseractdata.ExampleFullTile }

// navigliTile is one data tile of sunlight's navigli2025h2 test log.
type navigliTile struct {
	name   string // path under tile/data/
	n      uint64 // tile number
	body   []byte // as stored in testdata (gzip for full tiles)
	sha256 string // of the uncompressed tile
}

// navigliTiles reads the navigli2025h2 tiles copied into testdata (see the
// README there), checking each against the digest of the original.
func navigliTiles(t testing.TB) []navigliTile {
	t.Helper()
	tiles := []navigliTile{
		{"000", 0, nil, "bf346f40c0a7ea24ba772eb41c7af6e0c7e2f1133e59a51e5f5868e631fca150"},
		{"001", 1, nil, "480ead5ef5c53a8f20bcc9e9894c14bbabfa7dc7e974602fe499284c233bfc75"},
		{"002", 2, nil, "e454336cf40f1c758849538eae1e3dd38a8d652308bb2a5a2fe8ff1b07e5cf6b"},
		{"003", 3, nil, "b627484a26afeccdaabbe114291b7ae26e5edf975ac38fd7e709e27a96f4d92c"},
		{"003.p/10", 3, nil, "9c696be7ee1df84ad841a6946bbe6305e4e491060630c528f7a49c4cb67e48e6"},
	}
	for i := range tiles {
		file := tiles[i].name + ".gz"
		if tiles[i].name == "003.p/10" {
			file = "003.p.10"
		}
		body, err := os.ReadFile(filepath.Join("testdata", "navigli2025h2", file))
		if err != nil {
			t.Fatal(err)
		}
		plain := body
		if bytes.HasPrefix(body, []byte{0x1f, 0x8b}) {
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err != nil {
				t.Fatalf("gunzip %s: %v", file, err)
			}
			if plain, err = io.ReadAll(zr); err != nil {
				t.Fatalf("gunzip %s: %v", file, err)
			}
		}
		if sum := sha256.Sum256(plain); hex.EncodeToString(sum[:]) != tiles[i].sha256 {
			t.Fatalf("sha256 of tile %s = %x, want %s", tiles[i].name, sum, tiles[i].sha256)
		}
		tiles[i].body = body
	}
	return tiles
}
