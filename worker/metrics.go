package main

import (
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.temporal.io/sdk/client"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
)

// sdkMetricsHandler exposes the Temporal SDK's own metrics (temporal_request,
// temporal_activity_execution_latency, ...) on reg, through the SDK's
// OpenTelemetry contrib and OpenTelemetry's Prometheus exporter. Counters are
// monotonic so that they reach Prometheus as counters (_total), timers as
// histograms in seconds.
func sdkMetricsHandler(reg prometheus.Registerer, logger *slog.Logger) (client.MetricsHandler, error) {
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo(), otelprom.WithoutTargetInfo())
	if err != nil {
		return nil, fmt.Errorf("temporal sdk metrics exporter: %w", err)
	}
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	return temporalotel.NewMetricsHandler(temporalotel.MetricsHandlerOptions{
		Meter:                provider.Meter("temporal-sdk-go"),
		UseMonotonicCounters: true,
		// The contrib panics on a meter error by default; a metric must never
		// stop the worker.
		OnError: func(err error) { logger.Warn("temporal sdk metric", "err", err) },
	}), nil
}

// certlakeMetrics are certlake's own counters. It implements
// activities.Metrics and ctlog.Metrics.
type certlakeMetrics struct {
	fetched, staged, bad, failed, retried, rateLimited, verification *prometheus.CounterVec
	merged                                                           prometheus.Counter
}

func newCertlakeMetrics(reg prometheus.Registerer) *certlakeMetrics {
	perLog := func(name, help string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "certlake", Name: name, Help: help}, []string{"log"})
		reg.MustRegister(c)
		return c
	}
	m := &certlakeMetrics{
		fetched:     perLog("entries_fetched_total", "CT log entries received."),
		staged:      perLog("rows_staged_total", "Rows committed to staging (or main without staging)."),
		bad:         perLog("bad_entries_total", "Entries that could not be parsed into rows."),
		failed:      perLog("failed_ranges_total", "FetchRange attempts that ended in an error."),
		retried:     perLog("log_retries_total", "Requests to a log that were retried."),
		rateLimited: perLog("rate_limited_total", "429 responses from a log."),
		verification: perLog("verification_failures_total",
			"Ranges or tree heads a log served that failed verification (signature, Merkle proof, leaf_index, issuer_key_hash), and log misbehaviour."),
		merged: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "certlake", Name: "rows_merged_total",
			Help: "Rows inserted into the main table by merges."}),
	}
	reg.MustRegister(m.merged)
	return m
}

func (m *certlakeMetrics) EntriesFetched(log string, n int) {
	m.fetched.WithLabelValues(log).Add(float64(n))
}
func (m *certlakeMetrics) RowsStaged(log string, n int64) {
	m.staged.WithLabelValues(log).Add(float64(n))
}
func (m *certlakeMetrics) BadEntries(log string, n int) { m.bad.WithLabelValues(log).Add(float64(n)) }
func (m *certlakeMetrics) FailedRange(log string)       { m.failed.WithLabelValues(log).Inc() }
func (m *certlakeMetrics) RowsMerged(n int64)           { m.merged.Add(float64(n)) }

// ctlog.Metrics: Fetched and Malformed are already counted per range by the
// activities, so only retries and rate limits are recorded here.
func (m *certlakeMetrics) Fetched(string, int)            {}
func (m *certlakeMetrics) Malformed(string, int)          {}
func (m *certlakeMetrics) Retried(log string, status int) { m.retried.WithLabelValues(log).Inc() }
func (m *certlakeMetrics) RateLimited(log string)         { m.rateLimited.WithLabelValues(log).Inc() }
func (m *certlakeMetrics) VerificationFailed(log string)  { m.verification.WithLabelValues(log).Inc() }
