package e2e

// Verification end to end: a proxy in front of real in-process logs serves
// well-formed but wrong data; the backfill reports those ranges failed with
// their reason and stages every proven range exactly once.

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/certlake/certlake/internal/record"
	"github.com/certlake/certlake/internal/scenario"
	"github.com/certlake/certlake/workflows"
)

// tamperingProxy forwards to a real log and lets tamper rewrite answers.
func tamperingProxy(t *testing.T, logURL string, tamper func(r *http.Request, body []byte) []byte) string {
	t.Helper()
	u, err := url.Parse(logURL)
	if err != nil {
		t.Fatal(err)
	}
	upstream := u.Scheme + "://" + u.Host
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, err := http.Get(upstream + r.URL.RequestURI())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			body = tamper(r, body)
		}
		w.WriteHeader(resp.StatusCode)
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + u.Path
}

func TestBackfillTamperedLogsFailOnlyTheUnprovenRanges(t *testing.T) {
	e := newWorld(t, scenario.Options{Logs: []scenario.LogSpec{
		{Name: "certlake Static Log", Static: true, Entries: 1500},
		{Name: "certlake RFC 6962 Log", Entries: 1000, MaxGetEntries: 64},
	}, NoMain: true}, "certlake-verify")
	static, rfc := e.sc.Logs[0], e.sc.Logs[1]
	tile0, err := get(static.URL + "tile/data/000")
	if err != nil {
		t.Fatal(err)
	}
	// The static log serves tile 0 at the path of tile 2 ([512, 767]).
	staticURL := tamperingProxy(t, static.URL, func(r *http.Request, b []byte) []byte {
		if strings.HasSuffix(r.URL.Path, "/tile/data/002") {
			return tile0
		}
		return b
	})
	// The RFC 6962 log answers get-entries from 320 with entry 324 at 323.
	rfcURL := tamperingProxy(t, rfc.URL, func(r *http.Request, b []byte) []byte {
		if !strings.HasSuffix(r.URL.Path, "/get-entries") || r.URL.Query().Get("start") != "320" {
			return b
		}
		var resp struct {
			Entries []json.RawMessage `json:"entries"`
		}
		if err := json.Unmarshal(b, &resp); err != nil || len(resp.Entries) < 5 {
			t.Errorf("get-entries answer from 320: %v", err)
			return b
		}
		resp.Entries[3] = resp.Entries[4]
		out, _ := json.Marshal(resp)
		return out
	})
	route(t, e, map[*scenario.Log]string{static: staticURL, rfc: rfcURL})
	e.cfg.Backfill.ChunkSize = 250
	e.startWorker()

	from := uint64(0)
	res, err := e.backfill("backfill-tampered", workflows.BackfillInput{StagingPath: e.sc.StagingPath, From: &from})
	if err != nil {
		t.Fatalf("backfill: %v (want success with failed ranges)", err)
	}
	su, ru := record.NormalizeURL(staticURL), record.NormalizeURL(rfcURL)
	// Chunks of 250: the static log's [500, 749] stages 500-511 (tile 1)
	// and fails from 512; [750, 999] fails whole (it starts in tile 2).
	// The RFC 6962 log's [250, 499] is one proof group and fails whole.
	want := map[string][2]uint64{su + " 500": {500, 749}, su + " 750": {750, 999}, ru + " 250": {250, 499}}
	if len(res.FailedRanges) != len(want) || res.LogsFailed != 2 {
		t.Fatalf("failed ranges = %+v (logs failed %d), want %d ranges of 2 logs", res.FailedRanges, res.LogsFailed, len(want))
	}
	for _, fr := range res.FailedRanges {
		w, ok := want[fr.SourceURL+" "+itoa(fr.Start)]
		if !ok || fr.End != w[1] || !strings.HasPrefix(rootLine(fr.Error), "verification: entries [") ||
			!strings.Contains(fr.Error, "not staged") {
			t.Errorf("failed range %+v: want one of %v with a reason starting \"verification: entries [\"", fr, want)
		}
	}
	var staticFail string
	for _, fr := range res.FailedRanges {
		if fr.SourceURL == su && fr.Start == 500 {
			staticFail = fr.Error
		}
	}
	if !strings.Contains(staticFail, "entries [512, 749] not staged") || !strings.Contains(staticFail, "entry 512") {
		t.Errorf("static failure = %q, want it to name entries [512, 749] and entry 512", staticFail)
	}
	// Staging: exactly the proven entries, once each.
	got := e.keys(e.sc.StagingPath)
	check := func(u string, n uint64, holes ...[2]uint64) {
		t.Helper()
		in := func(i uint64) bool {
			for _, h := range holes {
				if i >= h[0] && i <= h[1] {
					return true
				}
			}
			return false
		}
		for i := range n {
			c := got[u][i]
			if in(i) && c != 0 || !in(i) && c != 1 {
				t.Fatalf("%s index %d staged %d times, want %d", u, i, c, map[bool]int{true: 0, false: 1}[in(i)])
			}
		}
		if len(got[u]) > int(n) {
			t.Fatalf("%s: %d keys staged, more than the log holds", u, len(got[u]))
		}
	}
	check(su, 1500, [2]uint64{512, 999})
	check(ru, 1000, [2]uint64{250, 499})
}

func get(u string) ([]byte, error) {
	resp, err := http.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

func itoa(n uint64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// rootLine is the part of a failed range's error after any "activity ...:"
// wrapping: the reason FetchRange gave.
func rootLine(s string) string {
	if i := strings.Index(s, "verification: "); i >= 0 {
		return s[i:]
	}
	return s
}
