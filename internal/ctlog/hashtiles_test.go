package ctlog

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// treeHasher's hashes are RFC 6962's: nodes as tlog.NodeHash, leaves as
// SHA-256 of their prefix and bytes, whether read from the SHA-256 state or
// through Sum (when the state cannot be read), and one hasher serves any
// sequence of them.
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
		te := make([]byte, i) // every length of padding, up to two blocks of it
		rand.Read(te)
		for _, h := range []*treeHasher{&th, &plain} {
			if got, want := h.timestamped(te), tlog.Hash(sha256.Sum256(append([]byte{0, 0, 0}, te...))); got != want {
				t.Fatalf("timestamped leaf of %d bytes (state read %t) = %x, want %x", i, h.state != nil, got, want)
			}
			if got, want := h.leaf(te), tlog.Hash(sha256.Sum256(append([]byte{0}, te...))); got != want {
				t.Fatalf("leaf of %d bytes (state read %t) = %x, want %x", i, h.state != nil, got, want)
			}
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

// Workers asking for one hash tile at once share one fetch of it; a
// worker whose context is alive is not failed by another's cancelled one.
func TestHashTileFetchedOnceAtATime(t *testing.T) {
	var fetches atomic.Int32
	release := make(chan struct{})
	h := newHashTiles(1<<20, func(ctx context.Context, tile tlog.Tile) ([]byte, error) {
		fetches.Add(1)
		select {
		case <-release:
			return make([]byte, tile.W*tlog.HashSize), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
	tile := tlog.Tile{H: tileHeight, L: 1, N: 0, W: 1 << tileHeight}
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() { _, errs[i] = h.fetchShared(t.Context(), tile) })
	}
	for fetches.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // the others join the fetch in flight
	close(release)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("worker %d: %v", i, err)
		}
	}
	if n := fetches.Load(); n != 1 {
		t.Errorf("%d fetches of one tile asked for at once, want 1", n)
	}

	// The leader's context ends: the follower fetches for itself.
	fetches.Store(0)
	release = make(chan struct{})
	leaderCtx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { _, err := h.fetchShared(leaderCtx, tile); done <- err }()
	for fetches.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	follower := make(chan error, 1)
	go func() { _, err := h.fetchShared(t.Context(), tile); follower <- err }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("leader: %v, want its context's end", err)
	}
	close(release)
	if err := <-follower; err != nil {
		t.Errorf("follower: %v, want the tile", err)
	}
}
