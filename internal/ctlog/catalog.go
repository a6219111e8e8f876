package ctlog

import (
	"context"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/certlake/certlake/internal/record"
)

// Catalog is every log certlake knows and how to read each: the log list
// plus the configured custom and static logs, verification and per-log
// overrides on top of the default and operator limits (Client), and one
// shared Reader per log, so that a log's rate limit and caches hold across
// everything a process reads from it. Use it by pointer; it is safe for
// concurrent use once built.
type Catalog struct {
	LogListURL     string              // v3 log list (URL or path); empty = none
	IncludeRetired bool                // keep retired logs from the list
	Custom         []ConfigLog         // custom_logs (RFC 6962)
	Static         []ConfigLog         // static_logs (static-ct-api monitoring prefixes)
	Verify         bool                // prove what logs serve; an Override may turn it off
	Overrides      map[string]Override // per-log tuning, keyed by OverrideKey(url)
	Client         Config              // HTTP, retries, default and operator limits

	mu       sync.Mutex
	readers  map[string]Reader // by URL
	cached   []Log             // Lookup's copy of List
	cachedAt time.Time
}

// Override tunes one log (ct.logs.<url>); zero fields keep the defaults.
type Override struct {
	RateLimit   float64 // requests per second
	Burst       int
	Concurrency int   // requests in flight
	Window      int   // FetchRange activities in flight
	Verify      *bool // overrides Catalog.Verify; nil inherits
}

// Apply returns l tuned by o.
func (o Override) Apply(l Log) Log {
	if o.RateLimit != 0 {
		l.RateLimit = o.RateLimit
	}
	if o.Burst > 0 {
		l.Burst = o.Burst
	}
	if o.Concurrency > 0 {
		l.Concurrency = o.Concurrency
	}
	if o.Verify != nil {
		l.Unverified = !*o.Verify
	}
	return l
}

// OverrideKey is the key of a log's override: its normalized URL in lower
// case (configuration keys arrive lower-cased, log URLs may not be).
func OverrideKey(u string) string { return strings.ToLower(record.NormalizeURL(u)) }

// Override returns the override of the log at u, if any.
func (c *Catalog) Override(u string) (Override, bool) {
	o, ok := c.Overrides[OverrideKey(u)]
	return o, ok
}

// Window is the FetchRange window of the override of the log at u; 0 keeps
// the default.
func (c *Catalog) Window(u string) int {
	if o, ok := c.Override(u); ok && o.Window > 0 {
		return o.Window
	}
	return 0
}

// Tune returns l with the catalog's verification and l's override applied:
// how a log found outside the catalog (a state file's) is read.
func (c *Catalog) Tune(l Log) Log {
	l.Unverified = !c.Verify
	if o, ok := c.Override(l.URL); ok {
		l = o.Apply(l)
	}
	return l
}

// Limit is the per-log limit l is read with: its override's fields, then
// its operator's, then the defaults (Config.DefaultConcurrency 0 counts as
// the reader's default, 4). A Rate of 0 is unlimited.
func (c *Catalog) Limit(l Log) Limit {
	cfg := c.Client
	if cfg.DefaultConcurrency <= 0 {
		cfg.DefaultConcurrency = Config{}.withDefaults().DefaultConcurrency
	}
	if o, ok := c.Override(l.URL); ok {
		l = o.Apply(l)
	}
	return cfg.limitFor(l)
}

// CatalogOptions tune List.
type CatalogOptions struct {
	// Offline reads the log list only when it is a local file, and a list
	// that cannot be read only costs names and kinds: previews from the
	// state file need no network.
	Offline bool
	// IncludeRetired keeps the list's retired logs whatever the catalog's
	// IncludeRetired says (to name a log one reads by hand).
	IncludeRetired bool
}

// List returns every known log: the log list plus custom and static logs,
// verification and per-log overrides applied, sorted by URL. A log list
// that cannot be loaded wraps ErrLogList.
func (c *Catalog) List(ctx context.Context, opts CatalogOptions) ([]Log, error) {
	var logs []Log
	if c.LogListURL != "" && (!opts.Offline || isLocal(c.LogListURL)) {
		listed, err := LoadList(ctx, c.LogListURL, ListOptions{
			IncludeRetired: c.IncludeRetired || opts.IncludeRetired, HTTPClient: c.Client.HTTPClient, UserAgent: c.Client.UserAgent,
			Logger: c.Client.Logger})
		if err != nil && !opts.Offline {
			return nil, err
		}
		logs = listed
	}
	logs = AddConfigLogs(logs, c.Custom, c.Static)
	for i, l := range logs {
		logs[i] = c.Tune(l)
	}
	sort.Slice(logs, func(i, j int) bool { return logs[i].URL < logs[j].URL })
	return logs, nil
}

func isLocal(list string) bool {
	u, err := url.Parse(list)
	return err == nil && u.Scheme != "http" && u.Scheme != "https"
}

// catalogTTL is how long Lookup trusts its copy of the list.
const catalogTTL = 10 * time.Minute

// Lookup finds the log at u in the catalog (operator, kind, key, limits),
// from a copy of List refreshed every 10 minutes, so that a process that
// did not list the logs itself reads one with the same settings. A list
// that cannot be loaded keeps the previous copy.
func (c *Catalog) Lookup(ctx context.Context, u string) (Log, bool) {
	c.mu.Lock()
	stale := time.Since(c.cachedAt) > catalogTTL
	cached := c.cached
	c.mu.Unlock()
	if stale {
		if logs, err := c.List(ctx, CatalogOptions{}); err == nil {
			c.mu.Lock()
			c.cached, c.cachedAt = logs, time.Now()
			c.mu.Unlock()
			cached = logs
		}
	}
	for _, l := range cached {
		if l.URL == u {
			return l, true
		}
	}
	return Log{}, false
}

// Reader returns the shared reader of the log at l.URL, built with l and
// its override the first time.
func (c *Catalog) Reader(l Log) Reader {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.readers[l.URL]; ok {
		return r
	}
	if c.readers == nil {
		c.readers = map[string]Reader{}
	}
	if o, ok := c.Override(l.URL); ok {
		l = o.Apply(l)
	}
	r := New(l, c.Client)
	c.readers[l.URL] = r
	return r
}
