package ctlog

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestRFC6962EntriesExactRanges(t *testing.T) {
	const size = 1000
	for _, tc := range []struct {
		name        string
		start, end  uint64
		maxBatch    uint64
		batchSize   int
		concurrency int
	}{
		{"single", 0, 0, 0, 256, 4},
		{"fourEntries", 0, 3, 0, 256, 1},
		{"shortReadsSequential", 5, 700, 3, 256, 1},
		{"shortReadsParallel", 5, 700, 3, 256, 4},
		{"googleLike32", 0, size - 1, 32, 256, 4},
		{"smallBatches", 250, 530, 0, 7, 8},
		{"acrossBatchBoundary", 255, 256, 0, 256, 4},
		{"last", size - 1, size - 1, 0, 256, 2},
		{"ignoresEndAndOverserves", 10, 20, 64, 256, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &rfcServer{size: size, maxBatch: tc.maxBatch, ignoreEnd: tc.name == "ignoresEndAndOverserves"}
			cfg := testConfig(t)
			cfg.BatchSize, cfg.DefaultConcurrency = tc.batchSize, tc.concurrency
			r := New(Log{Unverified: true, URL: s.start(t), Name: "test"}, cfg)
			f := fetchRange(t, r, tc.start, tc.end)
			if f.err != nil {
				t.Fatalf("Entries(%d, %d) = %v, want nil", tc.start, tc.end, f.err)
			}
			if got, want := len(f.entries), int(tc.end-tc.start+1); got != want || len(f.bad) != 0 {
				t.Errorf("Entries(%d, %d) gave %d entries, %d bad, want %d, 0", tc.start, tc.end, got, len(f.bad), want)
			}
			checkEntries(t, f.entries)
			if tc.maxBatch > 0 {
				for _, b := range f.batches {
					if n := b.End - b.Start + 1; n > tc.maxBatch {
						t.Errorf("batch [%d, %d] has %d entries, server caps at %d", b.Start, b.End, n, tc.maxBatch)
					}
				}
			}
		})
	}
}

func TestRFC6962ShortReadsContinueFromLastIndex(t *testing.T) {
	s := &rfcServer{size: 100, maxBatch: 3}
	cfg := testConfig(t)
	cfg.DefaultConcurrency = 1
	r := New(Log{Unverified: true, URL: s.start(t)}, cfg)
	f := fetchRange(t, r, 0, 99)
	if f.err != nil {
		t.Fatal(f.err)
	}
	// 100 entries at 3 per answer: exactly 34 requests, none wasted.
	if got := s.requests.Load(); got != 34 {
		t.Errorf("requests = %d, want 34", got)
	}
	if len(f.batches) != 34 {
		t.Errorf("batches = %d, want 34 (one per response)", len(f.batches))
	}
}

func TestRFC6962TreeSize(t *testing.T) {
	s := &rfcServer{size: 4242}
	u := s.start(t)
	ro := uint64(77)
	for _, tc := range []struct {
		name string
		log  Log
		want uint64
	}{
		{"getSTH", Log{Unverified: true, URL: u}, 4242},
		{"readOnly", Log{Unverified: true, URL: u, ReadOnlyTreeSize: &ro}, 77},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := New(tc.log, testConfig(t)).TreeSize(t.Context())
			if err != nil || got != tc.want {
				t.Errorf("TreeSize() = %d, %v, want %d, nil", got, err, tc.want)
			}
		})
	}
}

func TestRFC6962UserAgent(t *testing.T) {
	s := &rfcServer{size: 10}
	cfg := testConfig(t)
	r := New(Log{Unverified: true, URL: s.start(t)}, cfg)
	if _, err := r.TreeSize(t.Context()); err != nil {
		t.Fatal(err)
	}
	cfg.UserAgent = "probe/1"
	if _, err := New(Log{Unverified: true, URL: s.start(t)}, cfg).TreeSize(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, ua := range []string{DefaultUserAgent(), "probe/1"} {
		if !s.agents[ua] {
			t.Errorf("User-Agent %q not seen; got %v", ua, s.agents)
		}
	}
	if !strings.HasPrefix(DefaultUserAgent(), "certlake/") || !strings.HasSuffix(DefaultUserAgent(), "(+https://github.com/certlake/certlake)") {
		t.Errorf("DefaultUserAgent() = %q", DefaultUserAgent())
	}
}

func TestRFC6962GarbageEntriesBecomeBad(t *testing.T) {
	good := expectEntry(t, 0).jsonEntry()
	s := &rfcServer{size: 50, maxBatch: 8, override: map[uint64]getEntriesElem{
		3:  {LeafInput: "!!not base64!!", ExtraData: good.ExtraData},
		9:  {LeafInput: "AAAA", ExtraData: ""},                     // too short
		10: {LeafInput: "AAAAAAAAAAAAAAcAAAEw", ExtraData: "AAAA"}, // entry type 7
		11: {LeafInput: "AAAAAAAAAAAAAAAA//8w", ExtraData: "AAAA"}, // cert length past the end
		12: {LeafInput: good.LeafInput, ExtraData: "%%%"},          // extra_data not base64
		40: {LeafInput: "AAAAAAAAAAAAAAEAAAEw", ExtraData: "AAAA"}, // precert without pre-certificate
	}}
	m := &countingMetrics{}
	cfg := testConfig(t)
	cfg.Metrics = m
	r := New(Log{Unverified: true, URL: s.start(t)}, cfg)
	f := fetchRange(t, r, 0, 49)
	if f.err != nil {
		t.Fatalf("Entries(0, 49) = %v, want nil: bad entries must not stop the range", f.err)
	}
	var badIdx []uint64
	for _, b := range f.bad {
		badIdx = append(badIdx, b.Index)
		if b.Err == nil || !strings.Contains(b.Err.Error(), "entry ") {
			t.Errorf("bad entry %d: err %v, want one naming the entry", b.Index, b.Err)
		}
	}
	want := []uint64{3, 9, 10, 11, 12, 40}
	if len(badIdx) != len(want) {
		t.Fatalf("bad indices = %v, want %v", badIdx, want)
	}
	for i := range want {
		if badIdx[i] != want[i] {
			t.Fatalf("bad indices = %v, want %v", badIdx, want)
		}
	}
	if len(f.entries) != 50-len(want) {
		t.Errorf("entries = %d, want %d", len(f.entries), 50-len(want))
	}
	if m.malformed.Load() != int64(len(want)) {
		t.Errorf("Metrics.Malformed total = %d, want %d", m.malformed.Load(), len(want))
	}
	checkEntries(t, f.entries)
}

func TestRFC6962Faults(t *testing.T) {
	const size = 300
	type fault = func(w http.ResponseWriter, r *http.Request, start uint64, n int64) bool
	status := func(code int, retryAfter string) func(http.ResponseWriter) {
		return func(w http.ResponseWriter) {
			if retryAfter == "date" {
				// An HTTP-date has whole seconds: ask for 1 to 2 s.
				w.Header().Set("Retry-After", time.Now().Add(2*time.Second).UTC().Format(http.TimeFormat))
			} else if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			http.Error(w, http.StatusText(code), code)
		}
	}
	firstN := func(k int64, do func(http.ResponseWriter)) fault {
		return func(w http.ResponseWriter, r *http.Request, start uint64, n int64) bool {
			if n <= k {
				do(w)
				return true
			}
			return false
		}
	}
	from := func(idx uint64, do func(http.ResponseWriter)) fault {
		return func(w http.ResponseWriter, r *http.Request, start uint64, n int64) bool {
			if start >= idx {
				do(w)
				return true
			}
			return false
		}
	}
	truncated := func(w http.ResponseWriter) {
		w.Header().Set("Content-Length", "5000")
		w.Write([]byte(`{"entries":[{"leaf_input":"AAAA`))
	}
	invalidJSON := func(w http.ResponseWriter) { w.Write([]byte(`{"entries":[`)) }
	empty := func(w http.ResponseWriter) { w.Write([]byte(`{"entries":[]}`)) }
	slow := func(w http.ResponseWriter) {
		w.Header().Set("Content-Length", "100")
		w.Write([]byte(`{"entries":[`))
		w.(http.Flusher).Flush()
		time.Sleep(400 * time.Millisecond)
	}

	for _, tc := range []struct {
		name      string
		fault     fault
		start     uint64
		end       uint64
		wantErr   bool
		errStart  uint64 // RangeError.Start
		status    int    // HTTPError status in the chain, if any
		minElapse time.Duration
		check     func(t *testing.T, err error)
	}{
		{name: "429RetryAfter", fault: firstN(1, status(429, "1")), end: 99, minElapse: time.Second},
		{name: "429RetryAfterDate", fault: firstN(1, status(429, "date")), end: 99, minElapse: 900 * time.Millisecond},
		{name: "429NoRetryAfter", fault: firstN(3, status(429, "")), end: 99},
		{name: "429RetryAfterTooLong", fault: firstN(1, status(429, "3600")), end: 99, wantErr: true, errStart: 0, status: 429,
			check: func(t *testing.T, err error) {
				var he *HTTPError
				if errors.As(err, &he) && he.RetryAfter != time.Hour {
					t.Errorf("HTTPError.RetryAfter = %v, want 1h", he.RetryAfter)
				}
			}},
		{name: "503StormRecovers", fault: firstN(4, status(503, "")), end: size - 1},
		// Requests start at 10, 42, ..., 106, 138: the first failing one is 138.
		{name: "503StormNeverRecovers", fault: from(130, status(503, "")), start: 10, end: size - 1, wantErr: true, errStart: 138, status: 503},
		{name: "400NotRetried", fault: from(0, status(400, "")), end: 9, wantErr: true, status: 400},
		{name: "truncatedBodyRecovers", fault: firstN(2, truncated), end: 99},
		{name: "truncatedBodyForever", fault: from(50, truncated), end: 99, wantErr: true, errStart: 64},
		{name: "invalidJSONRecovers", fault: firstN(2, invalidJSON), end: 99},
		{name: "zeroEntriesRecovers", fault: firstN(2, empty), end: 99},
		{name: "zeroEntriesForever", fault: from(64, empty), end: 99, wantErr: true, errStart: 64,
			check: func(t *testing.T, err error) {
				if !errors.Is(err, errNoEntries) {
					t.Errorf("err = %v, want errNoEntries in chain", err)
				}
			}},
		{name: "slowBodyRecovers", fault: firstN(1, slow), end: 99},
		{name: "slowBodyForever", fault: from(0, slow), end: 9, wantErr: true,
			check: func(t *testing.T, err error) {
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("err = %v, want DeadlineExceeded in chain", err)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &rfcServer{size: size, maxBatch: 32, fault: tc.fault}
			m := &countingMetrics{}
			cfg := testConfig(t)
			cfg.Metrics = m
			cfg.RequestTimeout = 200 * time.Millisecond
			cfg.MaxAttempts = 4
			cfg.DefaultConcurrency = 2
			cfg.MaxRetryAfter = 3 * time.Second
			r := New(Log{Unverified: true, URL: s.start(t)}, cfg)
			t0 := time.Now()
			f := fetchRange(t, r, tc.start, tc.end)
			elapsed := time.Since(t0)
			if !tc.wantErr {
				if f.err != nil {
					t.Fatalf("Entries(%d, %d) = %v, want nil", tc.start, tc.end, f.err)
				}
				if got, want := len(f.entries), int(tc.end-tc.start+1); got != want {
					t.Errorf("entries = %d, want %d", got, want)
				}
				checkEntries(t, f.entries)
			} else {
				var re *RangeError
				if !errors.As(f.err, &re) {
					t.Fatalf("Entries(%d, %d) = %v, want *RangeError", tc.start, tc.end, f.err)
				}
				if re.Start != tc.errStart || re.End != tc.end {
					t.Errorf("RangeError = [%d, %d], want [%d, %d]", re.Start, re.End, tc.errStart, tc.end)
				}
				if uint64(len(f.entries)) != tc.errStart-tc.start {
					t.Errorf("emitted %d entries before the failure, want %d", len(f.entries), tc.errStart-tc.start)
				}
				var he *HTTPError
				if tc.status != 0 && (!errors.As(f.err, &he) || he.Status != tc.status) {
					t.Errorf("err = %v, want HTTPError status %d", f.err, tc.status)
				}
				t.Logf("err: %v", f.err)
			}
			if elapsed < tc.minElapse {
				t.Errorf("took %v, want at least %v (Retry-After honoured)", elapsed, tc.minElapse)
			}
			if strings.HasPrefix(tc.name, "429") && m.rateLimited.Load() == 0 {
				t.Errorf("Metrics.RateLimited not called")
			}
			if tc.check != nil {
				tc.check(t, f.err)
			}
			checkNoLeak(t)
		})
	}
}

func TestRFC6962CancelMidRangeReturnsPromptly(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	s := &rfcServer{size: 10_000, maxBatch: 50, fault: func(w http.ResponseWriter, r *http.Request, start uint64, n int64) bool {
		if start < 100 {
			return false
		}
		select { // hang until the client goes away
		case <-r.Context().Done():
		case <-release:
		}
		return true
	}}
	cfg := testConfig(t)
	cfg.DefaultConcurrency = 4
	cfg.BatchSize = 50
	cfg.RequestTimeout = time.Minute
	r := New(Log{Unverified: true, URL: s.start(t)}, cfg)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var emitted atomic.Int64
	done := make(chan error, 1)
	go func() {
		done <- r.Entries(ctx, 0, 9_999, func(b Batch) error {
			emitted.Add(int64(len(b.Entries)))
			if b.End >= 99 {
				time.AfterFunc(50*time.Millisecond, cancel)
			}
			return nil
		})
	}()
	var err error
	select {
	case err = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Entries did not return within 5s of cancel")
	}
	var re *RangeError
	if !errors.Is(err, context.Canceled) || !errors.As(err, &re) || re.Start != 100 {
		t.Errorf("Entries = %v, want RangeError from 100 wrapping context.Canceled", err)
	}
	if emitted.Load() != 100 {
		t.Errorf("emitted %d entries, want 100", emitted.Load())
	}
	checkNoLeak(t)
}

func TestEntriesEmitErrorAborts(t *testing.T) {
	s := &rfcServer{size: 1000, maxBatch: 10}
	r := New(Log{Unverified: true, URL: s.start(t)}, testConfig(t))
	stop := errors.New("stop")
	calls := 0
	err := r.Entries(t.Context(), 0, 999, func(b Batch) error {
		calls++
		if calls == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 3 {
		t.Errorf("Entries = %v after %d calls, want the emit error after 3", err, calls)
	}
	checkNoLeak(t)
}

func TestEntriesInvalidRange(t *testing.T) {
	for _, static := range []bool{false, true} {
		r := New(Log{Unverified: true, URL: "https://example.invalid/log", Static: static}, testConfig(t))
		if err := r.Entries(t.Context(), 5, 4, func(Batch) error { return nil }); err == nil {
			t.Errorf("Entries(5, 4) static=%v = nil, want error", static)
		}
	}
}
