package ctlog

import (
	"crypto/rand"
	"crypto/sha256"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// treeHasher's hashes are RFC 6962's: nodes as tlog.NodeHash (read from the
// SHA-256 state, and through Sum when the state cannot be read), leaves as
// SHA-256 of their prefix and bytes, and one hasher serves any sequence.
func TestTreeHasher(t *testing.T) {
	th := newTreeHasher()
	plain := newTreeHasher()
	plain.state = nil // the Sum path
	for i := range 1000 {
		var l, r tlog.Hash
		rand.Read(l[:])
		rand.Read(r[:])
		want := tlog.NodeHash(l, r)
		if got := th.node(&l, &r); got != want {
			t.Fatalf("node #%d = %x, want %x", i, got, want)
		}
		if got := plain.node(&l, &r); got != want {
			t.Fatalf("node #%d without the state = %x, want %x", i, got, want)
		}
		te := make([]byte, i)
		rand.Read(te)
		if got, want := th.timestamped(te), tlog.Hash(sha256.Sum256(append([]byte{0, 0, 0}, te...))); got != want {
			t.Fatalf("timestamped leaf of %d bytes = %x, want %x", i, got, want)
		}
		if got, want := th.leaf(te), tlog.Hash(sha256.Sum256(append([]byte{0}, te...))); got != want {
			t.Fatalf("leaf of %d bytes = %x, want %x", i, got, want)
		}
	}
	if th.state == nil {
		t.Error("crypto/sha256 no longer tells its state: nodes are hashed the slower way")
	}
}

// hashesRoot of a tile's 256 leaf hashes is the root of their perfect
// tree, hashed with tlog.NodeHash.
func TestHashesRoot(t *testing.T) {
	hashes := make([]tlog.Hash, tileWidth)
	for i := range hashes {
		hashes[i] = tlog.RecordHash([]byte{byte(i), byte(i >> 8)})
	}
	var root func(hs []tlog.Hash) tlog.Hash
	root = func(hs []tlog.Hash) tlog.Hash {
		if len(hs) == 1 {
			return hs[0]
		}
		return tlog.NodeHash(root(hs[:len(hs)/2]), root(hs[len(hs)/2:]))
	}
	th := newTreeHasher()
	if got, want := hashesRoot(hashes, &th), root(hashes); got != want {
		t.Fatalf("hashesRoot = %x, want %x", got, want)
	}
}
