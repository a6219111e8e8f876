package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/certlake/certlake/internal/config"
	"github.com/certlake/certlake/internal/record"
	"github.com/certlake/certlake/internal/scenario"
	"github.com/certlake/certlake/workflows"
)

// corruptingLog forwards get-entries to a real RFC 6962 log and replaces
// the leaf_input of entry bad with bytes that are no MerkleTreeLeaf, as a
// log serving a broken entry would.
func corruptingLog(t *testing.T, logURL string, bad uint64) string {
	t.Helper()
	u, err := url.Parse(logURL)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		up := *u
		up.Path, up.RawQuery = r.URL.Path, r.URL.RawQuery
		resp, err := http.Get(up.String())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		start, _ := strconv.ParseUint(r.URL.Query().Get("start"), 10, 64)
		if strings.HasSuffix(r.URL.Path, "/ct/v1/get-entries") && resp.StatusCode == http.StatusOK {
			var ge struct {
				Entries []map[string]any `json:"entries"`
			}
			if err := json.Unmarshal(body, &ge); err == nil && bad >= start && bad-start < uint64(len(ge.Entries)) {
				ge.Entries[bad-start]["leaf_input"] = "AAEC" // 3 bytes: version 0, leaf type 1 (unknown), truncated
				body, _ = json.Marshal(ge)
			}
		}
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, bytes.NewReader(body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL + u.Path
}

// An entry the log serves but certlake cannot decode is named in the
// backfill's result (log, index, why), counted in bad_entries, and every
// other entry of the log is staged once.
func TestBackfillNamesUnparseableEntries(t *testing.T) {
	// newWorld, not newEnv: the only worker is the one configured with
	// the corrupting log.
	e := newWorld(t, scenario.Options{Logs: []scenario.LogSpec{{Name: "certlake RFC 6962 Log", Entries: 600}}, NoMain: true}, "certlake-e2e")
	const bad = 417
	proxied := corruptingLog(t, e.sc.Logs[0].URL, bad)
	want := route(t, e, map[*scenario.Log]string{e.sc.Logs[0]: proxied})
	// The proxy rewrites a leaf the log signed: verified, that range would
	// fail as it must (TestBackfillTamperedLogs). This test is about what
	// a log itself serves and certlake cannot decode, so the log is read
	// unverified.
	off := false
	e.cfg.CT.Logs = map[string]config.LogLimits{proxied: {Verify: &off}}
	e.startWorker()
	from := uint64(0)
	res, err := e.backfill("backfill-unparseable", workflows.BackfillInput{StagingPath: e.sc.StagingPath, From: &from})
	if err != nil {
		t.Fatalf("backfill: %v", err)
	}
	url := record.NormalizeURL(proxied)
	if res.BadEntries != 1 || len(res.Unparseable) != 1 || res.Unparseable[0].Index != bad ||
		record.NormalizeURL(res.Unparseable[0].SourceURL) != url || res.Unparseable[0].Error == "" {
		t.Fatalf("result %+v: bad_entries = %d, unparseable = %+v; want entry %d of %s named with its error", res, res.BadEntries, res.Unparseable, bad, url)
	}
	if res.RecordsWritten != 599 || len(res.FailedRanges) != 0 {
		t.Fatalf("records_written = %d, failed ranges %v; want 599 and none", res.RecordsWritten, res.FailedRanges)
	}
	got := e.keys(e.sc.StagingPath)[url]
	if len(got) != int(want[url])-1 || got[bad] != 0 {
		t.Fatalf("staging holds %d keys of %s (entry %d: %d times); want every entry but %d once", len(got), url, bad, got[bad], bad)
	}
	for i, n := range got {
		if n != 1 {
			t.Fatalf("staging holds entry %d %d times", i, n)
		}
	}
}
