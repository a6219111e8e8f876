package ctlog

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/certlake/certlake/internal/ctlogtest"
)

// A log that signs what it should not, with its own key: every tree head
// below carries a valid signature. The fork is a second real log with the
// same key and name (so the same origin) holding other entries. The reader
// reports the misbehaviour, keeps the head it proved, and emits nothing
// that only the bad head would vouch for.
func TestVerifiedLogSigningBadHeads(t *testing.T) {
	for _, static := range []bool{true, false} {
		t.Run(kindName(static), func(t *testing.T) {
			const n = 300
			key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			v := startVerifiedLogWith(t, static, n, ctlogtest.Options{Key: key}, 0)
			fork := startVerifiedLogWith(t, static, n+20, ctlogtest.Options{Key: key}, 40)
			honest := hostOf(v.log.URL)
			serveHead := func(body []byte) {
				v.proxy.set(func(r *http.Request, b []byte) (int, []byte) {
					if isHead(r) {
						return http.StatusOK, body
					}
					return http.StatusOK, b
				})
			}
			sign := func(size uint64, root [32]byte) []byte {
				b, err := v.log.SignTreeHead(size, root)
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
			// proven reads the honest head of size n with a fresh reader.
			proven := func(t *testing.T, m Metrics) Reader {
				t.Helper()
				r := v.reader(t, m)
				if size, err := r.TreeSize(t.Context()); err != nil || size != n {
					t.Fatalf("TreeSize = %d, %v, want %d", size, err, n)
				}
				return r
			}
			wantMisbehaviour := func(t *testing.T, err error, reason string) {
				t.Helper()
				var ve *VerificationError
				if !errors.As(err, &ve) || !ve.Misbehaviour || !strings.Contains(err.Error(), reason) {
					t.Errorf("TreeSize = %v, want misbehaviour: %s", err, reason)
				}
			}

			t.Run("forkedTree", func(t *testing.T) {
				m := &countingMetrics{}
				r := proven(t, m)
				f := fetchRange(t, r, 0, n-1)
				if f.err != nil || len(f.entries) != n {
					t.Fatalf("Entries = %d entries, %v", len(f.entries), f.err)
				}
				v.checkHonest(t, f.entries, 0)
				v.proxy.setUpstream(hostOf(fork.log.URL))
				defer v.proxy.setUpstream(honest)
				_, err := r.TreeSize(t.Context())
				wantMisbehaviour(t, err, "not consistent")
				if m.verification.Load() != 1 {
					t.Errorf("verification failures = %d, want 1", m.verification.Load())
				}
				// The fork's entries do not hash into the head kept.
				f = fetchRange(t, r, 0, 9)
				if !errors.Is(f.err, ErrVerification) || len(f.entries)+len(f.bad) != 0 {
					t.Errorf("Entries from the fork = %d entries, %v; want none and a verification failure", len(f.entries), f.err)
				}
				v.proxy.setUpstream(honest)
				if size, err := r.TreeSize(t.Context()); err != nil || size != n {
					t.Errorf("TreeSize of the honest log again = %d, %v, want %d", size, err, n)
				}
			})

			t.Run("sameSizeOtherRoot", func(t *testing.T) {
				m := &countingMetrics{}
				r := proven(t, m)
				serveHead(sign(n, sha256.Sum256([]byte("another tree"))))
				defer v.proxy.set(nil)
				_, err := r.TreeSize(t.Context())
				wantMisbehaviour(t, err, "two tree heads of size")
				if m.verification.Load() != 1 {
					t.Errorf("verification failures = %d, want 1", m.verification.Load())
				}
				f := fetchRange(t, r, n-5, n-1)
				if f.err != nil || len(f.entries) != 5 {
					t.Errorf("Entries under the proven head = %d entries, %v", len(f.entries), f.err)
				}
				v.checkHonest(t, f.entries, n-5)
			})

			t.Run("inflatedTree", func(t *testing.T) {
				r := proven(t, nil)
				serveHead(sign(n+1000, sha256.Sum256([]byte("a larger tree"))))
				defer v.proxy.set(nil)
				if size, err := r.TreeSize(t.Context()); err == nil {
					t.Fatalf("TreeSize of an inflated head = %d, want an error (no proof that it extends %d)", size, n)
				}
				f := fetchRange(t, r, n-5, n-1)
				if f.err != nil || len(f.entries) != 5 {
					t.Errorf("Entries under the proven head = %d entries, %v", len(f.entries), f.err)
				}
				v.checkHonest(t, f.entries, n-5)
				if f := fetchRange(t, r, n, n+5); f.err == nil || len(f.entries) != 0 {
					t.Errorf("Entries beyond the proven head = %d entries, %v; want none", len(f.entries), f.err)
				}
				v.proxy.set(nil)
				if size, err := r.TreeSize(t.Context()); err != nil || size != n {
					t.Errorf("TreeSize of the honest head again = %d, %v, want %d", size, err, n)
				}
			})

			t.Run("inflatedFirstHead", func(t *testing.T) {
				// Nothing to compare the first head with: it is taken,
				// and proves nothing the log serves.
				serveHead(sign(n+1000, sha256.Sum256([]byte("a larger tree"))))
				defer v.proxy.set(nil)
				m := &countingMetrics{}
				r := v.reader(t, m)
				if size, err := r.TreeSize(t.Context()); err != nil || size != n+1000 {
					t.Fatalf("TreeSize = %d, %v, want %d", size, err, n+1000)
				}
				f := fetchRange(t, r, 0, n-1)
				if f.err == nil || len(f.entries)+len(f.bad) != 0 {
					t.Errorf("Entries against the inflated head = %d entries, %v; want none and a failure", len(f.entries), f.err)
				}
			})
		})
	}
}
