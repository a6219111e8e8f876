// Package estimate predicts what fetching a backfill plan costs: the HTTP
// requests each log must answer and how long they take at the configured
// limits (per-log rate, burst and concurrency, and an operator's budget
// shared by its logs), so that an operator can see before starting whether
// a backfill takes minutes or weeks.
//
// The model is the one internal/ctlog enforces in one worker: every log is
// fetched at once (one child workflow each), a log's requests are spaced by
// its token bucket and bounded by its requests in flight, and an operator's
// budget is shared fairly among its logs still running. What it does not
// know (429 answers, retries, slow responses beyond Latency, several
// workers each with their own limiters) makes a real run slower, never
// faster.
package estimate

import (
	"iter"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/certlake/certlake/internal/gaps"
)

// TileWidth is the number of entries in a full static-ct-api data tile
// (c2sp.org/static-ct-api, "Log Entries").
const TileWidth = 256

// Limit bounds the requests to one log, or to all logs of an operator.
type Limit struct {
	// Rate is requests per second; zero or negative means unlimited.
	Rate float64
	// Burst is the number of requests the token bucket lets through at
	// once at the start. Zero means the rate rounded up, as ctlog does.
	Burst int
	// Concurrency is requests in flight; zero means unbounded.
	Concurrency int
}

// Log is one log's planned work and how it is fetched.
type Log struct {
	URL      string
	Operator string // selects a shared budget in Options.Operators; optional
	// Static is true for a static-ct-api log (one request per data tile),
	// false for RFC 6962 (get-entries).
	Static bool
	// Ranges are the planned ranges of this log, inclusive.
	Ranges []gaps.Range
	// BatchSize is the number of entries asked per get-entries request
	// (ct.batch_size); requests are aligned on multiples of it. Required
	// for RFC 6962 logs.
	BatchSize uint64
	// Served is the most entries the log returns in one response (Google's
	// logs 32, most others 256); 0 means BatchSize. The reader asks again
	// after a short read, so it multiplies the requests.
	Served uint64
	// Limit is the log's own limit (its override, else its operator's
	// per-log limit, else the default).
	Limit Limit
	// Window is the number of chunks fetched at once for this log
	// (backfill.window or the log's override); 0 means Options.Window.
	Window int
	// Verified logs are read with proofs (ct.verify): a static-ct-api
	// log takes a level-1 hash tile per 65536 entries, and an RFC 6962
	// chunk the inclusion proof of its first entry and one consistency
	// proof per VerifyGroup entries.
	Verified bool
	// VerifyGroup is the number of RFC 6962 entries proven by one
	// consistency proof; 0 means 16 × BatchSize, as in ctlog.
	VerifyGroup uint64
}

// Options are the settings shared by all logs.
type Options struct {
	// ChunkSize is the number of indices per FetchRange activity
	// (backfill.chunk_size): ranges are cut as the backfill cuts them,
	// and a tile or batch cut by a chunk border is asked for twice. Zero
	// means no cut.
	ChunkSize uint64
	// Latency is the assumed time of one request, answer included. It
	// bounds a log's request rate to Concurrency/Latency. Zero means
	// requests take no time (only rate limits count).
	Latency time.Duration
	// Operators are the budgets shared by all logs of an operator, keyed
	// by operator name (case-insensitive).
	Operators map[string]Limit
	// Window is the number of chunks (FetchRange activities) in flight
	// per log. With chunks of few requests it, not Concurrency, bounds
	// the requests in flight. Zero means unbounded.
	Window int
}

// LogEstimate is the prediction for one log.
type LogEstimate struct {
	URL      string
	Ranges   int
	Entries  uint64
	Requests uint64
	// Duration is from the start of the backfill to this log's last
	// answer.
	Duration time.Duration
	// Bound names what limits this log: "rate" (its own token bucket),
	// "concurrency" (requests in flight over Latency), "window" (the
	// chunks in flight hold fewer requests than that), "operator" (its
	// operator's shared budget), or "" when it has nothing to fetch.
	Bound string
}

// Estimate is the prediction for a plan.
type Estimate struct {
	Logs     []LogEstimate // in the order of the input
	Requests uint64
	// Duration is until the last log is done: logs are fetched at once.
	Duration time.Duration
}

// Requests returns the number of HTTP requests that fetching ranges takes:
// for a static-ct-api log the data tiles each chunk overlaps, for RFC 6962
// the get-entries requests of each chunk split into BatchSize-aligned
// spans, each taking ceil(span/Served) requests; for a verified log also
// its proofs (see Log.Verified). Tree heads and issuers, fetched once per
// log or cached, are not counted.
func Requests(l Log, chunkSize uint64) uint64 {
	var n uint64
	bs := max(l.BatchSize, 1)
	group := l.VerifyGroup
	if group == 0 {
		group = 16 * bs
	}
	var hashParents map[uint64]bool // level-1 hash tiles, fetched once per log
	for c := range chunks(l.Ranges, chunkSize) {
		if l.Static {
			tiles := c.End/TileWidth - c.Start/TileWidth + 1
			n += tiles
			if l.Verified {
				// A full data tile is proven by its root against the
				// level-1 hash tile above it, fetched once per 65536
				// entries (ctlog keeps it).
				if hashParents == nil {
					hashParents = map[uint64]bool{}
				}
				for p := c.Start / (TileWidth * TileWidth); p <= c.End/(TileWidth*TileWidth); p++ {
					if !hashParents[p] {
						hashParents[p] = true
						n++
					}
				}
			}
			continue
		}
		if l.Verified {
			n += 1 + (c.End-c.Start+group)/group // first entry's inclusion proof, consistency proofs
		}
		served := l.Served
		if served == 0 || served > bs {
			served = bs
		}
		per := func(len uint64) uint64 { return (len + served - 1) / served }
		first, last := c.Start/bs, c.End/bs // the aligned spans the chunk touches
		if first == last {
			n += per(c.End - c.Start + 1)
			continue
		}
		n += per(bs - c.Start%bs)         // head, up to the first border
		n += (last - first - 1) * per(bs) // full spans
		n += per(c.End%bs + 1)            // tail
	}
	return n
}

// chunks yields the pieces gaps.Chunk cuts ranges into, without holding
// them: a 2-billion-entry range is 40,000 chunks of 50,000.
func chunks(ranges []gaps.Range, size uint64) iter.Seq[gaps.Range] {
	return func(yield func(gaps.Range) bool) {
		for _, r := range ranges {
			if size == 0 {
				if !yield(r) {
					return
				}
				continue
			}
			for start := r.Start; ; start += size {
				end := r.End
				if r.End-start >= size {
					end = start + size - 1
				}
				if !yield(gaps.Range{SourceURL: r.SourceURL, Start: start, End: end}) {
					return
				}
				if end == r.End {
					break
				}
			}
		}
	}
}

// Plan predicts the requests and duration of fetching every log's ranges
// at once under opts.
func Plan(logs []Log, opts Options) Estimate {
	est := Estimate{Logs: make([]LogEstimate, len(logs))}
	flows := make([]*flow, len(logs))
	for i, l := range logs {
		e := LogEstimate{URL: l.URL, Ranges: len(l.Ranges)}
		for _, r := range l.Ranges {
			e.Entries += r.Len()
		}
		e.Requests = Requests(l, opts.ChunkSize)
		est.Requests += e.Requests
		est.Logs[i] = e
		flows[i] = newFlow(l, e.Requests, opts)
	}
	simulate(flows, opts)
	for i, f := range flows {
		if f.requests == 0 {
			continue
		}
		// The last request still takes its round trip after its token.
		d := f.finish + opts.Latency.Seconds()
		est.Logs[i].Duration = seconds(d)
		est.Logs[i].Bound = f.bound
		est.Duration = max(est.Duration, est.Logs[i].Duration)
	}
	return est
}

// flow is one log in the simulation: requests still to send and the most
// requests per second it may send on its own.
type flow struct {
	requests uint64
	left     float64 // requests still paced by a rate (after the burst)
	cap      float64 // requests/s allowed by its own limits; +Inf: none
	capBound string  // what sets cap
	group    string  // lower-cased operator with a shared budget, or ""
	finish   float64 // seconds from the start
	bound    string
}

func newFlow(l Log, requests uint64, opts Options) *flow {
	f := &flow{requests: requests, left: float64(requests), cap: math.Inf(1), capBound: "rate"}
	if l.Limit.Rate > 0 {
		f.cap = l.Limit.Rate
		f.left = max(0, f.left-float64(burst(l.Limit)))
	}
	// Requests in flight: the log's concurrency, unless its window of
	// chunks holds fewer requests than that.
	inFlight, inFlightBound := float64(l.Limit.Concurrency), "concurrency"
	window := l.Window
	if window == 0 {
		window = opts.Window
	}
	n := 0
	for range chunks(l.Ranges, opts.ChunkSize) {
		n++
	}
	if window > 0 && n > 0 {
		perChunk := math.Ceil(float64(requests) / float64(n))
		if w := float64(window) * perChunk; inFlight <= 0 || w < inFlight {
			inFlight, inFlightBound = w, "window"
		}
	}
	if inFlight > 0 && opts.Latency > 0 {
		if byConc := inFlight / opts.Latency.Seconds(); byConc < f.cap {
			f.cap, f.capBound = byConc, inFlightBound
		}
	}
	for name := range opts.Operators {
		if l.Operator != "" && strings.EqualFold(name, l.Operator) {
			f.group = strings.ToLower(name)
		}
	}
	if requests > 0 && f.left == 0 {
		f.bound = f.capBound // all within the burst
	}
	return f
}

// burst is the token bucket's size for lim, as ctlog builds it.
func burst(lim Limit) int {
	if lim.Burst > 0 {
		return lim.Burst
	}
	return max(1, int(math.Ceil(lim.Rate)))
}

// simulate runs the flows as a fluid model: at every step each flow sends
// at the rate its own limits and its operator's fair share allow, until
// the next flow is done.
func simulate(flows []*flow, opts Options) {
	groups := map[string]float64{} // operator -> shared requests/s
	for name, lim := range opts.Operators {
		g := math.Inf(1)
		if lim.Rate > 0 {
			g = lim.Rate
		}
		if lim.Concurrency > 0 && opts.Latency > 0 {
			g = min(g, float64(lim.Concurrency)/opts.Latency.Seconds())
		}
		groups[strings.ToLower(name)] = g
	}
	now := 0.0
	for {
		var active []*flow
		for _, f := range flows {
			if f.left > 0 {
				active = append(active, f)
			}
		}
		if len(active) == 0 {
			return
		}
		rates := allocate(active, groups)
		step := math.Inf(1)
		for i, f := range active {
			step = min(step, f.left/rates[i])
		}
		if math.IsInf(step, 1) || step < 0 {
			step = 0 // unlimited flows finish at once
		}
		now += step
		for i, f := range active {
			f.left -= rates[i] * step
			if f.left <= 1e-9*float64(f.requests) || math.IsInf(rates[i], 1) {
				f.left, f.finish = 0, now
			}
		}
	}
}

// allocate gives each active flow its request rate: its own cap, and within
// an operator's budget a max-min fair share (flows below an equal share keep
// their cap, the rest split what is left).
func allocate(active []*flow, groups map[string]float64) []float64 {
	rates := make([]float64, len(active))
	members := map[string][]int{}
	for i, f := range active {
		rates[i] = f.cap
		f.bound = f.capBound
		if f.group != "" {
			members[f.group] = append(members[f.group], i)
		}
	}
	for g, idx := range members {
		budget := groups[g]
		if math.IsInf(budget, 1) {
			continue
		}
		slices.SortFunc(idx, func(a, b int) int { return cmpFloat(active[a].cap, active[b].cap) })
		for k, i := range idx {
			share := budget / float64(len(idx)-k)
			if active[i].cap <= share {
				budget -= active[i].cap
				continue
			}
			rates[i] = share
			active[i].bound = "operator"
			budget -= share
		}
	}
	return rates
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// seconds converts to a Duration, saturating.
func seconds(s float64) time.Duration {
	if s >= math.MaxInt64/float64(time.Second) {
		return math.MaxInt64
	}
	return time.Duration(s * float64(time.Second))
}
