package config

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// writeFile writes a config file into a temporary directory.
func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// derived returns Defaults() as Load completes it.
func derived() Config {
	c := Defaults()
	c.derive()
	return c
}

func TestLoadDefaults(t *testing.T) {
	t.Chdir(t.TempDir()) // no ./certlake.yaml here
	got, err := Load("", nil)
	if err != nil {
		t.Fatalf("Load(\"\", nil) = %v", err)
	}
	want := derived()
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("Load(\"\", nil) = %+v, want %+v", *got, want)
	}
	if got.Lake.PlanDir != filepath.Join("data", PlanDirName) {
		t.Errorf("default plan_dir = %q, want %q", got.Lake.PlanDir, filepath.Join("data", PlanDirName))
	}
}

func TestExampleFileMatchesDefaults(t *testing.T) {
	const example = "../../certlake.example.yaml"
	got, err := Load(example, nil)
	if err != nil {
		t.Fatalf("Load(%s) = %v", example, err)
	}
	want := derived()
	want.File = example
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("Load(%s) =\n%+v\nwant the defaults\n%+v", example, *got, want)
	}

	// Every key is written out in the example, so it documents them all.
	body, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	var tree map[string]any
	if err := yaml.Unmarshal(body, &tree); err != nil {
		t.Fatal(err)
	}
	for _, key := range Keys() {
		var node any = tree
		for _, part := range strings.Split(key, ".") {
			m, _ := node.(map[string]any)
			var ok bool
			if node, ok = m[part]; !ok {
				t.Errorf("%s is missing from %s", key, example)
				break
			}
		}
	}
}

func TestLoadDefaultFileInWorkingDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, DefaultFile), []byte("lake:\n  main_path: /srv/ct\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	got, err := Load("", nil)
	if err != nil {
		t.Fatalf("Load = %v", err)
	}
	if got.Lake.MainPath != "/srv/ct" || got.File != DefaultFile {
		t.Errorf("Load() main_path, file = %q, %q, want /srv/ct, %s", got.Lake.MainPath, got.File, DefaultFile)
	}
	if got.Lake.PlanDir != "/srv/"+PlanDirName {
		t.Errorf("plan_dir = %q, want /srv/%s", got.Lake.PlanDir, PlanDirName)
	}
}

func TestLoadPrecedence(t *testing.T) {
	file := writeFile(t, "certlake.yaml", `
lake:
  main_path: /from/file
  duckdb:
    threads: 2
ct:
  rate_limit: 1.5
`)
	tests := []struct {
		name     string
		env      map[string]string
		args     []string
		wantMain string
		wantThr  int
		wantRate float64
	}{
		{name: "File", wantMain: "/from/file", wantThr: 2, wantRate: 1.5},
		{
			name:     "EnvOverFile",
			env:      map[string]string{"CERTLAKE_LAKE_MAIN_PATH": "/from/env", "CERTLAKE_LAKE_DUCKDB_THREADS": "3"},
			wantMain: "/from/env", wantThr: 3, wantRate: 1.5,
		},
		{
			name:     "FlagOverEnv",
			env:      map[string]string{"CERTLAKE_LAKE_MAIN_PATH": "/from/env", "CERTLAKE_CT_RATE_LIMIT": "0.25"},
			args:     []string{"--main", "/from/flag"},
			wantMain: "/from/flag", wantThr: 2, wantRate: 0.25,
		},
		{
			name:     "DottedFlagAndSet",
			args:     []string{"--lake.duckdb.threads", "7", "--set", "ct.rate_limit=9"},
			wantMain: "/from/file", wantThr: 7, wantRate: 9,
		},
		{
			name:     "UnchangedFlagDoesNotOverride",
			args:     []string{},
			wantMain: "/from/file", wantThr: 2, wantRate: 1.5,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
			AddFlags(fs)
			fs.String("main", "/flag/default", "")
			fs.Int("lake.duckdb.threads", 0, "")
			if err := BindFlag(fs, "main", "lake.main_path"); err != nil {
				t.Fatal(err)
			}
			if err := fs.Parse(append([]string{"--config", file}, tt.args...)); err != nil {
				t.Fatal(err)
			}
			got, err := Load("", fs)
			if err != nil {
				t.Fatalf("Load = %v", err)
			}
			if got.Lake.MainPath != tt.wantMain || got.Lake.DuckDB.Threads != tt.wantThr || got.CT.RateLimit != tt.wantRate {
				t.Errorf("Load() main_path, threads, rate_limit = %q, %d, %g, want %q, %d, %g",
					got.Lake.MainPath, got.Lake.DuckDB.Threads, got.CT.RateLimit, tt.wantMain, tt.wantThr, tt.wantRate)
			}
		})
	}
}

func TestLoadErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		name  string
		file  string // body of bad.yaml; "" loads no file
		env   map[string]string
		args  []string
		wants []string // substrings of the error; "FILE" is replaced by the file's path
	}{
		{
			name:  "UnknownKey",
			file:  "lake:\n  mian_path: /x\n",
			wants: []string{"unknown key lake.mian_path in FILE"},
		},
		{
			name:  "UnknownSection",
			file:  "lakes:\n  main_path: /x\n",
			wants: []string{"unknown key lakes in FILE"},
		},
		{
			name:  "UnknownKeyInList",
			file:  "ct:\n  custom_logs:\n    - name: a\n      ulr: https://a.example/\n",
			wants: []string{"unknown key ct.custom_logs[0].ulr in FILE"},
		},
		{
			name:  "UnknownKeyInMap",
			file:  "ct:\n  logs:\n    \"https://ct.example.com/2025/\":\n      rate_limt: 1\n",
			wants: []string{"unknown key ct.logs.https://ct.example.com/2025/.rate_limt in FILE"},
		},
		{
			name:  "WrongTypeInteger",
			file:  "lake:\n  checkpoint_interval: abc\n",
			wants: []string{`lake.checkpoint_interval: want an integer, got "abc" (in FILE)`},
		},
		{
			name:  "WrongTypeFloat",
			file:  "lake:\n  checkpoint_interval: 1.5\n",
			wants: []string{`lake.checkpoint_interval: want an integer, got 1.5`},
		},
		{
			name:  "WrongTypeBool",
			file:  "ct:\n  include_retired: maybe\n",
			wants: []string{`ct.include_retired: want true or false, got "maybe"`},
		},
		{
			name:  "WrongTypeDuration",
			file:  "ct:\n  request_timeout: 30\n",
			wants: []string{`ct.request_timeout: want a duration such as "30s" or "5m", got 30`},
		},
		{
			name:  "SectionNotMapping",
			file:  "lake: /data\n",
			wants: []string{`lake: want a section of keys, got "/data"`},
		},
		{
			name:  "WrongTypeFromEnv",
			env:   map[string]string{"CERTLAKE_MERGE_WINDOW": "two"},
			wants: []string{`merge.window: want an integer, got "two" (from env CERTLAKE_MERGE_WINDOW)`},
		},
		{
			name:  "UnknownEnv",
			env:   map[string]string{"CERTLAKE_LAKE_MIAN_PATH": "/x"},
			wants: []string{"unknown environment variable CERTLAKE_LAKE_MIAN_PATH"},
		},
		{
			name:  "WrongTypeFromFlag",
			args:  []string{"--set", "backfill.chunk_size=-5"},
			wants: []string{`backfill.chunk_size: want an integer of 0 or more, got "-5" (from flag --set backfill.chunk_size)`},
		},
		{
			name:  "SetUnknownKey",
			args:  []string{"--set", "lake.nope=1"},
			wants: []string{`--set "lake.nope=1": want KEY=VALUE with a known key`},
		},
		{
			name:  "OutOfRange",
			file:  "backfill:\n  ceiling: sky\n  window: 0\nworker:\n  log_level: loud\n  metrics_address: nine\n",
			wants: []string{`backfill.ceiling: want "state_file" or "tree_size", got "sky"`, "backfill.window: want 1 or more, got 0", `worker.log_level: want debug, info, warn or error, got "loud"`, "worker.metrics_address"},
		},
		{
			name:  "TLSPair",
			file:  "temporal:\n  tls:\n    cert_file: /c.pem\n",
			wants: []string{"temporal.tls: cert_file and key_file go together"},
		},
		{
			name:  "CustomLogURL",
			file:  "ct:\n  static_logs:\n    - name: x\n      url: ftp://x/\n",
			wants: []string{`ct.static_logs[0].url: want an http(s) URL, got "ftp://x/"`},
		},
		{
			name:  "UnknownKeyInListFromEnv",
			env:   map[string]string{"CERTLAKE_CT_CUSTOM_LOGS": `[{"name": "a", "ulr": "https://a.example/"}]`},
			wants: []string{"unknown key ct.custom_logs[0].ulr (from env CERTLAKE_CT_CUSTOM_LOGS)"},
		},
		{
			name:  "WrongTypeInMapFromEnv",
			env:   map[string]string{"CERTLAKE_CT_LOGS": `{"https://CT.example.com/": {"rate_limit": "fast", "verify": "no"}}`},
			wants: []string{`ct.logs.https://ct.example.com/.rate_limit: want a number, got "fast" (from env CERTLAKE_CT_LOGS)`, `ct.logs.https://ct.example.com/.verify: want true or false, got "no"`},
		},
		{
			name:  "ListNotJSON",
			env:   map[string]string{"CERTLAKE_CT_STATIC_LOGS": "https://a.example/"},
			wants: []string{`ct.static_logs: want a list such as [{"name": ..., "url": ...}], got "https://a.example/" (from env CERTLAKE_CT_STATIC_LOGS)`},
		},
		{
			name:  "NegativeDuration",
			args:  []string{"--set", "backfill.flush_interval=-1s"},
			wants: []string{`backfill.flush_interval: want a duration of 0 or more, got "-1s" (from flag --set backfill.flush_interval)`},
		},
		{
			name: "KeylessLogToVerify",
			file: "ct:\n  custom_logs:\n    - name: a\n      url: https://a.example/log/\n  static_logs:\n    - url: https://s.example/\n",
			wants: []string{
				`ct.custom_logs[0].key: is empty, and https://a.example/log/ is to be verified (ct.verify): set the log's public key`,
				`or turn verification off for this log with ct.logs."https://a.example/log/".verify: false`,
				`ct.static_logs[0].key: is empty, and https://s.example/ is to be verified`,
			},
		},
		{
			name:  "SeveralAtOnce",
			file:  "lake:\n  mian_path: /x\n  checkpoint_interval: abc\n",
			wants: []string{"unknown key lake.mian_path", "lake.checkpoint_interval: want an integer"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Chdir(t.TempDir())
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			path := ""
			if tt.file != "" {
				path = writeFile(t, "bad.yaml", tt.file)
			}
			fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
			AddFlags(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path, fs)
			if err == nil {
				t.Fatalf("Load(%s) = nil error, want %q", tt.file, tt.wants)
			}
			for _, w := range tt.wants {
				w = strings.ReplaceAll(w, "FILE", path)
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Load(%q) = %q, want it to contain %q", tt.file, err, w)
				}
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"), nil)
	if err == nil || !strings.Contains(err.Error(), "nope.yaml") {
		t.Errorf("Load(nope.yaml) = %v, want an error naming the file", err)
	}
}

func TestLoadDurations(t *testing.T) {
	file := writeFile(t, "c.yaml", "ct:\n  request_timeout: 1m30s\n  backoff_initial: 250ms\nbackfill:\n  flush_interval: 2h\n")
	t.Setenv("CERTLAKE_CT_BACKOFF_MAX", "90s")
	got, err := Load(file, nil)
	if err != nil {
		t.Fatalf("Load = %v", err)
	}
	tests := []struct {
		key       string
		got, want time.Duration
	}{
		{"ct.request_timeout", got.CT.RequestTimeout, 90 * time.Second},
		{"ct.backoff_initial", got.CT.BackoffInitial, 250 * time.Millisecond},
		{"ct.backoff_max", got.CT.BackoffMax, 90 * time.Second},
		{"backfill.flush_interval", got.Backfill.FlushInterval, 2 * time.Hour},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %s, want %s", tt.key, tt.got, tt.want)
		}
	}
}

func TestLoadLogsAndLimits(t *testing.T) {
	file := writeFile(t, "c.yaml", `
ct:
  custom_logs:
    - name: Example Log
      url: https://ct.example.com/log/
  operators:
    DigiCert: {rate_limit: 0.5, concurrency: 1}
  logs:
    "https://Wyvern.ct.digicert.com/2025h1/": {rate_limit: 2, window: 1}
    "https://ct.example.com/log": {verify: false}
    "https://static.example.com/": {verify: false}
`)
	t.Setenv("CERTLAKE_CT_STATIC_LOGS", `[{"name":"Static","url":"https://static.example.com/"}]`)
	got, err := Load(file, nil)
	if err != nil {
		t.Fatalf("Load = %v", err)
	}
	wantCustom := []Log{{Name: "Example Log", URL: "https://ct.example.com/log/"}}
	if !reflect.DeepEqual(got.CT.CustomLogs, wantCustom) {
		t.Errorf("custom_logs = %+v, want %+v", got.CT.CustomLogs, wantCustom)
	}
	wantStatic := []Log{{Name: "Static", URL: "https://static.example.com/"}}
	if !reflect.DeepEqual(got.CT.StaticLogs, wantStatic) {
		t.Errorf("static_logs = %+v, want %+v", got.CT.StaticLogs, wantStatic)
	}
	// The limits each log is read with: internal/options (TestCatalogLimits).
}

// A configured log to be verified needs its key; one that is not verified
// (ct.verify, or its ct.logs override) does not.
func TestLoadLogKeys(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	key := base64.StdEncoding.EncodeToString(der)
	for _, tt := range []struct{ name, file string }{
		{"WithKey", "ct:\n  static_logs:\n    - url: https://s.example/\n      key: " + key + "\n"},
		{"VerifyOff", "ct:\n  verify: false\n  custom_logs:\n    - url: https://a.example/\n"},
		{"VerifyOffForTheLog", "ct:\n  custom_logs:\n    - url: https://a.example/\n  logs:\n    \"https://A.example\": {verify: false}\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Load(writeFile(t, "c.yaml", tt.file), nil); err != nil {
				t.Errorf("Load = %v", err)
			}
		})
	}
}

func TestTLSConfig(t *testing.T) {
	tests := []struct {
		name    string
		tmp     Temporal
		wantNil bool
		wantSNI string
	}{
		{name: "Off", tmp: Temporal{Address: "localhost:7233"}, wantNil: true},
		{name: "APIKeyTurnsItOn", tmp: Temporal{Address: "ns.acct.tmprl.cloud:7233", APIKey: "k"}, wantSNI: "ns.acct.tmprl.cloud"},
		{name: "ServerName", tmp: Temporal{Address: "10.0.0.1:7233", TLS: TLS{Enabled: true, ServerName: "temporal.internal"}}, wantSNI: "temporal.internal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.tmp.TLSConfig()
			if err != nil {
				t.Fatalf("TLSConfig() = %v", err)
			}
			if (got == nil) != tt.wantNil {
				t.Fatalf("TLSConfig() = %v, want nil %v", got, tt.wantNil)
			}
			if got != nil && got.ServerName != tt.wantSNI {
				t.Errorf("TLSConfig().ServerName = %q, want %q", got.ServerName, tt.wantSNI)
			}
		})
	}
	if _, err := (Temporal{TLS: TLS{CAFile: "/nonexistent/ca.pem"}}).TLSConfig(); err == nil || !strings.Contains(err.Error(), "temporal.tls.ca_file") {
		t.Errorf("TLSConfig() with a missing CA file = %v, want an error naming temporal.tls.ca_file", err)
	}
}

func TestNewLogger(t *testing.T) {
	tests := []struct {
		format, level string
		wantPrefix    string
		wantDebug     bool
	}{
		{"json", "info", `{"time":`, false},
		{"text", "debug", "time=", true},
		{"", "warn", `{"time":`, false}, // not a terminal: JSON
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		l := NewLogger(&buf, tt.format, tt.level)
		l.Debug("d")
		l.Warn("w")
		out := buf.String()
		if !strings.HasPrefix(out, tt.wantPrefix) {
			t.Errorf("NewLogger(%q, %q) wrote %q, want prefix %q", tt.format, tt.level, out, tt.wantPrefix)
		}
		if got := strings.Contains(out, `"msg":"d"`) || strings.Contains(out, "msg=d"); got != tt.wantDebug {
			t.Errorf("NewLogger(%q, %q) logged debug = %v, want %v", tt.format, tt.level, got, tt.wantDebug)
		}
	}
}
