package ctlog

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// treeHasher's hashes are RFC 6962's: nodes as tlog.NodeHash, leaves as
// SHA-256 of their prefix and bytes, one at a time or in pairs, and one
// hasher serves any sequence of them.
func TestTreeHasher(t *testing.T) {
	var th treeHasher
	var prev []byte
	for i := range 1000 {
		var l, r tlog.Hash
		rand.Read(l[:])
		rand.Read(r[:])
		want := tlog.NodeHash(l, r)
		if got := th.node(&l, &r); got != want {
			t.Fatalf("node #%d = %x, want %x", i, got, want)
		}
		want2 := tlog.NodeHash(r, l)
		var d1, d2 tlog.Hash
		if th.node2(&l, &r, &r, &l, &d1, &d2); d1 != want || d2 != want2 {
			t.Fatalf("node2 #%d = %x %x, want %x %x", i, d1, d2, want, want2)
		}
		te := make([]byte, i) // every length of padding, up to two blocks of it
		rand.Read(te)
		wantTS := tlog.Hash(sha256.Sum256(append([]byte{0, 0, 0}, te...)))
		wantLeaf := tlog.Hash(sha256.Sum256(append([]byte{0}, te...)))
		if got := th.timestamped(te); got != wantTS {
			t.Fatalf("timestamped leaf of %d bytes = %x, want %x", i, got, wantTS)
		}
		if got := th.leaf(te); got != wantLeaf {
			t.Fatalf("leaf of %d bytes = %x, want %x", i, got, wantLeaf)
		}
		if th.timestamped2(prev, te, &d1, &d2); d1 != tlog.Hash(sha256.Sum256(append([]byte{0, 0, 0}, prev...))) || d2 != wantTS {
			t.Fatalf("timestamped2 of %d and %d bytes wrong", len(prev), i)
		}
		if th.leaf2(te, prev, &d1, &d2); d1 != wantLeaf || d2 != tlog.Hash(sha256.Sum256(append([]byte{0}, prev...))) {
			t.Fatalf("leaf2 of %d and %d bytes wrong", i, len(prev))
		}
		prev = te
	}
}

// reduceRoot of a tile's 256 leaf hashes is the root of their perfect
// tree, hashed with tlog.NodeHash.
func TestReduceRoot(t *testing.T) {
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
	var th treeHasher
	if got, want := reduceRoot(slices.Clone(hashes), &th), root(hashes); got != want {
		t.Fatalf("reduceRoot = %x, want %x", got, want)
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

// appendLeaves gives the compact range that appending each leaf hash one
// by one gives, from any start and for any count.
func TestAppendLeaves(t *testing.T) {
	var th treeHasher
	for _, c := range []struct{ begin, n uint64 }{
		{0, 0}, {0, 1}, {0, 4096}, {1, 1}, {7, 9}, {1000, 1000}, {4095, 4097}, {12345, 3000}, {1 << 20, 513},
	} {
		// Both ranges start from the same left edge: [0, begin) of some tree.
		edge := rangeFactory.NewEmptyRange(0)
		for i := range c.begin {
			h := tlog.RecordHash([]byte{byte(i), byte(i >> 8), byte(i >> 16)})
			if err := edge.Append(h[:], nil); err != nil {
				t.Fatal(err)
			}
		}
		want := rangeFactory.NewEmptyRange(0)
		got := rangeFactory.NewEmptyRange(0)
		if err := want.AppendRange(edge, nil); err != nil {
			t.Fatal(err)
		}
		if err := got.AppendRange(edge, nil); err != nil {
			t.Fatal(err)
		}
		hashes := make([]tlog.Hash, c.n)
		for i := range hashes {
			rand.Read(hashes[i][:])
			if err := want.Append(hashes[i][:], nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := appendLeaves(got, hashes, &th); err != nil {
			t.Fatalf("appendLeaves(%d at %d): %v", c.n, c.begin, err)
		}
		if !got.Equal(want) {
			t.Fatalf("appendLeaves(%d at %d) = %x, want %x", c.n, c.begin, got.Hashes(), want.Hashes())
		}
	}
}
