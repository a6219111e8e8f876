package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/certlake/certlake/activities"
	"github.com/certlake/certlake/internal/config"
	"github.com/certlake/certlake/internal/ctlogtest"
	"github.com/certlake/certlake/internal/record"
)

// TestVerificationFailuresOnMetrics runs the worker's FetchRange activity,
// wired to the worker's metrics as main wires it, against a real static
// log behind a proxy that serves one data tile at another's path, and
// scrapes certlake_verification_failures_total from the worker's /metrics
// endpoint.
func TestVerificationFailuresOnMetrics(t *testing.T) {
	ctlogtest.QuietKlog()
	l := ctlogtest.NewStaticTB(t, ctlogtest.Options{})
	gen, err := ctlogtest.NewGenerator(ctlogtest.GeneratorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.AddBulk(t.Context(), 600, gen, nil); err != nil {
		t.Fatal(err)
	}
	logURL := tileSwappingProxy(t, l.URL)
	source := record.NormalizeURL(logURL)

	dir := t.TempDir()
	cfg := config.Defaults()
	cfg.Lake.MainPath = filepath.Join(dir, "main")
	cfg.Lake.StagingPath = filepath.Join(dir, "staging")
	cfg.CT.LogListURL = ""
	cfg.CT.RateLimit = 0
	cfg.CT.StaticLogs = []config.Log{{Name: "tampered", URL: logURL, Key: l.KeyBase64(), Origin: l.Origin}}

	reg := prometheus.NewRegistry()
	metrics := newCertlakeMetrics(reg)
	backfill, _ := activities.New(&cfg, slog.New(slog.DiscardHandler), metrics, metrics)
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(backfill)
	_, err = env.ExecuteActivity(backfill.FetchRange, activities.FetchRangeInput{
		Log:   activities.LogTarget{URL: source, Name: "tampered", Static: true, Ceiling: 600},
		Start: 0, End: 599, TablePath: cfg.Lake.StagingPath, Staging: true, RunKey: "verification-metric",
	})
	var ae *temporal.ApplicationError
	if !errors.As(err, &ae) || ae.Type() != activities.ErrTypeVerification || !ae.NonRetryable() ||
		!strings.Contains(ae.Error(), "verification: entries [256, 599] not staged") {
		t.Fatalf("FetchRange = %v, want a non-retryable %s error for [256, 599]", err, activities.ErrTypeVerification)
	}

	addr := freeAddr(t)
	srv, err := serveMetrics(addr, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		fmt.Sprintf(`certlake_verification_failures_total{log=%q} 1`, source),
		fmt.Sprintf(`certlake_rows_staged_total{log=%q} 256`, source),
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q; got:\n%s", want, body)
		}
	}
}

// tileSwappingProxy serves a static log's data tile 0 at the path of data
// tile 1, and everything else as the log does. It returns the log's URL
// through the proxy.
func tileSwappingProxy(t *testing.T, logURL string) string {
	t.Helper()
	u, err := url.Parse(logURL)
	if err != nil {
		t.Fatal(err)
	}
	upstream := u.Scheme + "://" + u.Host
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.RequestURI()
		if strings.HasSuffix(r.URL.Path, "/tile/data/001") {
			path = strings.TrimSuffix(path, "001") + "000"
		}
		resp, err := http.Get(upstream + path)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + u.Path
}

// freeAddr returns a local address with a port free at the time.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
