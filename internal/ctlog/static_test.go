package ctlog

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestStaticEntriesExactRanges(t *testing.T) {
	const size = 3*256 + 70 // three full tiles and a partial one of 70
	for _, tc := range []struct {
		name        string
		start, end  uint64
		concurrency int
		wantTiles   int // data tile requests
	}{
		{"first", 0, 0, 4, 1},
		{"insideOneTile", 10, 20, 4, 1},
		{"wholeTile", 256, 511, 4, 1},
		{"spansTiles", 200, 600, 4, 3},
		{"spansTilesSequential", 200, 600, 1, 3},
		{"partialLastTile", 770, size - 1, 4, 1},
		{"intoPartialTile", 700, 800, 2, 2},
		{"everything", 0, size - 1, 3, 4},
		{"last", size - 1, size - 1, 4, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &staticServer{size: size}
			cfg := testConfig(t)
			cfg.DefaultConcurrency = tc.concurrency
			r := New(Log{Unverified: true, URL: s.start(t), Static: true}, cfg)
			f := fetchRange(t, r, tc.start, tc.end)
			if f.err != nil {
				t.Fatalf("Entries(%d, %d) = %v, want nil", tc.start, tc.end, f.err)
			}
			if got, want := len(f.entries), int(tc.end-tc.start+1); got != want || len(f.bad) != 0 {
				t.Errorf("Entries(%d, %d) gave %d entries, %d bad, want %d, 0", tc.start, tc.end, got, len(f.bad), want)
			}
			checkEntries(t, f.entries)
			if got := s.hitCount("/tile/data/"); got != tc.wantTiles {
				t.Errorf("tile requests = %d, want %d", got, tc.wantTiles)
			}
			if got := s.hitCount("/tile/data/003.p/70"); tc.end >= 768 && got != 1 {
				t.Errorf("partial tile 003.p/70 requests = %d, want 1", got)
			}
		})
	}
}

func TestStaticPartialTileFallsBackToFullTile(t *testing.T) {
	// The checkpoint says 300 but the log has grown to 600 and dropped the
	// partial tile 001.p/44: the full tile 001 must be used.
	s := &staticServer{size: 300, stored: 600}
	r := New(Log{Unverified: true, URL: s.start(t), Static: true}, testConfig(t))
	f := fetchRange(t, r, 250, 299)
	if f.err != nil {
		t.Fatalf("Entries(250, 299) = %v, want nil", f.err)
	}
	if len(f.entries) != 50 {
		t.Errorf("entries = %d, want 50", len(f.entries))
	}
	checkEntries(t, f.entries)
	if s.hitCount("/tile/data/001.p/44") != 1 || s.hitCount("/tile/data/001") != 2 {
		t.Errorf("tile hits = %v, want one 001.p/44 (404) then one 001", s.hits)
	}
}

func TestStaticGzipTiles(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    *staticServer
	}{
		{"storedGzipped", &staticServer{size: 600, gzipBody: true}},
		{"contentEncoding", &staticServer{size: 600, gzipCE: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := New(Log{Unverified: true, URL: tc.s.start(t), Static: true}, testConfig(t))
			f := fetchRange(t, r, 100, 599)
			if f.err != nil || len(f.entries) != 500 {
				t.Fatalf("Entries(100, 599) = %d entries, %v, want 500, nil", len(f.entries), f.err)
			}
			checkEntries(t, f.entries)
		})
	}
}

// TestStaticEntriesOutliveBuffers checks that tiles read into reused
// buffers leave the entries already emitted intact, and that appending to
// one entry's certificate or chain cannot reach another's.
func TestStaticEntriesOutliveBuffers(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    *staticServer
	}{
		{"plain", &staticServer{size: 1100}},
		{"storedGzipped", &staticServer{size: 1100, gzipBody: true}},
		{"contentEncoding", &staticServer{size: 1100, gzipCE: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := New(Log{Unverified: true, URL: tc.s.start(t), Static: true}, testConfig(t)).(*static)
			first := fetchRange(t, r, 0, 511)
			if first.err != nil || len(first.entries) != 512 {
				t.Fatalf("Entries(0, 511) = %d entries, %v, want 512, nil", len(first.entries), first.err)
			}
			if len(r.f.buffers) == 0 {
				t.Errorf("after a range, the fetcher keeps no body buffer")
			}
			for i := 0; i < len(first.entries)-1; i++ {
				e := first.entries[i]
				_ = append(e.Cert, 0xff, 0xff, 0xff, 0xff)
				_ = append(e.Chain, nil)
			}
			if f := fetchRange(t, r, 512, 1099); f.err != nil || len(f.entries) != 588 {
				t.Fatalf("Entries(512, 1099) = %d entries, %v, want 588, nil", len(f.entries), f.err)
			}
			checkEntries(t, first.entries)
		})
	}
}

func TestStaticIssuersFetchedOncePerFingerprint(t *testing.T) {
	const size = 4 * 256
	s := &staticServer{size: size}
	cfg := testConfig(t)
	cfg.DefaultConcurrency = 4
	r := New(Log{Unverified: true, URL: s.start(t), Static: true}, cfg)
	f := fetchRange(t, r, 0, size-1)
	if f.err != nil {
		t.Fatal(f.err)
	}
	distinct := map[[32]byte]bool{}
	for _, e := range f.entries {
		for _, c := range e.Chain {
			distinct[sha256.Sum256(c)] = true
		}
	}
	if got := s.hitCount("/issuer/"); got != len(distinct) || got == 0 {
		t.Errorf("issuer requests = %d, want %d (one per fingerprint)", got, len(distinct))
	}
	// A second pass is served from the cache.
	if f := fetchRange(t, r, 0, 255); f.err != nil {
		t.Fatal(f.err)
	}
	if got := s.hitCount("/issuer/"); got != len(distinct) {
		t.Errorf("issuer requests after second pass = %d, want %d", got, len(distinct))
	}
}

// A tile that does not decode into its width of leaves (malformed, short
// or empty) is a failed fetch, retried and then a failed range: never
// "bad entries" in a range reported as done.
func TestStaticMalformedOrShortTileIsAFailedFetch(t *testing.T) {
	for _, tc := range []struct {
		name    string
		corrupt int // leaves kept before garbage
		short   int // leaves kept, nothing after; -1: not short
	}{
		{"malformed", 40, -1},
		{"short", 0, 40},
		{"empty", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &staticServer{size: 3 * 256}
			if tc.short >= 0 {
				s.shortTiles = map[uint64]int{1: tc.short}
			} else {
				s.corrupt = map[uint64]int{1: tc.corrupt}
			}
			cfg := testConfig(t)
			r := New(Log{Unverified: true, URL: s.start(t), Static: true}, cfg)
			f := fetchRange(t, r, 200, 600)
			var re *RangeError
			if !errors.As(f.err, &re) || re.Start != 256 || re.End != 600 {
				t.Fatalf("Entries(200, 600) = %v, want a RangeError [256, 600]", f.err)
			}
			if len(f.entries) != 56 || len(f.bad) != 0 {
				t.Errorf("emitted %d entries, %d bad; want the 56 of tile 0 only", len(f.entries), len(f.bad))
			}
			if got := s.hitCount("/tile/data/001"); got != cfg.MaxAttempts {
				t.Errorf("requests for the bad tile = %d, want %d", got, cfg.MaxAttempts)
			}
		})
	}
}

func TestStaticMissingIssuerMakesBadEntries(t *testing.T) {
	missing := expectEntry(t, 0).chain[0] // first chain cert of FourEntries[0]
	s := &staticServer{size: 260, missingIssuer: missing}
	r := New(Log{Unverified: true, URL: s.start(t), Static: true}, testConfig(t))
	f := fetchRange(t, r, 0, 259)
	if f.err != nil {
		t.Fatalf("Entries = %v, want nil", f.err)
	}
	want := 0
	for i := range uint64(260) {
		for _, c := range expectEntry(t, i).chain {
			if string(c) == string(missing) {
				want++
				break
			}
		}
	}
	if len(f.bad) != want || want == 0 {
		t.Errorf("bad = %d, want %d (entries whose chain needs the missing issuer)", len(f.bad), want)
	}
	for _, b := range f.bad {
		if !errors.Is(b.Err, ErrNotFound) {
			t.Errorf("bad %d: %v, want ErrNotFound in chain", b.Index, b.Err)
		}
	}
	checkEntries(t, f.entries)
}

func TestStaticFaults(t *testing.T) {
	const size = 4*256 + 10
	status := func(code int) func(http.ResponseWriter) {
		return func(w http.ResponseWriter) { http.Error(w, http.StatusText(code), code) }
	}
	onTile := func(path string, times int, do func(http.ResponseWriter)) func(w http.ResponseWriter, r *http.Request, n int64) bool {
		var count atomic.Int64
		return func(w http.ResponseWriter, r *http.Request, n int64) bool {
			if strings.Contains(r.URL.Path, path) && (times < 0 || count.Add(1) <= int64(times)) {
				do(w)
				return true
			}
			return false
		}
	}
	truncated := func(w http.ResponseWriter) {
		w.Header().Set("Content-Length", "100000")
		w.Write(make([]byte, 1000))
	}
	for _, tc := range []struct {
		name     string
		fault    func(w http.ResponseWriter, r *http.Request, n int64) bool
		wantErr  bool
		errStart uint64
	}{
		{"503StormRecovers", onTile("/tile/data/002", 3, status(503)), false, 0},
		{"503StormNeverRecovers", onTile("/tile/data/002", -1, status(503)), true, 512},
		{"429Recovers", onTile("/tile/data/001", 2, status(429)), false, 0},
		{"truncatedTileRecovers", onTile("/tile/data/000", 2, truncated), false, 0},
		{"checkpoint503", onTile("/checkpoint", -1, status(503)), true, 100},
		{"issuer503", onTile("/issuer/", -1, status(503)), true, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &staticServer{size: size, fault: tc.fault}
			cfg := testConfig(t)
			cfg.MaxAttempts = 4
			cfg.DefaultConcurrency = 3
			r := New(Log{Unverified: true, URL: s.start(t), Static: true}, cfg)
			f := fetchRange(t, r, 100, size-1)
			if !tc.wantErr {
				if f.err != nil || len(f.entries) != size-100 {
					t.Fatalf("Entries = %d entries, %v, want %d, nil", len(f.entries), f.err, size-100)
				}
				checkEntries(t, f.entries)
				return
			}
			var re *RangeError
			if !errors.As(f.err, &re) || re.Start != tc.errStart || re.End != size-1 {
				t.Fatalf("Entries = %v, want RangeError [%d, %d]", f.err, tc.errStart, size-1)
			}
			t.Logf("err: %v", f.err)
			checkNoLeak(t)
		})
	}
}

func TestStaticTreeSizeAndBeyond(t *testing.T) {
	s := &staticServer{size: 1000}
	u := s.start(t)
	r := New(Log{Unverified: true, URL: u, Static: true}, testConfig(t))
	if got, err := r.TreeSize(t.Context()); err != nil || got != 1000 {
		t.Errorf("TreeSize() = %d, %v, want 1000, nil", got, err)
	}
	err := r.Entries(t.Context(), 990, 1000, func(Batch) error { return nil })
	var re *RangeError
	if !errors.Is(err, ErrBeyondTree) || !errors.As(err, &re) || re.Start != 990 {
		t.Errorf("Entries(990, 1000) = %v, want RangeError from 990 wrapping ErrBeyondTree", err)
	}
	// A read-only log never fetches its checkpoint.
	ro := uint64(600)
	rr := New(Log{Unverified: true, URL: u, Static: true, ReadOnlyTreeSize: &ro}, testConfig(t))
	before := s.hitCount("/checkpoint")
	f := fetchRange(t, rr, 590, 599)
	if f.err != nil || len(f.entries) != 10 {
		t.Fatalf("read-only Entries(590, 599) = %d, %v", len(f.entries), f.err)
	}
	if s.hitCount("/checkpoint") != before || s.hitCount("/tile/data/002.p/88") != 1 {
		t.Errorf("hits = %v, want no checkpoint and the partial tile 002.p/88 of the final size", s.hits)
	}
}

func TestStaticCancelMidRangeReturnsPromptly(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	s := &staticServer{size: 100 * 256, fault: func(w http.ResponseWriter, r *http.Request, n int64) bool {
		if !strings.HasPrefix(r.URL.Path, "/mon/tile/data/") || strings.HasSuffix(r.URL.Path, "/000") {
			return false
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
		return true
	}}
	cfg := testConfig(t)
	cfg.RequestTimeout = time.Minute
	r := New(Log{Unverified: true, URL: s.start(t), Static: true}, cfg)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var cancelled atomic.Int64
	var got int
	err := r.Entries(ctx, 0, 100*256-1, func(b Batch) error {
		got += len(b.Entries)
		time.AfterFunc(50*time.Millisecond, func() { cancelled.Store(time.Now().UnixNano()); cancel() })
		return nil
	})
	if d := time.Since(time.Unix(0, cancelled.Load())); d > 2*time.Second {
		t.Errorf("Entries returned %v after cancel", d)
	}
	var re *RangeError
	if !errors.Is(err, context.Canceled) || !errors.As(err, &re) || re.Start != 256 || got != 256 {
		t.Errorf("Entries = %v with %d entries, want RangeError from 256 after 256 entries", err, got)
	}
	checkNoLeak(t)
}
