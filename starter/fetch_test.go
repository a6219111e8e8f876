package main

import (
	"bufio"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	ct "github.com/google/certificate-transparency-go"
	"github.com/google/certificate-transparency-go/scanner"

	"github.com/certlake/certlake/internal/record"
)

// rfc6962Log serves entries over get-entries (RFC 6962 section 4.6),
// returning at most maxBatch per request as real logs do. Entries listed in
// garbage are served with a leaf_input that does not decode.
func rfc6962Log(t *testing.T, entries []ct.LeafEntry, maxBatch int, garbage map[int]bool) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		switch r.URL.Path {
		case "/ct/v1/get-sth":
			fmt.Fprintf(w, `{"tree_size": %d, "timestamp": 1, "sha256_root_hash": "", "tree_head_signature": ""}`, len(entries))
		case "/ct/v1/get-entries":
			start, err1 := strconv.Atoi(r.URL.Query().Get("start"))
			end, err2 := strconv.Atoi(r.URL.Query().Get("end"))
			if err1 != nil || err2 != nil || start > end || start >= len(entries) {
				http.Error(w, "bad range", http.StatusBadRequest)
				return
			}
			end = min(end, start+maxBatch-1, len(entries)-1)
			var resp ct.GetEntriesResponse
			for i := start; i <= end; i++ {
				e := entries[i]
				if garbage[i] {
					e.LeafInput = []byte("not a merkle tree leaf")
				}
				resp.Entries = append(resp.Entries, e)
			}
			json.NewEncoder(w).Encode(resp)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &requests
}

func fourEntries(t *testing.T) []ct.LeafEntry {
	t.Helper()
	var resp ct.GetEntriesResponse
	if err := json.Unmarshal([]byte(scanner.FourEntries), &resp); err != nil {
		t.Fatal(err)
	}
	return resp.Entries
}

// colonHex renders a hash the way the table stores it: AA:BB:...
func colonHex(b []byte) string {
	h := strings.ToUpper(hex.EncodeToString(b))
	var parts []string
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}

// TestFetchJSON fetches ct-go's four real entries from an RFC 6962 log that
// answers two entries per request, and checks every line against values
// computed independently with crypto/x509.
func TestFetchJSON(t *testing.T) {
	entries := fourEntries(t)
	srv, _ := rfc6962Log(t, entries, 2, nil)
	// A hand-made log with no key: read unverified (ct.verify: false).
	workdir(t, "ct:\n  log_list_url: ./no-such-list.json\n  rate_limit: 0\n  verify: false\n")

	r := runStarter(t, "fetch", "--log", srv.URL+"/", "--name", "Test Log", "--start", "0", "--end", "3", "--json")
	if r.code != 0 {
		t.Fatalf("fetch = %d, %q", r.code, r.stderr)
	}
	if r.stderr != "" {
		t.Errorf("fetch stderr = %q, want nothing", r.stderr)
	}
	sc := bufio.NewScanner(strings.NewReader(r.stdout))
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &obj); err != nil {
			t.Fatalf("line %d: %v", n, err)
		}
		if len(obj) != len(record.Columns) {
			t.Errorf("line %d has %d keys, want %d", n, len(obj), len(record.Columns))
		}
		for _, col := range record.Columns {
			if _, ok := obj[col]; !ok {
				t.Errorf("line %d lacks key %q", n, col)
			}
		}
		var row struct {
			CertIndex  uint64   `json:"cert_index"`
			Seen       float64  `json:"seen"`
			SourceName string   `json:"source_name"`
			SourceURL  string   `json:"source_url"`
			SHA256     string   `json:"sha256"`
			Serial     string   `json:"serial_number"`
			NotBefore  int64    `json:"not_before"`
			AllDomains []string `json:"all_domains"`
			AsDER      string   `json:"as_der"`
			Chain      []string `json:"chain"`
		}
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			t.Fatalf("line %d: %v", n, err)
		}
		if row.CertIndex != uint64(n) || row.SourceName != "Test Log" || row.SourceURL != srv.URL {
			t.Errorf("line %d cert_index, source_name, source_url = %d, %q, %q; want %d, Test Log, %s", n, row.CertIndex, row.SourceName, row.SourceURL, n, srv.URL)
		}
		if row.Seen < 1.7e9 {
			t.Errorf("line %d seen = %v, want Unix seconds", n, row.Seen)
		}
		der, err := base64.StdEncoding.DecodeString(row.AsDER)
		if err != nil {
			t.Fatalf("line %d as_der: %v", n, err)
		}
		raw, err := ct.RawLogEntryFromLeaf(int64(n), &entries[n])
		if err != nil {
			t.Fatal(err)
		}
		if string(der) != string(raw.Cert.Data) {
			t.Errorf("line %d as_der differs from the entry's certificate", n)
		}
		sum := sha256.Sum256(der)
		if row.SHA256 != colonHex(sum[:]) {
			t.Errorf("line %d sha256 = %s, want %s", n, row.SHA256, colonHex(sum[:]))
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatalf("line %d: crypto/x509: %v", n, err)
		}
		if row.NotBefore != cert.NotBefore.Unix() {
			t.Errorf("line %d not_before = %d, want %d", n, row.NotBefore, cert.NotBefore.Unix())
		}
		if !strings.EqualFold(strings.TrimLeft(row.Serial, "0"), strings.TrimLeft(cert.SerialNumber.Text(16), "0")) {
			t.Errorf("line %d serial_number = %s, want %x", n, row.Serial, cert.SerialNumber)
		}
		if len(row.Chain) != len(raw.Chain) || row.AllDomains == nil {
			t.Errorf("line %d chain has %d elements (want %d), all_domains %v", n, len(row.Chain), len(raw.Chain), row.AllDomains)
		}
		n++
	}
	if n != 4 {
		t.Errorf("fetch printed %d rows, want 4", n)
	}
}

func TestFetchBadEntriesAndFailures(t *testing.T) {
	entries := fourEntries(t)
	srv, _ := rfc6962Log(t, entries, 4, map[int]bool{2: true})
	workdir(t, "ct:\n  log_list_url: ./no-such-list.json\n  rate_limit: 0\n  verify: false\n  max_attempts: 2\n  backoff_initial: 1ms\n  backoff_max: 2ms\n")

	r := runStarter(t, "fetch", "--log", srv.URL, "--name", "Test Log", "--start", "1", "--end", "3", "--json")
	if r.code != 0 {
		t.Fatalf("fetch = %d, %q", r.code, r.stderr)
	}
	if got := strings.Count(r.stdout, "\n"); got != 2 {
		t.Errorf("fetch [1, 3] with entry 2 bad printed %d rows, want 2", got)
	}
	if !strings.Contains(r.stderr, "bad entry 2:") || !strings.Contains(r.stderr, "2 rows, 1 bad entries") {
		t.Errorf("fetch stderr = %q, want entry 2 reported and the counts", r.stderr)
	}

	// Past the end of the log: the range fails, named, after the rows
	// before it.
	r = runStarter(t, "fetch", "--log", srv.URL, "--name", "Test Log", "--start", "3", "--end", "5", "--json")
	if r.code != 1 || strings.Count(r.stdout, "\n") != 1 || !strings.Contains(r.stderr, "Error: fetch "+srv.URL+" [3, 5]") {
		t.Errorf("fetch [3, 5] of a 4-entry log = %d, stdout %q, stderr %q; want exit 1 after one row", r.code, r.stdout, r.stderr)
	}

	// Text output and name fallback.
	r = runStarter(t, "fetch", "--log", srv.URL, "--start", "0", "--end", "0")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "0\tX509LogEntry\t") || !strings.Contains(r.stderr, "give --name DESC") {
		t.Errorf("fetch [0, 0] text = %d, %q, %q", r.code, r.stdout, r.stderr)
	}

	for _, args := range [][]string{{"fetch"}, {"fetch", "--log", srv.URL, "--start", "5", "--end", "1"}} {
		if r := runStarter(t, args...); r.code != 2 {
			t.Errorf("starter %v = %d, %q; want usage error 2", args, r.code, r.stderr)
		}
	}
}
