// Package config loads certlake's settings: a file (certlake.yaml), the
// environment (CERTLAKE_<SECTION>_<KEY>) and command-line flags, in that order
// of increasing precedence. It is the only package that uses viper or reads
// the environment; the mains pass the typed sub-structs below down to the
// packages that need them (STYLE.md, "Config").
//
// Every key, its default and what it does is listed in certlake.example.yaml
// at the top of the repository. Validation happens at load time and every
// error names the key: "unknown key lake.mian_path in bad.yaml",
// "lake.checkpoint_interval: want an integer, got \"abc\"".
package config

import (
	"strings"
	"time"

	"github.com/certlake/certlake/internal/allowed"
)

// Config is the whole of certlake's per-process configuration. Per-run choices
// (which logs, which range, which staging table) are workflow inputs, not
// config.
type Config struct {
	Temporal Temporal `key:"temporal"`
	Lake     Lake     `key:"lake"`
	CT       CT       `key:"ct"`
	Backfill Backfill `key:"backfill"`
	Merge    Merge    `key:"merge"`
	Worker   Worker   `key:"worker"`
	Storage  Storage  `key:"storage"`

	// File is the configuration file that was read; empty when none was.
	File string `key:"-"`
}

// Temporal says how to reach the Temporal service.
type Temporal struct {
	// Address is the frontend's host:port. Default "localhost:7233" (the
	// dev server); Temporal Cloud: "<ns>.<account>.tmprl.cloud:7233".
	Address string `key:"address"`
	// Namespace is the Temporal namespace. Default "default".
	Namespace string `key:"namespace"`
	// TaskQueue is the queue workers poll and starters target. Default
	// "certlake".
	TaskQueue string `key:"task_queue"`
	// UIURL is the Web UI's base URL, used to print links to runs. Default
	// "http://localhost:8233" (the dev server's UI).
	UIURL string `key:"ui_url"`
	// TLS configures TLS or mTLS to the frontend. Optional.
	TLS TLS `key:"tls"`
	// APIKey authenticates to Temporal Cloud (sent as a bearer token; it
	// turns TLS on). Optional; prefer the env CERTLAKE_TEMPORAL_API_KEY.
	APIKey string `key:"api_key"`
}

// TLS configures TLS to the Temporal frontend. TLS is used when Enabled is
// true, when any file below is set, or when an API key is set.
type TLS struct {
	// Enabled turns TLS on with the system roots. Default false.
	Enabled bool `key:"enabled"`
	// CertFile is the client certificate (PEM) for mTLS. Optional; needs
	// KeyFile.
	CertFile string `key:"cert_file"`
	// KeyFile is the client private key (PEM) for mTLS. Optional; needs
	// CertFile.
	KeyFile string `key:"key_file"`
	// CAFile holds the CA certificates (PEM) that sign the server's
	// certificate. Optional; default the system roots.
	CAFile string `key:"ca_file"`
	// ServerName overrides the name checked in the server's certificate.
	// Optional; default the host of Address.
	ServerName string `key:"server_name"`
	// InsecureSkipVerify disables server certificate checks. Default false;
	// for tests only.
	InsecureSkipVerify bool `key:"insecure_skip_verify"`
}

// Active reports whether TLS is to be used.
func (t TLS) Active() bool {
	return t.Enabled || t.CertFile != "" || t.KeyFile != "" || t.CAFile != "" || t.ServerName != "" || t.InsecureSkipVerify
}

// Lake locates the Delta tables and tunes how they are written and queried.
type Lake struct {
	// MainPath is the main certstream Delta table (shared with the live
	// ingester): a local path, file:///abs/path or s3://bucket/prefix (see
	// Storage). Default "./data/certstream". Created when missing.
	MainPath string `key:"main_path"`
	// StagingPath is the default staging table of the starter's backfill
	// and gaps commands. Default "./data/staging". Merges are never aimed
	// at it implicitly: merge and schedule create need --staging-path,
	// since a merge retires the staging table.
	StagingPath string `key:"staging_path"`
	// PlanDir is where large backfill and merge plans are written as files
	// (they are too big for Temporal payloads): a path or a URI, like
	// MainPath. Every worker must see the same location. Default:
	// ".certlake-plans" next to the main table (the main table's parent
	// directory, or the parent prefix in its bucket), outside any Delta
	// table.
	PlanDir string `key:"plan_dir"`
	// AllowedLocations are the path or URI prefixes under which certlake
	// may create, write or delete tables, plans, scratch and index files.
	// A staging_path given in a workflow input or a flag outside them is
	// refused before anything is touched. Default: the locations holding
	// main_path and staging_path (their parent directories or prefixes).
	AllowedLocations []string `key:"allowed_locations"`
	// CheckpointInterval is the number of commits between Delta
	// checkpoints. Default 100, as delta-rs.
	CheckpointInterval int `key:"checkpoint_interval"`
	// AsDERBinary makes newly created tables store as_der as binary instead
	// of a base64 string. Default false (base64, like certstream-server-rust
	// up to 648d679). Existing tables keep their own type.
	AsDERBinary bool `key:"as_der_binary"`
	// CompactStaging compresses every column of staging files with zstd,
	// as main's: staging files smaller (by at least the 17-30% that zstd
	// saves over Snappy on as_der), for more CPU per backfill (zstd on
	// as_der and on the hex digests). Default
	// false: as_der is Snappy and the hex digests are stored plain, the
	// faster choice while staging lives only until the next merge.
	CompactStaging bool `key:"compact_staging"`
	// DuckDB tunes the embedded DuckDB used for gap detection and merges.
	DuckDB DuckDB `key:"duckdb"`
}

// Allowed is AllowedLocations, or its default when empty: the locations
// holding MainPath and StagingPath.
func (l Lake) Allowed() []string {
	if len(l.AllowedLocations) > 0 {
		return l.AllowedLocations
	}
	return allowed.Defaults(l.MainPath, l.StagingPath)
}

// DuckDB tunes the embedded query engine.
type DuckDB struct {
	// MemoryLimit caps DuckDB's memory, e.g. "2GB". Default "1GB" (with the merge's buffers a worker stays under 2 GiB); empty
	// leaves DuckDB's own default (80% of RAM).
	MemoryLimit string `key:"memory_limit"`
	// Threads is DuckDB's thread count. Default 0 = every core.
	Threads int `key:"threads"`
	// TempDir is where DuckDB spills when over MemoryLimit. Optional;
	// default DuckDB's own (".tmp" for in-memory databases).
	TempDir string `key:"temp_dir"`
}

// CT configures the Certificate Transparency log clients.
type CT struct {
	// LogListURL is Google's log list v3 (an https URL, a file:// URL or a
	// local path). Default
	// "https://www.gstatic.com/ct/log_list/v3/all_logs_list.json". Empty
	// means no list: only custom_logs and static_logs are read.
	LogListURL string `key:"log_list_url"`
	// IncludeRetired also backfills retired logs (up to their final tree
	// head). Default false.
	IncludeRetired bool `key:"include_retired"`
	// StateFile is the live ingester's state file (certstream-server-rust's
	// certstream_state.json), whose current_index per log is the default
	// ceiling. Default "certstream_state.json".
	StateFile string `key:"state_file"`
	// CustomLogs are extra RFC 6962 logs not in the log list. Optional.
	CustomLogs []Log `key:"custom_logs"`
	// StaticLogs are extra static-ct-api logs (URL = monitoring prefix) not
	// in the log list. Optional.
	StaticLogs []Log `key:"static_logs"`
	// UserAgent is sent with every request to a log. Default
	// "certlake/1 (+https://github.com/certlake/certlake)".
	UserAgent string `key:"user_agent"`
	// RequestTimeout bounds one HTTP request. Default 30s.
	RequestTimeout time.Duration `key:"request_timeout"`
	// MaxAttempts is the number of tries of one request on 429, 5xx and
	// timeouts before the range is reported failed. Default 8.
	MaxAttempts int `key:"max_attempts"`
	// BackoffInitial is the first retry delay (doubled each try, with
	// jitter; Retry-After wins when given). Default 1s.
	BackoffInitial time.Duration `key:"backoff_initial"`
	// BackoffMax caps one retry delay. Default 1m.
	BackoffMax time.Duration `key:"backoff_max"`
	// BatchSize is the number of entries asked per get-entries request.
	// Default 256 (logs return fewer; certlake continues after short reads).
	BatchSize int `key:"batch_size"`
	// RateLimit is the default request rate per log, requests/second.
	// Default 5; 0 = unlimited.
	RateLimit float64 `key:"rate_limit"`
	// Burst is the default burst of the per-log rate limiter, requests.
	// Default 5.
	Burst int `key:"burst"`
	// Concurrency is the default number of requests in flight per log.
	// Default 4.
	Concurrency int `key:"concurrency"`
	// Operators overrides the limits for every log of an operator, keyed by
	// the operator name of the log list (case-insensitive, e.g. "digicert").
	// Optional.
	Operators map[string]Limits `key:"operators"`
	// Logs overrides the limits of one log, keyed by its URL
	// (case-insensitive; wins over Operators). Optional.
	Logs map[string]LogLimits `key:"logs"`
	// Verify checks what every log serves against its signed tree:
	// STH/checkpoint signatures with the log's key, Merkle proofs of every
	// range before it is staged. A log without a key is then refused.
	// Default true; ct.logs.<url>.verify overrides it per log.
	Verify bool `key:"verify"`
}

// VerifyFor says whether the log at url is verified: its ct.logs override,
// else ct.verify. (The engine reads the same from ctlog.Catalog; this is
// for validation, which runs without the engine.)
func (c CT) VerifyFor(url string) bool {
	if o, ok := lookupLogFold(c.Logs, url); ok && o.Verify != nil {
		return *o.Verify
	}
	return c.Verify
}

func lookupFold[V any](m map[string]V, k string) (V, bool) {
	if k == "" {
		var zero V
		return zero, false
	}
	if v, ok := m[strings.ToLower(k)]; ok {
		return v, true
	}
	for mk, v := range m {
		if strings.EqualFold(mk, k) {
			return v, true
		}
	}
	var zero V
	return zero, false
}

// lookupLogFold matches a log URL with or without its trailing slash.
func lookupLogFold(m map[string]LogLimits, url string) (LogLimits, bool) {
	if v, ok := lookupFold(m, url); ok {
		return v, true
	}
	if strings.HasSuffix(url, "/") {
		return lookupFold(m, strings.TrimSuffix(url, "/"))
	}
	return lookupFold(m, url+"/")
}

// Log is a log named in the config rather than found in the log list.
type Log struct {
	// Name is the log's description, the source_name column. Optional;
	// default the URL.
	Name string `key:"name"`
	// URL is the log's base URL (RFC 6962) or monitoring prefix
	// (static-ct-api). Required.
	URL string `key:"url"`
	// Key is the log's public key: base64 of its DER SubjectPublicKeyInfo
	// (the "key" of the log list), or PEM. Required when the log is
	// verified (ct.verify, ct.logs.<url>.verify), even for a log the log
	// list has too: the config is checked without the list.
	Key string `key:"key"`
	// Origin is a static-ct-api log's checkpoint origin. Optional;
	// default the URL without scheme and trailing slash.
	Origin string `key:"origin"`
}

// Limits are per-log request limits. Zero fields inherit.
type Limits struct {
	// RateLimit is requests/second per log. Optional; 0 inherits.
	RateLimit float64 `key:"rate_limit"`
	// Burst of the rate limiter, requests. Optional; 0 inherits.
	Burst int `key:"burst"`
	// Concurrency is requests in flight per log. Optional; 0 inherits.
	Concurrency int `key:"concurrency"`
}

// LogLimits are one log's overrides. Zero fields inherit.
type LogLimits struct {
	// RateLimit is requests/second. Optional; 0 inherits.
	RateLimit float64 `key:"rate_limit"`
	// Burst of the rate limiter, requests. Optional; 0 inherits.
	Burst int `key:"burst"`
	// Concurrency is requests in flight. Optional; 0 inherits.
	Concurrency int `key:"concurrency"`
	// Window is FetchRange activities in flight for this log. Optional; 0
	// inherits backfill.window.
	Window int `key:"window"`
	// Verify overrides ct.verify for this log. Optional.
	Verify *bool `key:"verify"`
}

// Backfill tunes BackfillWorkflow and its FetchRange activities.
type Backfill struct {
	// ChunkSize is the number of log indices per FetchRange activity.
	// Default 50000: a FetchRange commits every StageBatchRows and a retry
	// resumes after the last commit, so a larger chunk costs no refetching
	// and no memory; it cuts the activities, and so the history events and
	// the Temporal server's work, per entry (at 10000, on a log served
	// without rate limit, the dev server's CPU was ~12% of a 1M-entry
	// backfill's time on 2 cores; at 50000, ~7%, see the README).
	ChunkSize uint64 `key:"chunk_size"`
	// Window is the number of FetchRange activities in flight per log.
	// Default 4.
	Window int `key:"window"`
	// StageBatchRows is the number of rows per staging commit inside one
	// FetchRange (a retry resumes after the last commit). It bounds the rows
	// one FetchRange holds in memory (a row is a few KB). Default 10000.
	StageBatchRows int `key:"stage_batch_rows"`
	// FetchAttempts is how many times a FetchRange is tried before its range
	// is reported failed (a dead log is given up after about
	// 2s·2^(attempts-1) of backoff per range). Default 8.
	FetchAttempts int `key:"fetch_attempts"`
	// FlushInterval commits buffered rows at least this often, so a slow,
	// rate-limited log still makes durable progress. Default 30s.
	FlushInterval time.Duration `key:"flush_interval"`
	// Ceiling is the default source of each log's exclusive upper bound:
	// "state_file" (the live ingester's current_index) or "tree_size".
	// Default "state_file".
	Ceiling string `key:"ceiling"`
	// HeartbeatTimeout is how long a FetchRange may go without a heartbeat
	// before Temporal retries it elsewhere (a dead worker is noticed this
	// fast). Default 1m.
	HeartbeatTimeout time.Duration `key:"heartbeat_timeout"`
}

// Merge tunes MergeWorkflow.
type Merge struct {
	// BatchRows is the staging rows a MergeBatch activity aims for: each
	// batch scans the main files that may hold its keys once, so fewer,
	// larger batches scan main less often, and memory does not grow with
	// it (DuckDB spills). Default 2000000, merge.DefaultBatchRows.
	BatchRows int64 `key:"batch_rows"`
	// Window is the number of MergeBatch activities in flight. Default 2.
	Window int `key:"window"`
	// HeartbeatTimeout is how long a MergeBatch may go without a heartbeat
	// before Temporal retries it. Default 2m.
	HeartbeatTimeout time.Duration `key:"heartbeat_timeout"`
}

// Storage says how to reach the object store of s3:// table locations.
type Storage struct {
	S3 S3 `key:"s3"`
}

// S3 configures S3-compatible storage (AWS S3, Tigris, R2, MinIO,
// versitygw). Every empty field falls back to the standard AWS environment
// (AWS_ACCESS_KEY_ID, AWS_REGION, AWS_ENDPOINT_URL, AWS_PROFILE, ...) and
// the default credential chain. Its fields convert directly to
// storage.S3Config. Secrets here never reach logs, workflow inputs or
// error messages.
type S3 struct {
	// Endpoint is the store's URL, e.g. "http://127.0.0.1:7070" or
	// "https://fly.storage.tigris.dev". Default "" = AWS.
	Endpoint string `key:"endpoint"`
	// Region signs requests. Default "" = from the environment / AWS
	// default chain (us-east-1 when none is found).
	Region string `key:"region"`
	// AccessKeyID and SecretAccessKey are static credentials; set both or
	// neither. Default "" = the AWS default credential chain (env, shared
	// config, IMDS, web identity). Prefer CERTLAKE_STORAGE_S3_SECRET_ACCESS_KEY.
	AccessKeyID     string `key:"access_key_id"`
	SecretAccessKey string `key:"secret_access_key"`
	// SessionToken goes with temporary credentials. Optional.
	SessionToken string `key:"session_token"`
	// PathStyle addresses buckets as endpoint/bucket (MinIO, versitygw,
	// most self-hosted stores). Default false (virtual-hosted, as AWS).
	PathStyle bool `key:"path_style"`
	// AllowHTTP permits a plain http endpoint. Default false: refused.
	AllowHTTP bool `key:"allow_http"`
}

// Worker configures the worker process.
type Worker struct {
	// MetricsAddress is where /metrics and /healthz are served, host:port.
	// Default ":9090"; empty disables the HTTP server.
	MetricsAddress string `key:"metrics_address"`
	// LogFormat is "text" or "json". Default: json, or text when stderr is
	// a terminal.
	LogFormat string `key:"log_format"`
	// LogLevel is "debug", "info", "warn" or "error". Default "info".
	LogLevel string `key:"log_level"`
	// MaxConcurrentActivities caps activities run at once by this worker,
	// and with them its memory: each FetchRange holds up to
	// backfill.stage_batch_rows rows. Default 16; 0 = the Temporal SDK's
	// default (1000).
	MaxConcurrentActivities int `key:"max_concurrent_activities"`
	// GCPercent, when above 0, sets the Go garbage collector's target
	// (GOGC) of the worker process; the GOGC environment variable, when
	// set, wins. A backfill allocates a few KB per entry over a small live
	// heap: at 400 the bench's backfills spent 5-10% less CPU, and the
	// worker's peak RSS in the reliability load test doubled (229 -> 514
	// MiB at 96k entries, against 181 -> 239 MiB at Go's default). Default
	// 0: Go's default (100), memory first.
	GCPercent int `key:"gc_percent"`
	// ScratchDir is this worker's own local scratch (downloads of remote
	// Parquet files for DuckDB, files staged before upload, the merge's
	// DuckDB spill files unless lake.duckdb.temp_dir is set). Never shared
	// between workers. Default "" = a directory under the OS temp dir
	// (removed when the worker stops).
	ScratchDir string `key:"scratch_dir"`
}

// Defaults returns the configuration used when nothing overrides it. PlanDir
// is left empty here; Load derives it from MainPath.
func Defaults() Config {
	return Config{
		Temporal: Temporal{
			Address:   "localhost:7233",
			Namespace: "default",
			TaskQueue: "certlake",
			UIURL:     "http://localhost:8233",
		},
		Lake: Lake{
			MainPath:           "./data/certstream",
			StagingPath:        "./data/staging",
			CheckpointInterval: 100,
			DuckDB:             DuckDB{MemoryLimit: "1GB"},
		},
		CT: CT{
			LogListURL:     "https://www.gstatic.com/ct/log_list/v3/all_logs_list.json",
			Verify:         true,
			StateFile:      "certstream_state.json",
			UserAgent:      "certlake/1 (+https://github.com/certlake/certlake)",
			RequestTimeout: 30 * time.Second,
			MaxAttempts:    8,
			BackoffInitial: time.Second,
			BackoffMax:     time.Minute,
			BatchSize:      256,
			RateLimit:      5,
			Burst:          5,
			Concurrency:    4,
		},
		Backfill: Backfill{
			ChunkSize:        50000,
			Window:           4,
			StageBatchRows:   10000,
			FetchAttempts:    8,
			FlushInterval:    30 * time.Second,
			Ceiling:          CeilingStateFile,
			HeartbeatTimeout: time.Minute,
		},
		Merge: Merge{
			BatchRows:        2000000,
			Window:           2,
			HeartbeatTimeout: 2 * time.Minute,
		},
		Worker: Worker{
			MetricsAddress:          ":9090",
			LogLevel:                "info",
			MaxConcurrentActivities: 16,
		},
	}
}
