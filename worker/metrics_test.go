package main

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// TestMetricsExposition scrapes the registry the worker serves on /metrics:
// the SDK's metrics arrive through the OpenTelemetry bridge with their tags,
// and certlake's own counters keep their names.
func TestMetricsExposition(t *testing.T) {
	reg := prometheus.NewRegistry()
	sdk, err := sdkMetricsHandler(reg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	own := newCertlakeMetrics(reg)

	tagged := sdk.WithTags(map[string]string{"namespace": "default", "task_queue": "certlake"})
	tagged.Counter("temporal_request").Inc(3)
	tagged.Counter("temporal_request").Inc(2)
	tagged.Gauge("temporal_worker_task_slots_available").Update(7)
	tagged.Timer("temporal_activity_execution_latency").Record(1500 * time.Millisecond)
	own.RowsStaged("https://ct.example/log/", 42)
	own.RowsMerged(5)
	own.Retried("https://ct.example/log/", 429)

	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	text := string(body)
	for _, want := range []string{
		`temporal_request_total{namespace="default",task_queue="certlake"} 5`,
		`temporal_worker_task_slots_available{namespace="default",task_queue="certlake"} 7`,
		`temporal_activity_execution_latency_seconds_count{namespace="default",task_queue="certlake"} 1`,
		`temporal_activity_execution_latency_seconds_sum{namespace="default",task_queue="certlake"} 1.5`,
		`certlake_rows_staged_total{log="https://ct.example/log/"} 42`,
		`certlake_rows_merged_total 5`,
		`certlake_log_retries_total{log="https://ct.example/log/"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q; got:\n%s", want, text)
		}
	}
}
