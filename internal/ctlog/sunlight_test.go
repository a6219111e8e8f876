package ctlog

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/certlake/certlake/internal/record"
)

// TestStaticRealSunlightTiles reads the real tiles of Sunlight's navigli2025h2
// test data (shipped in the filippo.io/sunlight module): three full tiles
// plus the partial 003.p/10 at size 778, and four full tiles at size 1024.
// The log's issuers are not shipped, so every entry whose chain needs one
// must come back as a BadEntry naming the 404, never vanish.
func TestStaticRealSunlightTiles(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "filippo.io/sunlight").Output()
	if err != nil {
		t.Skipf("locate filippo.io/sunlight: %v", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "testdata", "navigli2025h2")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("sunlight test data: %v", err)
	}
	for _, size := range []uint64{256*3 + 10, 256 * 4} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			var mu sync.Mutex
			hits := map[string]int{}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				hits[r.URL.Path]++
				mu.Unlock()
				if r.URL.Path == "/checkpoint" {
					fmt.Fprintf(w, "navigli2025h2.skylight.geomys.org\n%d\nAAAA\n\n— sig\n", size)
					return
				}
				http.ServeFile(w, r, filepath.Join(dir, filepath.FromSlash(r.URL.Path)))
			}))
			defer srv.Close()
			r := New(Log{Unverified: true, URL: srv.URL, Static: true}, testConfig(t))
			f := fetchRange(t, r, 0, size-1)
			if f.err != nil {
				t.Fatalf("Entries(0, %d) = %v", size-1, f.err)
			}
			if got := len(f.entries) + len(f.bad); got != int(size) {
				t.Errorf("entries + bad = %d, want %d", got, size)
			}
			// Independent count of leaves that need an issuer.
			var needIssuer int
			for tile := uint64(0); tile*256 < size; tile++ {
				p := "tile/data/" + record.TilePath(tile)
				if w := size - tile*256; w < 256 {
					p += fmt.Sprintf(".p/%d", w)
				}
				data, err := os.ReadFile(filepath.Join(dir, p))
				if err != nil {
					t.Fatal(err)
				}
				for _, l := range splitTile(data) {
					if len(l.fps) > 0 {
						needIssuer++
					}
				}
				if hits["/"+p] != 1 {
					t.Errorf("requests for %s = %d, want 1", p, hits["/"+p])
				}
			}
			if len(f.bad) != needIssuer {
				t.Errorf("bad = %d, want %d (entries with an unavailable issuer)", len(f.bad), needIssuer)
			}
			t.Logf("size %d: %d entries, %d bad (issuer not shipped), %d issuer requests", size, len(f.entries), len(f.bad), countPrefix(hits, "/issuer/"))
			for _, b := range f.bad {
				if !errors.Is(b.Err, ErrNotFound) {
					t.Fatalf("bad %d: %v, want ErrNotFound", b.Index, b.Err)
				}
			}
			for _, e := range f.entries {
				if len(e.Cert) == 0 || e.Cert[0] != 0x30 {
					t.Fatalf("entry %d: cert %x... is not DER", e.Index, head(e.Cert))
				}
			}
		})
	}
}

func countPrefix(hits map[string]int, prefix string) int {
	n := 0
	for p, c := range hits {
		if strings.HasPrefix(p, prefix) {
			n += c
		}
	}
	return n
}
