package ctlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/certlake/certlake/internal/record"
)

// DefaultListURL is Google's v3 list of all known logs.
const DefaultListURL = "https://www.gstatic.com/ct/log_list/v3/all_logs_list.json"

// Log is one CT log to read.
type Log struct {
	// URL is the normalized log URL (spec/record-format.md section 3.5):
	// the RFC 6962 base URL, or the static-ct-api monitoring prefix. It is
	// the source_url column and the log's key everywhere.
	URL string
	// Name is the log's description (the source_name column).
	Name string
	// Operator is the name of the log's operator, "" for config logs
	// that do not name one.
	Operator string
	// Static is true for a static-ct-api (tiled) log.
	Static bool
	// State is the log list state ("usable", "qualified", "pending",
	// "readonly", "retired", "rejected"), or "" if none is given.
	State string
	// ReadOnlyTreeSize is final_tree_head.tree_size of a read-only log:
	// the log will never grow past it. Nil otherwise.
	ReadOnlyTreeSize *uint64
	// RateLimit (requests per second), Burst and Concurrency override the
	// Config defaults for this log; zero means the default.
	RateLimit   float64
	Burst       int
	Concurrency int
}

// Source returns the identity that rows of this log carry.
func (l Log) Source() record.Source {
	return record.Source{URL: record.NormalizeURL(l.URL), Name: l.Name, Static: l.Static}
}

// ConfigLog is a log named in the configuration: custom_logs (RFC 6962)
// or static_logs (static-ct-api, URL = monitoring prefix).
type ConfigLog struct {
	Name        string
	URL         string
	Operator    string  // optional; selects the operator's limits
	RateLimit   float64 // optional, requests per second
	Burst       int     // optional
	Concurrency int     // optional
}

// ListOptions tunes LoadList and ParseList. The zero value is usable.
type ListOptions struct {
	// IncludeRetired keeps retired logs, which still serve their entries
	// and can be backfilled (quirk Q16). Rejected logs are always dropped.
	IncludeRetired bool
	// HTTPClient fetches an http(s) list. Default: a plain client.
	HTTPClient *http.Client
	// UserAgent is sent when fetching the list. Default DefaultUserAgent().
	UserAgent string
	// Timeout bounds one attempt at fetching the list. Default 30 s.
	Timeout time.Duration
}

// LoadList reads a v3 log list from location, an http(s) URL, a file://
// URL or a local path, and returns its logs as ParseList does. Every error
// wraps ErrLogList.
func LoadList(ctx context.Context, location string, opts ListOptions) ([]Log, error) {
	data, err := readList(ctx, location, opts)
	if err != nil {
		return nil, fmt.Errorf("load log list %s: %w: %w", location, ErrLogList, err)
	}
	logs, err := ParseList(data, opts)
	if err != nil {
		return nil, fmt.Errorf("load log list %s: %w", location, err)
	}
	return logs, nil
}

func readList(ctx context.Context, location string, opts ListOptions) ([]byte, error) {
	const maxListBytes = 32 << 20
	u, err := url.Parse(location)
	if err == nil && (u.Scheme == "http" || u.Scheme == "https") {
		f := newFetcher(location, Config{
			HTTPClient:     opts.HTTPClient,
			UserAgent:      opts.UserAgent,
			RequestTimeout: opts.Timeout,
			MaxAttempts:    3,
			BackoffInitial: 500 * time.Millisecond,
			BackoffMax:     5 * time.Second,
			// A list that asks for a long pause is not worth waiting for.
			MaxRetryAfter:    10 * time.Second,
			MaxResponseBytes: maxListBytes,
		}.withDefaults(), Limit{Rate: -1}, nil)
		body, _, err := f.get(ctx, location, nil)
		return body, err
	}
	path := location
	if err == nil && u.Scheme == "file" {
		path = u.Path
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(data) > maxListBytes {
		return nil, fmt.Errorf("%w (over %d bytes)", errTooLarge, maxListBytes)
	}
	return data, nil
}

// logListV3 is the part of the v3 log list schema
// (https://www.gstatic.com/ct/log_list/v3/log_list_schema.json) that is read.
type logListV3 struct {
	Operators []struct {
		Name string `json:"name"`
		Logs []struct {
			Description string          `json:"description"`
			URL         string          `json:"url"`
			State       json.RawMessage `json:"state"`
		} `json:"logs"`
		TiledLogs []struct {
			Description   string          `json:"description"`
			MonitoringURL string          `json:"monitoring_url"`
			State         json.RawMessage `json:"state"`
		} `json:"tiled_logs"`
	} `json:"operators"`
}

// ParseList parses a v3 log list: operators[].logs[] (RFC 6962) and
// operators[].tiled_logs[] (static-ct-api, read at monitoring_url). It drops
// rejected logs, and retired ones unless opts.IncludeRetired, keeps logs
// with no state, and keeps the first of two logs with the same normalized
// URL. Every error wraps ErrLogList.
func ParseList(data []byte, opts ListOptions) ([]Log, error) {
	logs, err := parseList(data, opts)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrLogList, err)
	}
	return logs, nil
}

func parseList(data []byte, opts ListOptions) ([]Log, error) {
	var list logListV3
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, fmt.Errorf("parse JSON: %w", err)
	}
	if len(list.Operators) == 0 {
		return nil, errors.New("no operators")
	}
	var logs []Log
	seen := map[string]bool{}
	add := func(op, desc, rawURL string, static bool, rawState json.RawMessage) error {
		if rawURL == "" {
			return fmt.Errorf("log %q of %q: no URL", desc, op)
		}
		state, size, err := parseState(rawState)
		if err != nil {
			return fmt.Errorf("log %q of %q: %w", desc, op, err)
		}
		if state == "rejected" || state == "retired" && !opts.IncludeRetired {
			return nil
		}
		l := Log{URL: record.NormalizeURL(rawURL), Name: desc, Operator: op, Static: static, State: state, ReadOnlyTreeSize: size}
		if !seen[l.URL] {
			seen[l.URL] = true
			logs = append(logs, l)
		}
		return nil
	}
	for _, op := range list.Operators {
		for _, l := range op.Logs {
			if err := add(op.Name, l.Description, l.URL, false, l.State); err != nil {
				return nil, err
			}
		}
		for _, l := range op.TiledLogs {
			if err := add(op.Name, l.Description, l.MonitoringURL, true, l.State); err != nil {
				return nil, err
			}
		}
	}
	return logs, nil
}

// parseState reads a v3 state object such as {"usable":{"timestamp":...}}
// or {"readonly":{"final_tree_head":{"tree_size":N,...},...}}. A null or
// absent state is "".
func parseState(raw json.RawMessage) (string, *uint64, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return "", nil, fmt.Errorf("state: %w", err)
	}
	if len(m) == 0 {
		return "", nil, nil
	}
	// The schema allows one key; should a list ever carry more, the most
	// final state wins.
	for _, s := range []string{"rejected", "retired", "readonly"} {
		if _, ok := m[s]; ok {
			if s != "readonly" {
				return s, nil, nil
			}
			var ro struct {
				FinalTreeHead *struct {
					TreeSize *uint64 `json:"tree_size"`
				} `json:"final_tree_head"`
			}
			if err := json.Unmarshal(m[s], &ro); err != nil {
				return "", nil, fmt.Errorf("readonly state: %w", err)
			}
			if ro.FinalTreeHead == nil || ro.FinalTreeHead.TreeSize == nil {
				return "", nil, errors.New("readonly state without final_tree_head.tree_size")
			}
			return s, ro.FinalTreeHead.TreeSize, nil
		}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys[0], nil, nil
}

// AddConfigLogs returns logs followed by the configured custom (RFC 6962)
// and static (static-ct-api) logs. A configured log whose normalized URL
// is already present replaces the listed one, keeping the listed Operator
// and ReadOnlyTreeSize unless the config names an operator.
func AddConfigLogs(logs []Log, custom, static []ConfigLog) []Log {
	out := append([]Log(nil), logs...)
	pos := make(map[string]int, len(out))
	for i, l := range out {
		pos[l.URL] = i
	}
	add := func(c ConfigLog, isStatic bool) {
		l := Log{URL: record.NormalizeURL(c.URL), Name: c.Name, Operator: c.Operator, Static: isStatic,
			RateLimit: c.RateLimit, Burst: c.Burst, Concurrency: c.Concurrency}
		if i, ok := pos[l.URL]; ok {
			if l.Operator == "" {
				l.Operator = out[i].Operator
			}
			l.State, l.ReadOnlyTreeSize = out[i].State, out[i].ReadOnlyTreeSize
			if l.Name == "" {
				l.Name = out[i].Name
			}
			out[i] = l
			return
		}
		pos[l.URL] = len(out)
		out = append(out, l)
	}
	for _, c := range custom {
		add(c, false)
	}
	for _, c := range static {
		add(c, true)
	}
	return out
}

// Filter returns the logs whose Name or URL contains, case-insensitively,
// one of the comma-separated alternatives in substr. An empty substr keeps
// every log.
func Filter(logs []Log, substr string) []Log {
	var alts []string
	for _, a := range strings.Split(substr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			alts = append(alts, strings.ToLower(a))
		}
	}
	if len(alts) == 0 {
		return append([]Log(nil), logs...)
	}
	var out []Log
	for _, l := range logs {
		name, u := strings.ToLower(l.Name), strings.ToLower(l.URL)
		for _, a := range alts {
			if strings.Contains(name, a) || strings.Contains(u, a) {
				out = append(out, l)
				break
			}
		}
	}
	return out
}
