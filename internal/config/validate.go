package config

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/certlake/certlake/internal/allowed"
	"github.com/certlake/certlake/internal/storage"
)

// Ceiling modes of backfill.ceiling.
const (
	CeilingStateFile = "state_file"
	CeilingTreeSize  = "tree_size"
)

// PlanDirName is the directory created next to the main table for plans when
// lake.plan_dir is not set.
const PlanDirName = ".certlake-plans"

// derive fills settings whose defaults depend on other settings.
func (c *Config) derive() {
	if c.Lake.PlanDir == "" && c.Lake.MainPath != "" {
		// Next to the main table, not inside it: a Delta table directory
		// should hold only the table, and the plans must outlive staging.
		if loc, err := storage.ParseLocation("lake.main_path", c.Lake.MainPath); err == nil && !loc.IsLocal() {
			c.Lake.PlanDir = loc.Parent().Child(PlanDirName).String()
		} else {
			c.Lake.PlanDir = filepath.Join(filepath.Dir(filepath.Clean(c.Lake.MainPath)), PlanDirName)
		}
	}
	c.Lake.AllowedLocations = c.Lake.Allowed()
}

// memoryLimitRE matches DuckDB's memory_limit syntax ("2GB", "512 MiB", "80%").
var memoryLimitRE = regexp.MustCompile(`(?i)^\d+(\.\d+)?\s*(b|kb|mb|gb|tb|kib|mib|gib|tib|%)?$`)

// validate checks ranges and choices, one error per bad key.
func (c *Config) validate() []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{key}, args...)...))
	}
	nonEmpty := func(key, v string) {
		if strings.TrimSpace(v) == "" {
			bad(key, "must not be empty")
		}
	}
	atLeast := func(key string, v, lo int64) {
		if v < lo {
			bad(key, "want %d or more, got %d", lo, v)
		}
	}

	t := c.Temporal
	nonEmpty("temporal.address", t.Address)
	if t.Address != "" {
		if _, _, err := net.SplitHostPort(t.Address); err != nil {
			bad("temporal.address", "want host:port, got %q", t.Address)
		}
	}
	nonEmpty("temporal.namespace", t.Namespace)
	nonEmpty("temporal.task_queue", t.TaskQueue)
	if t.UIURL != "" {
		if u, err := url.Parse(t.UIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("temporal.ui_url", "want an http(s) URL, got %q", t.UIURL)
		}
	}
	if (t.TLS.CertFile == "") != (t.TLS.KeyFile == "") {
		bad("temporal.tls", "cert_file and key_file go together (got cert_file %q, key_file %q)", t.TLS.CertFile, t.TLS.KeyFile)
	}

	lk := c.Lake
	nonEmpty("lake.main_path", lk.MainPath)
	atLeast("lake.checkpoint_interval", int64(lk.CheckpointInterval), 1)
	atLeast("lake.duckdb.threads", int64(lk.DuckDB.Threads), 0)
	if lk.DuckDB.MemoryLimit != "" && !memoryLimitRE.MatchString(lk.DuckDB.MemoryLimit) {
		bad("lake.duckdb.memory_limit", "want a size such as \"2GB\" or \"512MiB\", got %q", lk.DuckDB.MemoryLimit)
	}
	var locs [3]storage.Location
	for i, kv := range [][2]string{{"lake.main_path", lk.MainPath}, {"lake.staging_path", lk.StagingPath}, {"lake.plan_dir", lk.PlanDir}} {
		if kv[1] == "" {
			continue
		}
		loc, err := storage.ParseLocation(kv[0], kv[1])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		locs[i] = loc
	}
	if lk.StagingPath != "" && lk.MainPath != "" && locs[0].String() != "" && locs[0].String() == locs[1].String() {
		bad("lake.staging_path", "must differ from lake.main_path (%q)", lk.MainPath)
	}
	if list, err := allowed.New(lk.AllowedLocations); err != nil {
		errs = append(errs, err)
	} else {
		for _, kv := range [][2]string{{"lake.main_path", lk.MainPath}, {"lake.staging_path", lk.StagingPath}, {"lake.plan_dir", lk.PlanDir}} {
			if kv[1] == "" {
				continue
			}
			if _, err := list.Check(kv[0], kv[1]); err != nil && errors.Is(err, allowed.ErrOutside) {
				errs = append(errs, err)
			}
		}
	}
	s3 := c.Storage.S3
	if s3.Endpoint != "" {
		if u, err := url.Parse(s3.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			bad("storage.s3.endpoint", "want an http(s) URL with a host and no credentials, such as https://s3.example.com or http://127.0.0.1:7070")
		} else if u.Scheme == "http" && !s3.AllowHTTP {
			bad("storage.s3.endpoint", "%s is plain http: use https, or set storage.s3.allow_http: true for a store on a trusted network", s3.Endpoint)
		}
	}
	if (s3.AccessKeyID == "") != (s3.SecretAccessKey == "") {
		bad("storage.s3", "access_key_id and secret_access_key go together (set both, or neither for the AWS credential chain)")
	}

	ct := c.CT
	if ct.LogListURL == "" && len(ct.CustomLogs) == 0 && len(ct.StaticLogs) == 0 {
		bad("ct.log_list_url", "is empty and no custom_logs or static_logs are configured: there is no log to read")
	}
	if ct.RequestTimeout <= 0 {
		bad("ct.request_timeout", "want more than 0s, got %s", ct.RequestTimeout)
	}
	atLeast("ct.max_attempts", int64(ct.MaxAttempts), 1)
	if ct.BackoffInitial <= 0 {
		bad("ct.backoff_initial", "want more than 0s, got %s", ct.BackoffInitial)
	}
	if ct.BackoffMax < ct.BackoffInitial {
		bad("ct.backoff_max", "want at least ct.backoff_initial (%s), got %s", ct.BackoffInitial, ct.BackoffMax)
	}
	atLeast("ct.batch_size", int64(ct.BatchSize), 1)
	if ct.RateLimit < 0 {
		bad("ct.rate_limit", "want 0 (unlimited) or more, got %g", ct.RateLimit)
	}
	atLeast("ct.burst", int64(ct.Burst), 1)
	atLeast("ct.concurrency", int64(ct.Concurrency), 1)
	for i, l := range ct.CustomLogs {
		checkLogURL(fmt.Sprintf("ct.custom_logs[%d].url", i), l.URL, bad)
		checkLogName(fmt.Sprintf("ct.custom_logs[%d].name", i), l.Name, bad)
		checkLogKey(fmt.Sprintf("ct.custom_logs[%d].key", i), l.Key, bad)
		checkLogVerifiable(fmt.Sprintf("ct.custom_logs[%d].key", i), l, ct, bad)
	}
	for i, l := range ct.StaticLogs {
		checkLogURL(fmt.Sprintf("ct.static_logs[%d].url", i), l.URL, bad)
		checkLogName(fmt.Sprintf("ct.static_logs[%d].name", i), l.Name, bad)
		checkLogKey(fmt.Sprintf("ct.static_logs[%d].key", i), l.Key, bad)
		checkLogVerifiable(fmt.Sprintf("ct.static_logs[%d].key", i), l, ct, bad)
	}
	for _, name := range sortedKeys(ct.Operators) {
		o := ct.Operators[name]
		checkLimits("ct.operators."+name, o.RateLimit, o.Burst, o.Concurrency, 0, bad)
	}
	for _, u := range sortedKeys(ct.Logs) {
		o := ct.Logs[u]
		checkLimits("ct.logs."+u, o.RateLimit, o.Burst, o.Concurrency, o.Window, bad)
	}

	b := c.Backfill
	atLeast("backfill.chunk_size", int64(min(b.ChunkSize, 1<<62)), 1)
	atLeast("backfill.window", int64(b.Window), 1)
	atLeast("backfill.stage_batch_rows", int64(b.StageBatchRows), 1)
	atLeast("backfill.fetch_attempts", int64(b.FetchAttempts), 1)
	if b.FlushInterval <= 0 {
		bad("backfill.flush_interval", "want more than 0s, got %s", b.FlushInterval)
	}
	if b.Ceiling != CeilingStateFile && b.Ceiling != CeilingTreeSize {
		bad("backfill.ceiling", "want %q or %q, got %q", CeilingStateFile, CeilingTreeSize, b.Ceiling)
	}

	atLeast("merge.batch_rows", c.Merge.BatchRows, 1)
	atLeast("merge.window", int64(c.Merge.Window), 1)
	if c.Merge.HeartbeatTimeout < time.Second {
		bad("merge.heartbeat_timeout", "want at least 1s, got %s", c.Merge.HeartbeatTimeout)
	}
	if c.Backfill.HeartbeatTimeout < time.Second {
		bad("backfill.heartbeat_timeout", "want at least 1s, got %s", c.Backfill.HeartbeatTimeout)
	}

	w := c.Worker
	if w.MetricsAddress != "" {
		if _, port, err := net.SplitHostPort(w.MetricsAddress); err != nil {
			bad("worker.metrics_address", "want host:port or :port (empty disables), got %q", w.MetricsAddress)
		} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			bad("worker.metrics_address", "want a numeric port, got %q", w.MetricsAddress)
		}
	}
	switch w.LogFormat {
	case "", "text", "json":
	default:
		bad("worker.log_format", "want \"text\" or \"json\", got %q", w.LogFormat)
	}
	if _, err := parseLevel(w.LogLevel); err != nil {
		bad("worker.log_level", "want debug, info, warn or error, got %q", w.LogLevel)
	}
	atLeast("worker.max_concurrent_activities", int64(w.MaxConcurrentActivities), 0)
	atLeast("worker.gc_percent", int64(w.GCPercent), 0)
	return errs
}

// checkLogName refuses a log name that is not UTF-8: it becomes the
// source_name string column, which Parquet requires to be UTF-8.
func checkLogName(key, name string, bad func(string, string, ...any)) {
	if !utf8.ValidString(name) {
		bad(key, "is not valid UTF-8: %q", strings.ToValidUTF8(name, "\uFFFD"))
	}
}

func checkLogURL(key, raw string, bad func(string, string, ...any)) {
	if raw == "" {
		bad(key, "must not be empty")
		return
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad(key, "want an http(s) URL, got %q", raw)
	}
}

// checkLogKey checks that a log key, if given, is a public key.
func checkLogKey(key, raw string, bad func(string, string, ...any)) {
	if raw == "" {
		return
	}
	if _, err := LogKeyDER(raw); err != nil {
		bad(key, "want the log's public key as base64 DER (the log list's \"key\") or PEM: %v", err)
	}
}

// checkLogVerifiable refuses a configured log that is to be verified but
// has no key: without one, every range of it would fail at run time. The
// config is checked without the log list, so a log that the list has too
// needs its key here as well.
func checkLogVerifiable(key string, l Log, ct CT, bad func(string, string, ...any)) {
	if l.Key != "" || l.URL == "" || !ct.VerifyFor(l.URL) {
		return
	}
	bad(key, "is empty, and %s is to be verified (ct.verify): set the log's public key (base64 of its DER SubjectPublicKeyInfo, the log list's \"key\", or PEM), or turn verification off for this log with ct.logs.%q.verify: false", l.URL, l.URL)
}

// LogKeyDER decodes a log key given as base64 of its DER
// SubjectPublicKeyInfo or as a PEM "PUBLIC KEY" block.
func LogKeyDER(raw string) ([]byte, error) {
	s := strings.TrimSpace(raw)
	if strings.HasPrefix(s, "-----BEGIN") {
		b, _ := pem.Decode([]byte(s))
		if b == nil {
			return nil, errors.New("malformed PEM")
		}
		s = base64.StdEncoding.EncodeToString(b.Bytes)
	}
	der, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, errors.New("not base64")
	}
	if _, err := x509.ParsePKIXPublicKey(der); err != nil {
		return nil, fmt.Errorf("not a SubjectPublicKeyInfo: %w", err)
	}
	return der, nil
}

func checkLimits(key string, rate float64, burst, conc, window int, bad func(string, string, ...any)) {
	if rate < 0 {
		bad(key+".rate_limit", "want 0 (inherit) or more, got %g", rate)
	}
	if burst < 0 {
		bad(key+".burst", "want 0 (inherit) or more, got %d", burst)
	}
	if conc < 0 {
		bad(key+".concurrency", "want 0 (inherit) or more, got %d", conc)
	}
	if window < 0 {
		bad(key+".window", "want 0 (inherit) or more, got %d", window)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
