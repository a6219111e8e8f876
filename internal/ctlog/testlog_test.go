package ctlog

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certlake/certlake/internal/record"
)

// rfcServer is an RFC 6962 log (get-sth, get-entries) serving the test
// corpus cyclically, with the quirks of real logs and injectable faults.
type rfcServer struct {
	size      uint64
	maxBatch  uint64                    // cap per response (short reads); 0: none
	ignoreEnd bool                      // return maxBatch entries whatever end says
	override  map[uint64]getEntriesElem // replaces the entry at an index
	// fault, if set, may answer a get-entries request itself (returning
	// true); n counts requests from 1.
	fault func(w http.ResponseWriter, r *http.Request, start uint64, n int64) bool

	// cache keeps encoded answers, so benchmarks measure the client.
	cache bool
	// answers holds encoded answers by "start-end" when cache is set.
	answers sync.Map

	requests atomic.Int64
	mu       sync.Mutex
	agents   map[string]bool
}

func (s *rfcServer) start(t testing.TB) string {
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv.URL + "/log/"
}

func (s *rfcServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := s.requests.Add(1)
	s.mu.Lock()
	if s.agents == nil {
		s.agents = map[string]bool{}
	}
	s.agents[r.UserAgent()] = true
	s.mu.Unlock()
	switch r.URL.Path {
	case "/log/ct/v1/get-sth":
		fmt.Fprintf(w, `{"tree_size":%d,"timestamp":1700000000000,"sha256_root_hash":"AAAA","tree_head_signature":"AAAA"}`, s.size)
	case "/log/ct/v1/get-entries":
		q := r.URL.Query()
		start, err1 := strconv.ParseUint(q.Get("start"), 10, 64)
		end, err2 := strconv.ParseUint(q.Get("end"), 10, 64)
		if err1 != nil || err2 != nil || start > end || start >= s.size {
			http.Error(w, `{"error":"bad range"}`, http.StatusBadRequest)
			return
		}
		if s.fault != nil && s.fault(w, r, start, n) {
			return
		}
		end = min(end, s.size-1)
		if s.maxBatch > 0 {
			if s.ignoreEnd {
				end = min(s.size-1, start+s.maxBatch-1)
			}
			end = min(end, start+s.maxBatch-1)
		}
		key := fmt.Sprint(start, "-", end)
		if b, ok := s.answers.Load(key); ok {
			w.Write(b.([]byte))
			return
		}
		var resp struct {
			Entries []getEntriesElem `json:"entries"`
		}
		for i := start; i <= end; i++ {
			e, ok := s.override[i]
			if !ok {
				e = corpusJSON()[i%uint64(len(corpusJSON()))]
			}
			resp.Entries = append(resp.Entries, e)
		}
		w.Header().Set("Content-Type", "application/json")
		b, _ := json.Marshal(resp)
		if s.cache {
			s.answers.Store(key, b)
		}
		w.Write(b)
	default:
		http.NotFound(w, r)
	}
}

// staticServer is a static-ct-api log serving the test corpus as tiles.
type staticServer struct {
	size      uint64 // tree size in the checkpoint
	stored    uint64 // entries whose tiles exist; 0 means size
	noPartial bool   // never serve partial tiles
	gzipBody  bool   // tiles stored gzipped, served without Content-Encoding
	gzipCE    bool   // tiles gzipped with Content-Encoding: gzip
	// corrupt makes tile t end with garbage after its first corrupt[t] leaves.
	corrupt map[uint64]int
	// shortTiles makes tile t hold only its first shortTiles[t] leaves.
	shortTiles map[uint64]int
	// missingIssuer makes the issuer with this DER answer 404.
	missingIssuer []byte
	fault         func(w http.ResponseWriter, r *http.Request, n int64) bool

	requests atomic.Int64
	mu       sync.Mutex
	hits     map[string]int
	tiles    map[string][]byte
	gz       map[string][]byte // gzipped tiles by path
}

func (s *staticServer) start(t testing.TB) string {
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv.URL + "/mon/"
}

func (s *staticServer) hitCount(prefix string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for p, c := range s.hits {
		if strings.HasPrefix(p, prefix) {
			n += c
		}
	}
	return n
}

func (s *staticServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := s.requests.Add(1)
	p := strings.TrimPrefix(r.URL.Path, "/mon")
	s.mu.Lock()
	if s.hits == nil {
		s.hits = map[string]int{}
	}
	s.hits[p]++
	s.mu.Unlock()
	if s.fault != nil && s.fault(w, r, n) {
		return
	}
	switch {
	case p == "/checkpoint":
		fmt.Fprintf(w, "example.com/mon\n%d\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n— example.com/mon AAAA\n", s.size)
	case strings.HasPrefix(p, "/issuer/"):
		fp, err := hex.DecodeString(strings.TrimPrefix(p, "/issuer/"))
		if err != nil || len(fp) != 32 {
			http.NotFound(w, r)
			return
		}
		for _, e := range testCorpus(nil) {
			for _, c := range e.chain {
				if sum := sha256.Sum256(c); bytes.Equal(sum[:], fp) && !bytes.Equal(c, s.missingIssuer) {
					w.Write(c)
					return
				}
			}
		}
		http.NotFound(w, r)
	case strings.HasPrefix(p, "/tile/data/"):
		body, ok := s.tile(strings.TrimPrefix(p, "/tile/data/"))
		if !ok {
			http.NotFound(w, r)
			return
		}
		switch {
		case s.gzipBody:
			body = s.gzipped(p, body)
		case s.gzipCE:
			body = s.gzipped(p, body)
			w.Header().Set("Content-Encoding", "gzip")
		}
		w.Write(body)
	default:
		http.NotFound(w, r)
	}
}

// tile returns the data tile at path (as record.TilePath writes it, with an
// optional .p/W suffix), if the log has it.
func (s *staticServer) tile(path string) ([]byte, bool) {
	stored := s.stored
	if stored == 0 {
		stored = s.size
	}
	width := uint64(tileWidth)
	if i := strings.Index(path, ".p/"); i >= 0 {
		w, err := strconv.ParseUint(path[i+3:], 10, 64)
		if err != nil || w == 0 || w >= tileWidth || s.noPartial {
			return nil, false
		}
		width, path = w, path[:i]
	}
	var digits string
	for _, seg := range strings.Split(path, "/") {
		digits += strings.TrimPrefix(seg, "x")
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || record.TilePath(n) != path {
		return nil, false
	}
	// A full tile exists once the log holds all its entries; a partial one
	// only while it is the log's last tile.
	if have := stored - min(stored, n*tileWidth); width == tileWidth && have < tileWidth ||
		width < tileWidth && have != width {
		return nil, false
	}
	key := fmt.Sprintf("%d/%d", n, width)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tiles == nil {
		s.tiles = map[string][]byte{}
	}
	if b, ok := s.tiles[key]; ok {
		return b, true
	}
	var b []byte
	for i := range width {
		if k, ok := s.corrupt[n]; ok && int(i) == k {
			b = append(b, 0, 0, 0, 0, 0, 0, 0, 1, 0, 7, 0xde, 0xad) // entry_type 7
			break
		}
		if k, ok := s.shortTiles[n]; ok && int(i) == k {
			break
		}
		b = append(b, expectEntryNoT(n*tileWidth+i).tileLeafBytes()...)
	}
	s.tiles[key] = b
	return b, true
}

// gzipped returns the tile at path p gzipped, compressing it once.
func (s *staticServer) gzipped(p string, body []byte) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gz == nil {
		s.gz = map[string][]byte{}
	}
	if z, ok := s.gz[p]; ok {
		return z
	}
	z := gzipBytes(body)
	s.gz[p] = z
	return z
}

func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

func expectEntryNoT(idx uint64) testEntry { return expectEntry(nil, idx) }

var corpusJSON = sync.OnceValue(func() []getEntriesElem {
	var out []getEntriesElem
	for _, e := range testCorpus(nil) {
		out = append(out, e.jsonEntry())
	}
	return out
})

// testConfig retries fast and does not rate-limit.
func testConfig(t testing.TB) Config {
	return Config{
		RequestTimeout: 5 * time.Second,
		MaxAttempts:    5,
		BackoffInitial: time.Millisecond,
		BackoffMax:     5 * time.Millisecond,
		Logger:         slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", bytes.TrimRight(p, "\n"))
	return len(p), nil
}

// fetched is what one Entries call produced.
type fetched struct {
	batches []Batch
	entries []record.Entry
	bad     []BadEntry
	err     error
}

// fetchRange runs r.Entries and checks the batch contract on what was
// emitted: consecutive batches from start, no gap, no overlap, every index
// once, nothing outside [start, end], entries and bad sorted.
func fetchRange(t *testing.T, r Reader, start, end uint64) fetched {
	t.Helper()
	var f fetched
	next := start
	f.err = r.Entries(t.Context(), start, end, func(b Batch) error {
		if b.Start != next || b.End < b.Start || b.End > end {
			t.Errorf("batch [%d, %d], want start %d and end <= %d", b.Start, b.End, next, end)
		}
		ei, bi := 0, 0
		for i := b.Start; i <= b.End; i++ {
			switch {
			case ei < len(b.Entries) && b.Entries[ei].Index == i:
				if !b.Entries[ei].Seen.Equal(b.Seen) {
					t.Errorf("entry %d seen %v, want the batch's %v", i, b.Entries[ei].Seen, b.Seen)
				}
				ei++
			case bi < len(b.Bad) && b.Bad[bi].Index == i:
				bi++
			default:
				t.Errorf("batch [%d, %d]: index %d neither entry nor bad", b.Start, b.End, i)
			}
		}
		if ei != len(b.Entries) || bi != len(b.Bad) {
			t.Errorf("batch [%d, %d]: %d entries and %d bad left over (unsorted or outside)", b.Start, b.End, len(b.Entries)-ei, len(b.Bad)-bi)
		}
		f.batches = append(f.batches, b)
		f.entries = append(f.entries, b.Entries...)
		f.bad = append(f.bad, b.Bad...)
		next = b.End + 1
		return nil
	})
	if f.err == nil && next != end+1 {
		t.Errorf("Entries(%d, %d) returned nil after emitting up to %d", start, end, next-1)
	}
	var re *RangeError
	if f.err != nil && errors.As(f.err, &re) && re.Start != next {
		t.Errorf("RangeError.Start = %d, want %d (first index not emitted)", re.Start, next)
	}
	return f
}

// checkEntries checks that entries hold the corpus at their indices.
func checkEntries(t *testing.T, entries []record.Entry) {
	t.Helper()
	for _, e := range entries {
		want := expectEntry(t, e.Index)
		if e.Type != want.typ || !bytes.Equal(e.Cert, want.cert) {
			t.Errorf("entry %d: type %d, cert %x..., want type %d, cert %x...", e.Index, e.Type, head(e.Cert), want.typ, head(want.cert))
			continue
		}
		if len(e.Chain) != len(want.chain) {
			t.Errorf("entry %d: chain of %d, want %d", e.Index, len(e.Chain), len(want.chain))
			continue
		}
		for i := range e.Chain {
			if !bytes.Equal(e.Chain[i], want.chain[i]) {
				t.Errorf("entry %d: chain[%d] differs", e.Index, i)
			}
		}
	}
}

func head(b []byte) []byte { return b[:min(len(b), 8)] }

// checkNoLeak waits until no goroutine of this package's pipeline is left.
func checkNoLeak(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		if !strings.Contains(stacks, "ctlog.runOrdered") && !strings.Contains(stacks, "ctlog.(*fetcher)") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutines left behind:\n%s", stacks)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// countingMetrics records Metrics calls.
type countingMetrics struct {
	fetched, retried, rateLimited, malformed, verification atomic.Int64
}

func (m *countingMetrics) Fetched(string, int)       { m.fetched.Add(1) }
func (m *countingMetrics) Retried(string, int)       { m.retried.Add(1) }
func (m *countingMetrics) RateLimited(string)        { m.rateLimited.Add(1) }
func (m *countingMetrics) Malformed(_ string, n int) { m.malformed.Add(int64(n)) }
func (m *countingMetrics) VerificationFailed(string) { m.verification.Add(1) }
