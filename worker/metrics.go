package main

import (
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"
)

// sdkMetrics exposes the Temporal SDK's metrics on Prometheus. The SDK names
// its tags per call, so series are kept in a map and emitted by an unchecked
// collector; missing labels of a family are filled with "" so that every
// series of a family has the same label names, as Prometheus requires.
type sdkMetrics struct {
	mu     sync.Mutex
	series map[string]*series // key: kind, name and sorted tags
}

type series struct {
	kind  prometheus.ValueType // CounterValue, GaugeValue; timers are two counters
	name  string
	tags  map[string]string
	value atomic.Uint64 // float64 bits for gauges, count for counters
	sumNS atomic.Int64  // timers: total duration
	timer bool
}

func newSDKMetrics() *sdkMetrics { return &sdkMetrics{series: map[string]*series{}} }

func (m *sdkMetrics) get(kind prometheus.ValueType, timer bool, name string, tags map[string]string) *series {
	keys := slices.Sorted(maps.Keys(tags))
	var b strings.Builder
	b.WriteString(name)
	for _, k := range keys {
		b.WriteString("\x00" + k + "=" + tags[k])
	}
	key := b.String()
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.series[key]
	if !ok {
		s = &series{kind: kind, name: promName(name), tags: maps.Clone(tags), timer: timer}
		m.series[key] = s
	}
	return s
}

// Describe sends nothing: this is an unchecked collector.
func (m *sdkMetrics) Describe(chan<- *prometheus.Desc) {}

// Collect emits every series, padding each family to the union of its labels.
func (m *sdkMetrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	all := slices.Collect(maps.Values(m.series))
	m.mu.Unlock()
	labels := map[string]map[string]bool{}
	for _, s := range all {
		if labels[s.name] == nil {
			labels[s.name] = map[string]bool{}
		}
		for k := range s.tags {
			labels[s.name][promName(k)] = true
		}
	}
	for _, s := range all {
		names := slices.Sorted(maps.Keys(labels[s.name]))
		values := make([]string, len(names))
		for i, n := range names {
			for k, v := range s.tags {
				if promName(k) == n {
					values[i] = v
				}
			}
		}
		if s.timer {
			count := float64(s.value.Load())
			sum := time.Duration(s.sumNS.Load()).Seconds()
			emit(ch, s.name+"_seconds_count", prometheus.CounterValue, count, names, values)
			emit(ch, s.name+"_seconds_sum", prometheus.CounterValue, sum, names, values)
			continue
		}
		v := float64(s.value.Load())
		if s.kind == prometheus.GaugeValue {
			v = math.Float64frombits(s.value.Load())
		}
		emit(ch, s.name, s.kind, v, names, values)
	}
}

func emit(ch chan<- prometheus.Metric, name string, kind prometheus.ValueType, v float64, names, values []string) {
	desc := prometheus.NewDesc(name, "Temporal SDK metric "+name, names, nil)
	if m, err := prometheus.NewConstMetric(desc, kind, v, values...); err == nil {
		ch <- m
	}
}

func promName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' {
			return r
		}
		return '_'
	}, s)
}

// handler is the SDK's view of sdkMetrics with a fixed set of tags.
type handler struct {
	m    *sdkMetrics
	tags map[string]string
}

var _ client.MetricsHandler = handler{}

func (h handler) WithTags(t map[string]string) client.MetricsHandler {
	n := maps.Clone(h.tags)
	if n == nil {
		n = map[string]string{}
	}
	maps.Copy(n, t)
	return handler{m: h.m, tags: n}
}

func (h handler) Counter(name string) client.MetricsCounter {
	return counter{h.m.get(prometheus.CounterValue, false, name, h.tags)}
}

func (h handler) Gauge(name string) client.MetricsGauge {
	return gauge{h.m.get(prometheus.GaugeValue, false, name, h.tags)}
}

func (h handler) Timer(name string) client.MetricsTimer {
	return timer{h.m.get(prometheus.CounterValue, true, name, h.tags)}
}

type counter struct{ s *series }

func (c counter) Inc(n int64) {
	if n > 0 {
		c.s.value.Add(uint64(n))
	}
}

type gauge struct{ s *series }

func (g gauge) Update(v float64) { g.s.value.Store(math.Float64bits(v)) }

type timer struct{ s *series }

func (t timer) Record(d time.Duration) {
	t.s.value.Add(1)
	t.s.sumNS.Add(int64(d))
}

// certlakeMetrics are certlake's own counters. It implements
// activities.Metrics and ctlog.Metrics.
type certlakeMetrics struct {
	fetched, staged, bad, failed, retried, rateLimited *prometheus.CounterVec
	merged                                             prometheus.Counter
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
