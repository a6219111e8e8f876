package ctlog

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// fetcher sends GET requests to one log: it applies the log's (and its
// operator's) rate and concurrency limits, retries what is worth retrying,
// and caps and gunzips bodies. It is safe for concurrent use.
type fetcher struct {
	cfg    Config // defaults applied
	name   string // log URL, for metrics and log lines
	own    *gate  // this log's limits
	shared *gate  // the operator's shared limits, or nil

	// pauseUntil (Unix nanoseconds) holds back every request to the log
	// after a 429, so parallel workers do not all hammer a log that asked
	// for a pause.
	pauseUntil atomic.Int64

	// sizeHint is the largest body read so far (capped), to size the
	// buffer of a body of unknown length.
	sizeHint atomic.Int64
	// buffers keeps the buffers of use, one set per request in flight.
	buffers chan *bodyBuffers
}

// bodyBuffers are what reading a body that is not kept needs, reused from
// one request to the next: the body as read, its gunzipped form, and the
// gzip reader (whose decompressor is large).
type bodyBuffers struct {
	raw, plain []byte
	zr         *gzip.Reader
	br         bytes.Reader
}

func newFetcher(name string, cfg Config, lim Limit, shared *gate) *fetcher {
	if cfg.HTTPClient == nil {
		// Room for a hash tile or proof beside each data request.
		cfg.HTTPClient = defaultClient(2 * lim.Concurrency)
	}
	own := newGate(lim, true)
	return &fetcher{cfg: cfg, name: name, own: own, shared: shared, buffers: make(chan *bodyBuffers, max(lim.Concurrency, 1))}
}

// get fetches u and returns its body and the time the response was read.
// check, if not nil, validates the body; a check error wrapped in
// retryableError makes get try again, any other check error is returned.
// get retries 429, 5xx, 408, timeouts, transport errors and truncated bodies
// up to MaxAttempts, never after ctx is done.
func (f *fetcher) get(ctx context.Context, u string, check func([]byte) error) ([]byte, time.Time, error) {
	return f.fetch(ctx, u, f.cfg.MaxResponseBytes, check, nil)
}

// getCapped is get with a body limit of its own, for endpoints whose
// answers are small (tree heads, proofs, issuers, hash tiles): a hostile
// log cannot make them cost more.
func (f *fetcher) getCapped(ctx context.Context, u string, limit int64, check func([]byte) error) ([]byte, time.Time, error) {
	return f.fetch(ctx, u, min(limit, f.cfg.MaxResponseBytes), check, nil)
}

// use is get for a body that is not needed once use (get's check) has
// returned: the body is read (and gunzipped) into buffers that f keeps for
// later requests, so a log's answers do not each allocate and grow new ones.
// Nothing use keeps may alias the body.
func (f *fetcher) use(ctx context.Context, u string, use func([]byte) error) (time.Time, error) {
	bb := f.takeBuffers()
	defer f.putBuffers(bb)
	_, seen, err := f.fetch(ctx, u, f.cfg.MaxResponseBytes, use, bb)
	return seen, err
}

// fetch implements get and use. When bb is not nil, bodies are read into
// its buffers, which are updated to the (possibly grown) ones of the last
// body.
func (f *fetcher) fetch(ctx context.Context, u string, limit int64, check func([]byte) error, bb *bodyBuffers) ([]byte, time.Time, error) {
	for attempt := 1; ; attempt++ {
		body, seen, err := f.once(ctx, u, limit, bb)
		if err == nil && check != nil {
			if err = check(body); err != nil && !isRetryable(err) {
				return nil, time.Time{}, fmt.Errorf("GET %s: %w", u, err)
			}
		}
		if err == nil {
			return body, seen, nil
		}
		if ctx.Err() != nil {
			return nil, time.Time{}, fmt.Errorf("GET %s: %w", u, ctx.Err())
		}
		wait, retry := f.retryWait(err, attempt)
		if !retry {
			return nil, time.Time{}, withURL(u, err)
		}
		if attempt >= f.cfg.MaxAttempts {
			return nil, time.Time{}, fmt.Errorf("%w (gave up after %d attempts)", withURL(u, err), attempt)
		}
		if f.cfg.Metrics != nil {
			f.cfg.Metrics.Retried(f.name, statusOf(err))
		}
		f.cfg.Logger.DebugContext(ctx, "retrying request", "log", f.name, "url", u,
			"attempt", attempt, "wait", wait, "err", err)
		if err := sleep(ctx, wait); err != nil {
			return nil, time.Time{}, fmt.Errorf("GET %s: %w", u, err)
		}
	}
}

// once makes one attempt, reading the body into bb's buffers if bb is not
// nil, or else into new ones that the caller may keep.
func (f *fetcher) once(ctx context.Context, u string, limit int64, bb *bodyBuffers) ([]byte, time.Time, error) {
	release, err := f.acquire(ctx)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer release()

	actx, cancel := context.WithTimeout(ctx, f.cfg.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodGet, u, nil)
	if err != nil {
		return nil, time.Time{}, permanentError{err}
	}
	req.Header.Set("User-Agent", f.cfg.UserAgent)
	// No Accept-Encoding: the transport then asks for gzip itself and
	// decompresses Content-Encoding: gzip transparently.
	resp, err := f.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer resp.Body.Close()

	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		return nil, time.Time{}, &HTTPError{
			URL:        u,
			Status:     resp.StatusCode,
			RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
			Message:    strings.TrimSpace(strings.ToValidUTF8(string(msg), "?")),
		}
	}
	var buf []byte
	switch {
	case bb != nil:
		buf = bb.raw
	case resp.ContentLength < 0:
		// Sized like the largest body so far (a log's tiles or answers
		// are alike), the buffer rarely has to grow.
		buf = make([]byte, 0, min(f.sizeHint.Load(), limit)+bytes.MinRead)
	}
	body, err := readCapped(resp.Body, limit, resp.ContentLength, buf)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("read body: %w", err)
	}
	if bb != nil {
		bb.raw = body
	}
	// Static-ct-api tiles may be stored gzipped and served without
	// Content-Encoding; 1f 8b can never start a tile leaf (it would be a
	// timestamp far in the future) nor a JSON document.
	if len(body) >= 2 && body[0] == 0x1f && body[1] == 0x8b {
		if body, err = f.gunzip(body, limit, bb); err != nil {
			return nil, time.Time{}, retryableError{fmt.Errorf("gunzip body: %w", err)}
		}
	}
	f.noteSize(len(body))
	return body, time.Now(), nil
}

// gunzip decompresses body (at most MaxResponseBytes) into bb's buffer
// with bb's reader if bb is not nil, or else into a new buffer.
func (f *fetcher) gunzip(body []byte, limit int64, bb *bodyBuffers) ([]byte, error) {
	// The gzip trailer ends with the size of the (last member's)
	// uncompressed data: a hint that spares the buffer its regrowth,
	// bounded since the body may lie.
	hint := 0
	if len(body) >= 4 {
		hint = int(binary.LittleEndian.Uint32(body[len(body)-4:]))
		hint = int(min(int64(hint), limit, maxHintBytes))
	}
	var (
		zr   *gzip.Reader
		br   *bytes.Reader
		into []byte
	)
	if bb != nil {
		zr, br, into = bb.zr, &bb.br, bb.plain
	} else {
		br = new(bytes.Reader)
	}
	br.Reset(body)
	if zr == nil {
		var err error
		if zr, err = gzip.NewReader(br); err != nil {
			return nil, err
		}
		if bb != nil {
			bb.zr = zr
		}
	} else if err := zr.Reset(br); err != nil {
		return nil, err
	}
	if cap(into) < hint+1 {
		into = make([]byte, 0, hint+1)
	}
	plain, err := readCapped(zr, limit, -1, into)
	if err != nil {
		return nil, err
	}
	if bb != nil {
		bb.plain = plain
	}
	return plain, nil
}

// maxHintBytes bounds sizeHint and the buffers f keeps: a rare huge
// answer should not make every later one allocate as much.
const maxHintBytes = 8 << 20

// noteSize raises sizeHint to n (at most maxHintBytes).
func (f *fetcher) noteSize(n int) {
	v := int64(min(n, maxHintBytes))
	for {
		cur := f.sizeHint.Load()
		if v <= cur || f.sizeHint.CompareAndSwap(cur, v) {
			return
		}
	}
}

// takeBuffers returns kept body buffers, or new ones.
func (f *fetcher) takeBuffers() *bodyBuffers {
	select {
	case bb := <-f.buffers:
		return bb
	default:
		return new(bodyBuffers)
	}
}

// putBuffers keeps bb for a later body unless f holds enough already. A
// buffer grown for a rare huge body is let go.
func (f *fetcher) putBuffers(bb *bodyBuffers) {
	if cap(bb.raw) > maxHintBytes {
		bb.raw = nil
	}
	if cap(bb.plain) > maxHintBytes {
		bb.plain = nil
	}
	bb.br.Reset(nil) // drop the last body
	select {
	case f.buffers <- bb:
	default:
	}
}

// acquire waits for the log's pause, concurrency slots and rate tokens.
func (f *fetcher) acquire(ctx context.Context) (release func(), err error) {
	if d := time.Until(time.Unix(0, f.pauseUntil.Load())); d > 0 {
		if err := sleep(ctx, d); err != nil {
			return nil, err
		}
	}
	var held []chan struct{}
	release = func() {
		for _, s := range held {
			<-s
		}
	}
	for _, g := range []*gate{f.own, f.shared} {
		if g == nil || g.sem == nil {
			continue
		}
		select {
		case g.sem <- struct{}{}:
			held = append(held, g.sem)
		case <-ctx.Done():
			release()
			return nil, ctx.Err()
		}
	}
	for _, g := range []*gate{f.shared, f.own} {
		if g == nil || g.lim == nil {
			continue
		}
		if err := g.lim.Wait(ctx); err != nil {
			release()
			return nil, err
		}
	}
	return release, nil
}

// retryWait says whether err is worth another attempt and how long to wait.
func (f *fetcher) retryWait(err error, attempt int) (time.Duration, bool) {
	backoff := f.backoff(attempt)
	var he *HTTPError
	switch {
	case errors.As(err, &he):
		switch {
		case he.Status == http.StatusTooManyRequests:
			if f.cfg.Metrics != nil {
				f.cfg.Metrics.RateLimited(f.name)
			}
			wait := backoff
			if he.RetryAfter > f.cfg.MaxRetryAfter {
				return 0, false
			} else if he.RetryAfter > 0 {
				wait = he.RetryAfter
			}
			if he.RetryAfter >= time.Second {
				f.cfg.Logger.Info("log asked for a pause", "log", f.name, "wait", wait, "attempt", attempt)
			}
			f.pause(wait)
			return wait, true
		case he.Status >= 500 || he.Status == http.StatusRequestTimeout:
			if he.RetryAfter > f.cfg.MaxRetryAfter {
				return 0, false
			} else if he.RetryAfter > 0 {
				return he.RetryAfter, true
			}
			return backoff, true
		}
		return 0, false
	case errors.As(err, new(permanentError)):
		return 0, false
	}
	// Transport errors, per-attempt timeouts, truncated bodies, invalid
	// JSON, empty answers.
	return backoff, true
}

// backoff is exponential backoff with full jitter: uniform in
// [0, min(BackoffMax, BackoffInitial·2^(attempt-1))].
func (f *fetcher) backoff(attempt int) time.Duration {
	d := f.cfg.BackoffMax
	if attempt < 32 {
		if e := f.cfg.BackoffInitial << (attempt - 1); e > 0 && e < d {
			d = e
		}
	}
	return rand.N(d + 1)
}

// pause holds back all requests to the log for d.
func (f *fetcher) pause(d time.Duration) {
	until := time.Now().Add(d).UnixNano()
	for {
		cur := f.pauseUntil.Load()
		if cur >= until || f.pauseUntil.CompareAndSwap(cur, until) {
			return
		}
	}
}

func isRetryable(err error) bool {
	return errors.As(err, new(retryableError))
}

func statusOf(err error) int {
	var he *HTTPError
	if errors.As(err, &he) {
		return he.Status
	}
	return 0
}

// withURL adds the URL to errors that do not carry it already.
func withURL(u string, err error) error {
	if errors.As(err, new(*HTTPError)) || errors.As(err, new(*url.Error)) {
		return err
	}
	return fmt.Errorf("GET %s: %w", u, err)
}

var errTooLarge = errors.New("response body too large")

// readCapped reads r to the end, failing if it holds more than limit bytes.
// It reads into buf (from its start) and returns buf or, if it had to grow,
// a larger copy. size, if known (Content-Length), sizes the buffer in one
// allocation.
func readCapped(r io.Reader, limit, size int64, buf []byte) ([]byte, error) {
	if size > limit {
		return nil, permanentError{fmt.Errorf("%w (%d bytes, limit %d)", errTooLarge, size, limit)}
	}
	// One byte more than the body, so the read that sees EOF needs no
	// growth.
	if size >= 0 && int64(cap(buf)) < size+1 {
		buf = make([]byte, 0, size+1)
	}
	buf = buf[:0]
	r = io.LimitReader(r, limit+1)
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, max(len(buf), bytes.MinRead))
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return nil, permanentError{fmt.Errorf("%w (over %d bytes)", errTooLarge, limit)}
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP-date
// (RFC 9110 section 10.2.3). It returns 0 if absent, invalid or past.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
