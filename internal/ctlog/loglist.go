package ctlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
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
	// Key is the log's public key, DER SubjectPublicKeyInfo: it verifies
	// STH and checkpoint signatures. Required unless Unverified.
	Key []byte
	// Origin is a static-ct-api log's checkpoint origin. Default: its
	// submission prefix (log list) or URL without scheme (config).
	Origin string
	// ReadOnlyRoot is final_tree_head.sha256_root_hash of a read-only log,
	// or nil.
	ReadOnlyRoot *[32]byte
	// Unverified reads the log without checking signatures or proofs
	// (ct.verify: false). Its rows are then only as good as the network.
	Unverified bool
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
	Key         []byte  // DER SubjectPublicKeyInfo; see ParseKey
	Origin      string  // static-ct-api checkpoint origin; default DefaultOrigin(URL)
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
	// Logger is told about malformed logs, which are skipped. Default:
	// discard.
	Logger *slog.Logger
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
		}.withDefaults(), Limit{}, nil)
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
		Name      string            `json:"name"`
		Logs      []json.RawMessage `json:"logs"`
		TiledLogs []json.RawMessage `json:"tiled_logs"`
	} `json:"operators"`
}

// listedLog is one element of logs[] or tiled_logs[]. Elements are decoded
// one by one, so a malformed one costs only itself.
type listedLog struct {
	Description   string          `json:"description"`
	Key           []byte          `json:"key"`
	URL           string          `json:"url"`            // logs[]
	SubmissionURL string          `json:"submission_url"` // tiled_logs[]
	MonitoringURL string          `json:"monitoring_url"` // tiled_logs[]
	State         json.RawMessage `json:"state"`
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
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var logs []Log
	seen := map[string]bool{}
	add := func(op string, raw json.RawMessage, static bool) error {
		var e listedLog
		if err := json.Unmarshal(raw, &e); err != nil {
			return err
		}
		rawURL := e.URL
		if static {
			rawURL = e.MonitoringURL
		}
		if rawURL == "" {
			return errors.New("no URL")
		}
		state, size, root, err := parseState(e.State)
		if err != nil {
			return err
		}
		if state == "rejected" || state == "retired" && !opts.IncludeRetired {
			return nil
		}
		l := Log{URL: record.NormalizeURL(rawURL), Name: e.Description, Operator: op, Static: static, State: state,
			ReadOnlyTreeSize: size, ReadOnlyRoot: root, Key: e.Key}
		if static {
			sub := e.SubmissionURL
			if sub == "" {
				sub = rawURL
			}
			l.Origin = DefaultOrigin(sub)
		}
		if !seen[l.URL] {
			seen[l.URL] = true
			logs = append(logs, l)
		}
		return nil
	}
	for _, op := range list.Operators {
		for kind, ls := range [][]json.RawMessage{op.Logs, op.TiledLogs} {
			for i, raw := range ls {
				if err := add(op.Name, raw, kind == 1); err != nil {
					// One bad element is that log's problem, not the list's.
					logger.Warn("log list: malformed log skipped", "operator", op.Name,
						"element", fmt.Sprintf("%s[%d]", []string{"logs", "tiled_logs"}[kind], i), "err", err)
				}
			}
		}
	}
	return logs, nil
}

// parseState reads a v3 state object such as {"usable":{"timestamp":...}}
// or {"readonly":{"final_tree_head":{"tree_size":N,...},...}}. A null or
// absent state is "".
func parseState(raw json.RawMessage) (string, *uint64, *[32]byte, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil, nil, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return "", nil, nil, fmt.Errorf("state: %w", err)
	}
	if len(m) == 0 {
		return "", nil, nil, nil
	}
	// The schema allows one key; should a list ever carry more, the most
	// final state wins.
	for _, s := range []string{"rejected", "retired", "readonly"} {
		if _, ok := m[s]; ok {
			if s != "readonly" {
				return s, nil, nil, nil
			}
			var ro struct {
				FinalTreeHead *struct {
					TreeSize *uint64 `json:"tree_size"`
					Root     []byte  `json:"sha256_root_hash"`
				} `json:"final_tree_head"`
			}
			if err := json.Unmarshal(m[s], &ro); err != nil {
				return "", nil, nil, fmt.Errorf("readonly state: %w", err)
			}
			if ro.FinalTreeHead == nil || ro.FinalTreeHead.TreeSize == nil {
				return "", nil, nil, errors.New("readonly state without final_tree_head.tree_size")
			}
			var root *[32]byte
			if len(ro.FinalTreeHead.Root) == 32 {
				root = (*[32]byte)(ro.FinalTreeHead.Root)
			}
			return s, ro.FinalTreeHead.TreeSize, root, nil
		}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys[0], nil, nil, nil
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
			RateLimit: c.RateLimit, Burst: c.Burst, Concurrency: c.Concurrency, Key: c.Key, Origin: c.Origin}
		if isStatic && l.Origin == "" {
			l.Origin = DefaultOrigin(c.URL)
		}
		if i, ok := pos[l.URL]; ok {
			if l.Operator == "" {
				l.Operator = out[i].Operator
			}
			if len(l.Key) == 0 {
				l.Key = out[i].Key
			}
			if c.Origin == "" && out[i].Origin != "" {
				l.Origin = out[i].Origin
			}
			l.ReadOnlyRoot = out[i].ReadOnlyRoot
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
