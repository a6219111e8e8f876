package ctlog

import (
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certlake/certlake/internal/ctlogtest"
)

// BenchmarkStaticEntries measures fetch throughput (no row parsing) from an
// in-process static-ct-api log with pre-built tiles and no rate limit, with
// tiles served plain, stored gzipped (no Content-Encoding), or with
// Content-Encoding: gzip.
func BenchmarkStaticEntries(b *testing.B) {
	const tiles = 64
	const size = tiles * 256
	for _, c := range []struct {
		name             string
		conc             int
		gzipBody, gzipCE bool
	}{
		{"concurrency1", 1, false, false},
		{"concurrency4", 4, false, false},
		{"concurrency4-gzip", 4, true, false},
		{"concurrency4-gzip-ce", 4, false, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			s := &staticServer{size: size, gzipBody: c.gzipBody, gzipCE: c.gzipCE}
			u := s.start(b)
			cfg := Config{DefaultRateLimit: 0, DefaultConcurrency: c.conc, RequestTimeout: time.Minute}
			r := New(Log{Unverified: true, URL: u, Static: true}, cfg)
			// Build (and gzip) the tiles and warm the reader before timing.
			timeEntries(b, r, size)
		})
	}
}

// BenchmarkRFC6962Entries does the same over get-entries (256 per answer,
// answers encoded once and replayed).
func BenchmarkRFC6962Entries(b *testing.B) {
	const size = 16384
	s := &rfcServer{size: size, cache: true}
	srvURL := s.start(b)
	for _, conc := range []int{1, 4} {
		b.Run(map[int]string{1: "concurrency1", 4: "concurrency4"}[conc], func(b *testing.B) {
			cfg := Config{DefaultRateLimit: 0, DefaultConcurrency: conc, RequestTimeout: time.Minute}
			r := New(Log{Unverified: true, URL: srvURL}, cfg)
			// Warm the server's answer cache outside the timing.
			timeEntries(b, r, size)
		})
	}
}

// perEntry measures a benchmark's cost per entry read: time, heap bytes and
// allocations (the in-process server's per-request allocations included;
// its answers and tiles are built before timing).
type perEntry struct{ ms runtime.MemStats }

func startPerEntry() *perEntry {
	m := &perEntry{}
	runtime.ReadMemStats(&m.ms)
	return m
}

// report adds entries/s, ns/entry, B/entry and allocs/entry for n entries.
func (m *perEntry) report(b *testing.B, n int) {
	b.StopTimer()
	var now runtime.MemStats
	runtime.ReadMemStats(&now)
	if n == 0 {
		return
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "entries/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/entry")
	b.ReportMetric(float64(now.TotalAlloc-m.ms.TotalAlloc)/float64(n), "B/entry")
	b.ReportMetric(float64(now.Mallocs-m.ms.Mallocs)/float64(n), "allocs/entry")
}

// BenchmarkGeneratedEntries reads entries that internal/ctlogtest logs (a
// Tessera static-ct-api log and a Trillian RFC 6962 log, both in-process)
// serve, as the backfill benchmark does: generated ECDSA certificates and
// precertificates with their chains. The answers are recorded on a first
// read and replayed, so the figures are the reader's own.
func BenchmarkGeneratedEntries(b *testing.B) {
	const size = 8192
	ctlogtest.QuietKlog()
	gen, err := ctlogtest.NewGenerator(ctlogtest.GeneratorOptions{Seed: "ctlog-bench"})
	if err != nil {
		b.Fatal(err)
	}
	opts := ctlogtest.Options{Roots: []*x509.Certificate{gen.Root()}}
	for _, kind := range []string{"static", "rfc6962"} {
		b.Run(kind, func(b *testing.B) {
			var l *ctlogtest.Log
			if kind == "static" {
				l = ctlogtest.NewStaticTB(b, opts)
			} else {
				l = ctlogtest.NewRFC6962TB(b, opts)
			}
			if err := l.AddBulk(b.Context(), size, gen, nil); err != nil {
				b.Fatal(err)
			}
			rec := &replayServer{upstream: strings.TrimSuffix(l.URL, "/")}
			srv := httptest.NewServer(rec)
			b.Cleanup(srv.Close)
			cfg := Config{DefaultRateLimit: 0, DefaultConcurrency: 4, RequestTimeout: time.Minute}
			u := srv.URL
			for _, verify := range []bool{false, true} {
				b.Run(map[bool]string{false: "unverified", true: "verified"}[verify], func(b *testing.B) {
					r := New(Log{Unverified: !verify, URL: u, Static: kind == "static", Key: l.KeyDER(), Origin: l.Origin}, cfg)
					// The first read records the answers and warms the
					// reader's buffers and issuers.
					timeEntries(b, r, size)
				})
			}
		})
	}
}

// replayServer answers each GET with what upstream answered the first time
// it was asked, so a benchmark does not time the log behind it.
type replayServer struct {
	upstream string
	answers  sync.Map // request URI -> replayed
}

type replayed struct {
	status int
	header http.Header
	body   []byte
}

func (s *replayServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	v, ok := s.answers.Load(r.RequestURI)
	if !ok {
		resp, err := http.Get(s.upstream + r.RequestURI)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		h := http.Header{}
		for _, k := range []string{"Content-Type", "Content-Encoding"} {
			if v := resp.Header.Get(k); v != "" {
				h.Set(k, v)
			}
		}
		v, _ = s.answers.LoadOrStore(r.RequestURI, &replayed{status: resp.StatusCode, header: h, body: body})
	}
	a := v.(*replayed)
	for k, vs := range a.header {
		w.Header()[k] = vs
	}
	w.WriteHeader(a.status)
	w.Write(a.body)
}

// timeEntries reads [0, size-1] through r once untimed (building what the
// server serves and warming the reader's buffers), then times reading it
// again and reports per-entry figures.
func timeEntries(b *testing.B, r Reader, size uint64) {
	b.Helper()
	if err := r.Entries(b.Context(), 0, size-1, func(Batch) error { return nil }); err != nil {
		b.Fatal(err)
	}
	n := 0
	b.ResetTimer()
	m := startPerEntry()
	for b.Loop() {
		err := r.Entries(b.Context(), 0, size-1, func(bt Batch) error { n += len(bt.Entries); return nil })
		if err != nil {
			b.Fatal(err)
		}
	}
	m.report(b, n)
}
