package ctlog

import (
	"io"
	"log/slog"
	"math"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Config tunes how a [Reader] talks to its log. Every zero field means the
// documented default, so the zero Config is usable.
type Config struct {
	// HTTPClient sends the requests. Optional; share one among Readers.
	// Default: a client of its own per Reader, keeping as many idle
	// connections to the log as requests may be in flight, with no overall
	// timeout (RequestTimeout bounds each attempt).
	HTTPClient *http.Client
	// UserAgent is sent with every request. Default: [DefaultUserAgent].
	UserAgent string
	// RequestTimeout bounds one HTTP attempt, body included. Default 30 s.
	RequestTimeout time.Duration
	// MaxAttempts is the number of attempts per request before giving up,
	// for 429, 5xx, timeouts, transport errors, truncated or invalid bodies
	// and empty get-entries answers. Default 10.
	MaxAttempts int
	// BackoffInitial and BackoffMax bound the exponential backoff between
	// attempts (full jitter). Defaults 1 s and 60 s.
	BackoffInitial time.Duration
	BackoffMax     time.Duration
	// MaxRetryAfter is the longest Retry-After that is waited out inside a
	// call. A longer one ends the call with an [*HTTPError] carrying it, so
	// the caller (Temporal) can wait instead. Default 60 s.
	MaxRetryAfter time.Duration
	// DefaultRateLimit is the request rate per log, in requests per second,
	// for logs without their own or their operator's limit. 0 (the
	// default, as in the configuration's ct.rate_limit) means unlimited.
	DefaultRateLimit float64
	// DefaultBurst is the rate limiter's burst. Default: the rate rounded up,
	// at least 1.
	DefaultBurst int
	// DefaultConcurrency is the number of requests in flight per log.
	// Default 4.
	DefaultConcurrency int
	// OperatorLimits gives per-log limits for the logs of an operator
	// (keyed by operator name, case-insensitive). A Log's own fields win.
	// Optional.
	OperatorLimits map[string]Limit
	// Limiters, if set, also enforces one budget per operator shared by
	// every Reader built with the same *Limiters. Optional.
	Limiters *Limiters
	// BatchSize is the number of entries asked for in one get-entries
	// request. Default 256.
	BatchSize int
	// MaxResponseBytes caps a get-entries answer or a data tile (after
	// gunzip). Default 8 MiB. Tree heads, proofs, hash tiles and issuers
	// have smaller limits of their own (16 KiB to 64 KiB).
	MaxResponseBytes int64
	// IssuerCacheBytes bounds the static-ct-api issuers kept per Reader,
	// in bytes of DER. Default 16 MiB.
	IssuerCacheBytes int
	// HashTileCacheBytes bounds the verified hash tiles (above level 0)
	// kept per static-ct-api Reader. Default 4 MiB (512 tiles: the parents
	// of 33M entries).
	HashTileCacheBytes int
	// VerifyGroup is the number of RFC 6962 entries proven by one
	// consistency proof (get-sth-consistency): entries are emitted once
	// their group is proven. Default 16 × BatchSize.
	VerifyGroup int
	// Logger receives debug lines about retries. Default: discard.
	Logger *slog.Logger
	// Metrics, if set, is told about responses, retries and rate limits.
	Metrics Metrics
}

// Limit bounds the requests to one log, or to all logs of an operator.
// Zero fields of a log's limit inherit its operator's, then the Config
// default; a rate still 0 after that means unlimited. An operator's zero
// Rate or Concurrency means no shared bound.
type Limit struct {
	Rate        float64 // requests per second; 0 = inherit, then unlimited
	Burst       int
	Concurrency int // requests in flight
}

// Metrics is told what a Reader does. Implementations must be safe for
// concurrent use. log is the log's normalized URL.
type Metrics interface {
	// Fetched reports n entries received in one response.
	Fetched(log string, n int)
	// Retried reports an attempt that will be retried; status is the HTTP
	// status, or 0 for a transport error, timeout or unusable body.
	Retried(log string, status int)
	// RateLimited reports a 429 answer.
	RateLimited(log string)
	// Malformed reports n entries emitted as BadEntry.
	Malformed(log string, n int)
	// VerificationFailed reports something the log served that was not
	// proven (a range, a tree head), or the log contradicting itself.
	VerificationFailed(log string)
}

// DefaultUserAgent returns "certlake/<version> (+https://github.com/certlake/certlake)",
// with the module version of the running binary, or "dev".
func DefaultUserAgent() string {
	v := "dev"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	return "certlake/" + v + " (+https://github.com/certlake/certlake)"
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.UserAgent == "" {
		c.UserAgent = DefaultUserAgent()
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 30 * time.Second
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 10
	}
	if c.BackoffInitial <= 0 {
		c.BackoffInitial = time.Second
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = 60 * time.Second
	}
	if c.BackoffMax < c.BackoffInitial {
		c.BackoffMax = c.BackoffInitial
	}
	if c.MaxRetryAfter <= 0 {
		c.MaxRetryAfter = 60 * time.Second
	}
	if c.DefaultConcurrency <= 0 {
		c.DefaultConcurrency = 4
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 256
	}
	if c.MaxResponseBytes <= 0 {
		c.MaxResponseBytes = 8 << 20
	}
	if c.IssuerCacheBytes <= 0 {
		c.IssuerCacheBytes = 16 << 20
	}
	if c.HashTileCacheBytes <= 0 {
		c.HashTileCacheBytes = 4 << 20
	}
	if c.VerifyGroup <= 0 {
		c.VerifyGroup = 16 * c.BatchSize
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c
}

// defaultClient returns an HTTP client keeping up to idle connections per
// host (net/http keeps 2 by default, too few for parallel fetches).
func defaultClient(idle int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = max(idle, 2)
	t.IdleConnTimeout = 30 * time.Second
	return &http.Client{Transport: t}
}

// limitFor resolves the per-log limit of l: the Log's own fields, then its
// operator's, then the defaults.
func (c Config) limitFor(l Log) Limit {
	op := c.operatorLimit(l.Operator)
	lim := Limit{Rate: l.RateLimit, Burst: l.Burst, Concurrency: l.Concurrency}
	if lim.Rate == 0 {
		lim.Rate = op.Rate
	}
	if lim.Rate == 0 {
		lim.Rate = c.DefaultRateLimit
	}
	if lim.Burst == 0 {
		lim.Burst = op.Burst
	}
	if lim.Burst == 0 {
		lim.Burst = c.DefaultBurst
	}
	if lim.Concurrency == 0 {
		lim.Concurrency = op.Concurrency
	}
	if lim.Concurrency == 0 {
		lim.Concurrency = c.DefaultConcurrency
	}
	return lim
}

func (c Config) operatorLimit(op string) Limit {
	for k, v := range c.OperatorLimits {
		if strings.EqualFold(k, op) {
			return v
		}
	}
	return Limit{}
}

// newLimiter builds a token bucket for lim (rate 0: unlimited; a negative
// rate, the former spelling, too).
func newLimiter(lim Limit) *rate.Limiter {
	if lim.Rate <= 0 {
		return rate.NewLimiter(rate.Inf, 1)
	}
	burst := lim.Burst
	if burst <= 0 {
		burst = max(1, int(math.Ceil(lim.Rate)))
	}
	return rate.NewLimiter(rate.Limit(lim.Rate), burst)
}

// Limiters holds one rate limiter and one concurrency bound per operator,
// shared by every Reader whose Config points to it. It is safe for
// concurrent use.
type Limiters struct {
	limits map[string]Limit // lower-cased operator name -> limit; read-only

	mu  sync.Mutex
	ops map[string]*gate // guarded by mu
}

// NewLimiters returns Limiters that enforce perOperator (keyed by operator
// name, case-insensitive). Operators not in the map are not limited beyond
// their per-log limits. A zero Concurrency means unbounded.
func NewLimiters(perOperator map[string]Limit) *Limiters {
	m := make(map[string]Limit, len(perOperator))
	for k, v := range perOperator {
		m[strings.ToLower(k)] = v
	}
	return &Limiters{limits: m, ops: map[string]*gate{}}
}

// gate returns the shared gate of operator op, or nil if it has no limit.
func (ls *Limiters) gate(op string) *gate {
	if ls == nil {
		return nil
	}
	key := strings.ToLower(op)
	lim, ok := ls.limits[key]
	if !ok {
		return nil
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	g := ls.ops[key]
	if g == nil {
		g = newGate(lim, lim.Rate != 0)
		ls.ops[key] = g
	}
	return g
}

// gate combines a token bucket and a bound on requests in flight.
type gate struct {
	lim *rate.Limiter // nil: no rate limit
	sem chan struct{} // nil: no concurrency bound
}

func newGate(lim Limit, limitRate bool) *gate {
	g := &gate{}
	if limitRate {
		g.lim = newLimiter(lim)
	}
	if lim.Concurrency > 0 {
		g.sem = make(chan struct{}, lim.Concurrency)
	}
	return g
}
