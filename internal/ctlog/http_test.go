package ctlog

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 11, 26, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"7", 7 * time.Second},
		{" 120 ", 2 * time.Minute},
		{"-3", 0},
		{"soon", 0},
		{"Wed, 26 Nov 2025 12:00:30 GMT", 30 * time.Second},
		{"Wed, 26 Nov 2025 11:59:00 GMT", 0}, // in the past
	} {
		if got := parseRetryAfter(tc.in, now); got != tc.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestBackoffFullJitterBounds(t *testing.T) {
	f := &fetcher{cfg: Config{BackoffInitial: 10 * time.Millisecond, BackoffMax: 100 * time.Millisecond}}
	for _, tc := range []struct {
		attempt int
		max     time.Duration
	}{
		{1, 10 * time.Millisecond}, {2, 20 * time.Millisecond}, {4, 80 * time.Millisecond},
		{5, 100 * time.Millisecond}, {40, 100 * time.Millisecond}, {70, 100 * time.Millisecond},
	} {
		var top time.Duration
		for range 2000 {
			d := f.backoff(tc.attempt)
			if d < 0 || d > tc.max {
				t.Fatalf("backoff(%d) = %v, want within [0, %v]", tc.attempt, d, tc.max)
			}
			top = max(top, d)
		}
		if top < tc.max/2 {
			t.Errorf("backoff(%d) never above %v in 2000 draws, want spread up to %v", tc.attempt, top, tc.max)
		}
	}
}

// inflightServer answers get-sth slowly and records the peak number of
// requests in flight.
type inflightServer struct {
	delay    time.Duration
	cur, top atomic.Int64
	count    atomic.Int64
}

func (s *inflightServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := s.cur.Add(1)
	defer s.cur.Add(-1)
	for {
		top := s.top.Load()
		if n <= top || s.top.CompareAndSwap(top, n) {
			break
		}
	}
	s.count.Add(1)
	time.Sleep(s.delay)
	w.Write([]byte(`{"tree_size":10}`))
}

func TestLimits(t *testing.T) {
	for _, tc := range []struct {
		name     string
		logs     []Log // all served by one server
		cfg      func(*Config)
		calls    int // TreeSize calls per log, all in parallel
		wantTop  int64
		minTotal time.Duration
	}{
		{name: "logConcurrency", logs: []Log{{Concurrency: 2}}, calls: 8, wantTop: 2},
		{name: "defaultConcurrency", logs: []Log{{}}, cfg: func(c *Config) { c.DefaultConcurrency = 3 }, calls: 9, wantTop: 3},
		{name: "operatorConcurrency", logs: []Log{{Operator: "DigiCert"}},
			cfg: func(c *Config) { c.OperatorLimits = map[string]Limit{"digicert": {Concurrency: 1}} }, calls: 4, wantTop: 1},
		{name: "sharedOperatorConcurrency", logs: []Log{{Operator: "A"}, {Operator: "a"}, {Operator: "A"}},
			cfg: func(c *Config) { c.Limiters = NewLimiters(map[string]Limit{"A": {Concurrency: 2}}) }, calls: 4, wantTop: 2},
		// 10 requests at 20/s with a burst of 1: at least 9 intervals of 50 ms.
		{name: "logRate", logs: []Log{{RateLimit: 20, Burst: 1, Concurrency: 10}}, calls: 10, minTotal: 440 * time.Millisecond},
		{name: "sharedOperatorRate", logs: []Log{{Operator: "B", Concurrency: 10}, {Operator: "B", Concurrency: 10}},
			cfg: func(c *Config) { c.Limiters = NewLimiters(map[string]Limit{"B": {Rate: 20, Burst: 1}}) }, calls: 5, minTotal: 440 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &inflightServer{delay: 30 * time.Millisecond}
			srv := httptest.NewServer(s)
			defer srv.Close()
			cfg := testConfig(t)
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			var wg sync.WaitGroup
			t0 := time.Now()
			for i, l := range tc.logs {
				l.URL = srv.URL + "/log" + string(rune('a'+i))
				l.Unverified = true
				r := New(l, cfg)
				for range tc.calls {
					wg.Go(func() {
						if _, err := r.TreeSize(t.Context()); err != nil {
							t.Error(err)
						}
					})
				}
			}
			wg.Wait()
			if tc.wantTop != 0 && s.top.Load() != tc.wantTop {
				t.Errorf("peak requests in flight = %d, want %d", s.top.Load(), tc.wantTop)
			}
			if d := time.Since(t0); d < tc.minTotal {
				t.Errorf("%d requests took %v, want at least %v", s.count.Load(), d, tc.minTotal)
			}
		})
	}
}

func TestRateLimitPausesWholeLog(t *testing.T) {
	// One 429 with Retry-After: 1 must hold back the other requests to
	// the log too, not only the one that got it.
	var first atomic.Bool
	sent429 := make(chan time.Time, 1)
	var early atomic.Int64
	var t429 atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if first.CompareAndSwap(false, true) {
			now := time.Now()
			t429.Store(now.UnixNano())
			w.Header().Set("Retry-After", "1")
			http.Error(w, "slow down", http.StatusTooManyRequests)
			sent429 <- now
			return
		}
		if time.Since(time.Unix(0, t429.Load())) < 900*time.Millisecond {
			early.Add(1)
		}
		w.Write([]byte(`{"tree_size":10}`))
	}))
	defer srv.Close()
	r := New(Log{Unverified: true, URL: srv.URL, Concurrency: 4}, testConfig(t))
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := r.TreeSize(t.Context()); err != nil {
			t.Error(err)
		}
	})
	<-sent429
	time.Sleep(20 * time.Millisecond) // let the client read the 429
	for range 3 {
		wg.Go(func() {
			if _, err := r.TreeSize(t.Context()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if early.Load() != 0 {
		t.Errorf("%d requests sent during the Retry-After pause, want 0", early.Load())
	}
}

func TestResponseBodyCapped(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(make([]byte, 5000))
	}))
	defer srv.Close()
	cfg := testConfig(t)
	cfg.MaxResponseBytes = 1000
	var calls atomic.Int64
	f := newFetcher("x", cfg.withDefaults(), Limit{}, nil)
	_, _, err := f.get(t.Context(), srv.URL, func([]byte) error { calls.Add(1); return nil })
	if err == nil || calls.Load() != 0 {
		t.Errorf("get() of a 5000-byte body capped at 1000 = %v, want error before check", err)
	}
}

// TestZeroRateIsUnlimited checks that a rate of 0, after inheriting from
// the operator and the default, means unlimited, as ct.rate_limit 0 does.
func TestZeroRateIsUnlimited(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		log  Log
		want rate.Limit
	}{
		{name: "zeroConfig", want: rate.Inf},
		{name: "default", cfg: Config{DefaultRateLimit: 5}, want: 5},
		{name: "operator", cfg: Config{DefaultRateLimit: 5, OperatorLimits: map[string]Limit{"op": {Rate: 2}}},
			log: Log{Operator: "OP"}, want: 2},
		{name: "operatorZeroInherits", cfg: Config{OperatorLimits: map[string]Limit{"op": {Concurrency: 1}}},
			log: Log{Operator: "op"}, want: rate.Inf},
		{name: "log", cfg: Config{DefaultRateLimit: 5}, log: Log{RateLimit: 1}, want: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg.withDefaults()
			if got := newLimiter(cfg.limitFor(tc.log)).Limit(); got != tc.want {
				t.Errorf("rate of %+v under %+v = %v, want %v", tc.log, tc.cfg, got, tc.want)
			}
		})
	}
}
