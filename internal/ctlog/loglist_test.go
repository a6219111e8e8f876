package ctlog

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// logKey summarizes a Log for comparisons.
type logKey struct {
	URL, Name, Operator, State string
	Static                     bool
	ReadOnly                   uint64
}

func keys(logs []Log) []logKey {
	var out []logKey
	for _, l := range logs {
		k := logKey{URL: l.URL, Name: l.Name, Operator: l.Operator, State: l.State, Static: l.Static}
		if l.ReadOnlyTreeSize != nil {
			k.ReadOnly = *l.ReadOnlyTreeSize
		}
		out = append(out, k)
	}
	return out
}

var (
	argon2025h2 = logKey{"https://ct.googleapis.com/logs/us1/argon2025h2", "Google 'Argon2025h2' log", "Google", "usable", false, 0}
	argon2024   = logKey{"https://ct.googleapis.com/logs/us1/argon2024", "Google 'Argon2024' log", "Google", "readonly", false, 1534286016}
	argon2019   = logKey{"https://ct.googleapis.com/logs/argon2019", "Google 'Argon2019' log", "Google", "retired", false, 0}
	oak         = logKey{"https://oak.ct.letsencrypt.org/2025h2", "Let's Encrypt 'Oak2025h2'", "Let's Encrypt", "qualified", false, 0}
	willow      = logKey{"https://mon.willow.ct.letsencrypt.org/2025h2d", "Let's Encrypt 'Willow' 2025h2d log", "Let's Encrypt", "usable", true, 0}
	sycamore    = logKey{"https://mon.sycamore.ct.letsencrypt.org/2024h1b", "Let's Encrypt 'Sycamore' 2024h1b log", "Let's Encrypt", "readonly", true, 98410}
	wyvern      = logKey{"https://wyvern.ct.digicert.com/2025h2", "DigiCert 'Wyvern2025h2' Log", "DigiCert", "usable", false, 0}
	pending     = logKey{"https://pending.ct.digicert.com/log", "DigiCert 'Pending' Log", "DigiCert", "", false, 0}
	elephant    = logKey{"https://static.elephant.ct.digicert.com/2025h1", "DigiCert 'Elephant2025h1' retired tiled log", "DigiCert", "retired", true, 0}
)

func TestParseList(t *testing.T) {
	data, err := os.ReadFile("testdata/log_list.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		opts ListOptions
		want []logKey
	}{
		{"default", ListOptions{}, []logKey{argon2025h2, argon2024, oak, willow, sycamore, wyvern, pending}},
		{"includeRetired", ListOptions{IncludeRetired: true}, []logKey{argon2025h2, argon2024, argon2019, oak, willow, sycamore, wyvern, pending, elephant}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs, err := ParseList(data, tc.opts)
			if err != nil {
				t.Fatalf("ParseList() = %v", err)
			}
			if got := keys(logs); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseList() =\n%v\nwant\n%v", got, tc.want)
			}
		})
	}
}

func TestParseListErrors(t *testing.T) {
	for _, tc := range []struct {
		name, data, want string
	}{
		{"notJSON", `<html>`, "parse JSON"},
		{"truncated", `{"operators":[{"name":"x","logs":[`, "parse JSON"},
		{"noOperators", `{"operators":[]}`, "no operators"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseList([]byte(tc.data), ListOptions{})
			if !errors.Is(err, ErrLogList) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseList(%s) = %v, want ErrLogList mentioning %q", tc.name, err, tc.want)
			}
		})
	}
}

// One malformed log costs that log only: the others are kept.
func TestParseListSkipsMalformedLogs(t *testing.T) {
	for _, tc := range []struct{ name, bad string }{
		{"noURL", `{"description":"d","state":{"usable":{}}}`},
		{"stateNotObject", `{"description":"d","url":"https://bad.example/","state":"usable"}`},
		{"readonlyWithoutSize", `{"description":"d","url":"https://bad.example/","state":{"readonly":{"timestamp":"t"}}}`},
		{"urlNotString", `{"description":"d","url":42}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := `{"operators":[{"name":"x","logs":[` + tc.bad + `,{"description":"good","url":"https://good.example/log/","key":"AAAA"}]}]}`
			logs, err := ParseList([]byte(data), ListOptions{})
			if err != nil || len(logs) != 1 || logs[0].URL != "https://good.example/log" || string(logs[0].Key) != "\x00\x00\x00" {
				t.Errorf("ParseList(%s) = %v, %v, want the good log alone", tc.name, logs, err)
			}
		})
	}
}

func TestLoadList(t *testing.T) {
	path, err := filepath.Abs("testdata/log_list.json")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	var agent string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		agent = r.UserAgent()
		switch r.URL.Path {
		case "/all_logs_list.json":
			w.Write(data)
		case "/broken.json":
			w.Write(data[:len(data)/2])
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()

	for _, tc := range []struct {
		name, location string
		wantErr        string
		status         int
	}{
		{name: "path", location: path},
		{name: "fileURL", location: "file://" + path},
		{name: "http", location: srv.URL + "/all_logs_list.json"},
		{name: "httpNotFound", location: srv.URL + "/missing.json", wantErr: "404", status: 404},
		{name: "httpMalformed", location: srv.URL + "/broken.json", wantErr: "parse JSON"},
		{name: "unreachable", location: dead.URL + "/all_logs_list.json", wantErr: "connect"},
		{name: "noFile", location: filepath.Join(t.TempDir(), "nope.json"), wantErr: "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs, err := LoadList(t.Context(), tc.location, ListOptions{UserAgent: "certlake-test"})
			if tc.wantErr == "" {
				if err != nil || len(logs) != 7 {
					t.Fatalf("LoadList(%s) = %d logs, %v, want 7, nil", tc.location, len(logs), err)
				}
				return
			}
			if !errors.Is(err, ErrLogList) || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), tc.location) {
				t.Errorf("LoadList(%s) = %v, want ErrLogList naming the location and %q", tc.location, err, tc.wantErr)
			}
			var he *HTTPError
			if tc.status != 0 && (!errors.As(err, &he) || he.Status != tc.status) {
				t.Errorf("LoadList(%s) = %v, want HTTPError %d", tc.location, err, tc.status)
			}
		})
	}
	if agent != "certlake-test" {
		t.Errorf("User-Agent = %q, want certlake-test", agent)
	}
}

func TestFilter(t *testing.T) {
	data, _ := os.ReadFile("testdata/log_list.json")
	logs, err := ParseList(data, ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		substr string
		want   []logKey
	}{
		{"", []logKey{argon2025h2, argon2024, oak, willow, sycamore, wyvern, pending}},
		{"argon", []logKey{argon2025h2, argon2024}},
		{"ARGON2025", []logKey{argon2025h2}},
		{"letsencrypt.org", []logKey{oak, willow, sycamore}},
		{"willow, wyvern", []logKey{willow, wyvern}},
		{" , oak,", []logKey{oak}},
		{"us1/argon2024", []logKey{argon2024}},
		{"nothing-matches", nil},
	} {
		if got := keys(Filter(logs, tc.substr)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Filter(%q) = %v, want %v", tc.substr, got, tc.want)
		}
	}
}

func TestAddConfigLogs(t *testing.T) {
	data, _ := os.ReadFile("testdata/log_list.json")
	listed, err := ParseList(data, ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	custom := []ConfigLog{
		{Name: "My log", URL: "ct.example.net/log/", RateLimit: 2, Concurrency: 1},
		// Same log as the listed Argon2025h2: replaces it, keeps the operator.
		{Name: "Argon via config", URL: "https://ct.googleapis.com/logs/us1/argon2025h2///"},
	}
	static := []ConfigLog{
		{Name: "Willow 2026h1", URL: "https://mon.willow.ct.letsencrypt.org/2026h1/", Operator: "Let's Encrypt"},
		{Name: "Sycamore again", URL: "mon.sycamore.ct.letsencrypt.org/2024h1b"},
	}
	got := AddConfigLogs(listed, custom, static)
	want := []logKey{
		{argon2025h2.URL, "Argon via config", "Google", "usable", false, 0},
		argon2024, oak, willow,
		{sycamore.URL, "Sycamore again", "Let's Encrypt", "readonly", true, 98410},
		wyvern, pending,
		{"https://ct.example.net/log", "My log", "", "", false, 0},
		{"https://mon.willow.ct.letsencrypt.org/2026h1", "Willow 2026h1", "Let's Encrypt", "", true, 0},
	}
	if k := keys(got); !reflect.DeepEqual(k, want) {
		t.Errorf("AddConfigLogs() =\n%v\nwant\n%v", k, want)
	}
	if my := got[7]; my.RateLimit != 2 || my.Concurrency != 1 {
		t.Errorf("custom log limits = %v/%d, want 2/1", my.RateLimit, my.Concurrency)
	}
	if len(listed) != 7 || listed[0].Name != argon2025h2.Name {
		t.Errorf("AddConfigLogs modified its input")
	}
}

func TestLogSource(t *testing.T) {
	l := Log{URL: "mon.example.net/log/", Name: "Example", Static: true}
	if got := l.Source(); got.URL != "https://mon.example.net/log" || got.Name != "Example" || !got.Static {
		t.Errorf("Source() = %+v, want normalized URL, name and static", got)
	}
}
