package coverage

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"strconv"
	"time"
)

// WriteHTML writes r as one HTML page with everything inline (styles,
// script, data): it opens from disk and fetches nothing. Every number is
// in the markup (with data-field and data-value for machines); the bars
// are drawn from the bins by the inline script.
func WriteHTML(w io.Writer, r Report) error {
	bins := make([]map[string]any, len(r.Logs))
	for i, l := range r.Logs {
		bins[i] = map[string]any{"w": l.BinWidth, "c": l.Ceiling, "main": nonNil(l.BinMain),
			"staged": nonNil(l.BinStaged), "missing": nonNil(l.BinMissing), "past": l.PastCeiling}
	}
	data, err := json.Marshal(bins)
	if err != nil {
		return fmt.Errorf("coverage data: %w", err)
	}
	return page.Execute(w, struct {
		Report
		Data template.JS
	}{r, template.JS(data)})
}

func nonNil(s []uint64) []uint64 {
	if s == nil {
		return []uint64{}
	}
	return s
}

// num formats a count (uint64 or int) with thin spaces between thousands.
func num(v any) string {
	var s string
	switch n := v.(type) {
	case uint64:
		s = strconv.FormatUint(n, 10)
	case int:
		s = strconv.Itoa(n)
	default:
		s = fmt.Sprint(v)
	}
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, "\u2009"...)
		}
		out = append(out, s[i])
	}
	return string(out)
}

func pct(n, of uint64) string {
	if of == 0 {
		return "-"
	}
	return strconv.FormatFloat(100*float64(n)/float64(of), 'f', 2, 64) + "%"
}

func eta(sec float64) string {
	d := time.Duration(sec * float64(time.Second)).Round(time.Second)
	switch {
	case d >= 24*time.Hour:
		return fmt.Sprintf("%dd%dh", d/(24*time.Hour), (d%(24*time.Hour))/time.Hour)
	case d >= time.Hour:
		return fmt.Sprintf("%dh%dm", d/time.Hour, (d%time.Hour)/time.Minute)
	case d >= time.Minute:
		return fmt.Sprintf("%dm%ds", d/time.Minute, (d%time.Minute)/time.Second)
	}
	return fmt.Sprintf("%ds", int(d.Seconds()))
}

var page = template.Must(template.New("coverage").Funcs(template.FuncMap{
	"num": num, "pct": pct, "eta": eta,
	"name": func(l LogReport) string {
		if l.Name != "" {
			return l.Name
		}
		return l.URL
	},
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1b1b1b; background: #fff; }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 0; }
.sub { color: #555; margin: 0 0 12px; }
.legend span { display: inline-block; margin-right: 16px; }
.sw { display: inline-block; width: 12px; height: 12px; vertical-align: -1px; margin-right: 4px; border-radius: 2px; }
.main { background: #2e7d32; } .staged { background: #1e88e5; } .missing { background: #e53935; } .past { background: #9e9e9e; }
section { border-top: 1px solid #ddd; padding: 10px 0; }
summary { cursor: pointer; color: #444; font-size: 13px; }
.url { color: #555; font-size: 12px; }
.barrow { display: flex; align-items: center; gap: 8px; margin: 8px 0 2px; }
canvas { border: 1px solid #bbb; width: 1000px; height: 28px; image-rendering: pixelated; }
.pastbox { font-size: 12px; color: #fff; background: #9e9e9e; padding: 5px 6px; border-radius: 3px; }
.axis { display: flex; justify-content: space-between; width: 1002px; font-size: 11px; color: #666; }
table { border-collapse: collapse; margin-top: 6px; }
td, th { padding: 2px 10px 2px 0; text-align: right; font-variant-numeric: tabular-nums; }
th { font-weight: 600; color: #444; }
td:first-child, th:first-child { text-align: left; }
.counts td { padding-right: 18px; }
#tip { position: fixed; pointer-events: none; background: #222; color: #fff; font-size: 12px; padding: 4px 6px; border-radius: 3px; display: none; }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
<p class="sub">{{len .Logs}} logs: <span data-field="main" data-value="{{.Main}}">{{num .Main}}</span> indices in main,
<span data-field="staged" data-value="{{.Staged}}">{{num .Staged}}</span> only in staging,
<span data-field="missing" data-value="{{.Missing}}">{{num .Missing}}</span> missing below the ceilings,
<span data-field="past_ceiling" data-value="{{.PastCeiling}}">{{num .PastCeiling}}</span> past them.
A backfill plans <span data-field="planned_entries" data-value="{{.PlannedEntries}}">{{num .PlannedEntries}}</span> entries in
<span data-field="planned_ranges" data-value="{{.PlannedRanges}}">{{num .PlannedRanges}}</span> ranges (about {{eta .ETASeconds}}).</p>
<p class="legend"><span><i class="sw main"></i>in main</span><span><i class="sw staged"></i>only in staging</span><span><i class="sw missing"></i>missing</span><span><i class="sw past"></i>past the ceiling (not planned)</span></p>
{{range $i, $l := .Logs}}
<section class="log" data-log="{{$l.URL}}">
<h2>{{name $l}}</h2>
<div class="url">{{$l.URL}}</div>
<div class="barrow"><canvas width="1000" height="28" data-index="{{$i}}" aria-label="coverage of {{name $l}}"></canvas>{{if $l.PastCeiling}}<span class="pastbox">+{{num $l.PastCeiling}} past</span>{{end}}</div>
<div class="axis"><span>0</span><span>ceiling {{num $l.Ceiling}}</span></div>
<table class="counts"><tr>
<td>ceiling <b data-field="ceiling" data-value="{{$l.Ceiling}}">{{num $l.Ceiling}}</b></td>
<td><i class="sw main"></i>main <b data-field="main" data-value="{{$l.Main}}">{{num $l.Main}}</b> ({{pct $l.Main $l.Ceiling}})</td>
<td><i class="sw staged"></i>staged <b data-field="staged" data-value="{{$l.Staged}}">{{num $l.Staged}}</b></td>
<td><i class="sw missing"></i>missing <b data-field="missing" data-value="{{$l.Missing}}">{{num $l.Missing}}</b></td>
<td><i class="sw past"></i>past ceiling <b data-field="past_ceiling" data-value="{{$l.PastCeiling}}">{{num $l.PastCeiling}}</b></td>
</tr><tr>
<td colspan="2">planned: <b data-field="planned_entries" data-value="{{$l.PlannedEntries}}">{{num $l.PlannedEntries}}</b> entries in
<b data-field="planned_ranges" data-value="{{$l.PlannedRanges}}">{{num $l.PlannedRanges}}</b> ranges</td>
<td colspan="3"><b data-field="requests" data-value="{{$l.PlannedRequests}}">{{num $l.PlannedRequests}}</b> requests, about <b data-field="eta" data-value="{{$l.ETASeconds}}">{{eta $l.ETASeconds}}</b></td>
</tr></table>
{{if $l.Holes}}<details{{if le (len $.Logs) 3}} open{{end}}><summary>largest holes ({{len $l.Holes}})</summary><table class="holes"><tr><th>start</th><th>end</th><th>entries</th><th>planned</th></tr>
{{range $l.Holes}}<tr><td>{{num .Start}}</td><td>{{num .End}}</td><td>{{num .Entries}}</td><td>{{if eq .Planned .Entries}}all{{else if .Planned}}{{num .Planned}}{{else}}no{{end}}</td></tr>
{{end}}</table></details>{{end}}
</section>
{{end}}
<div id="tip"></div>
<script>
"use strict";
const logs = {{.Data}};
const colors = {main: "#2e7d32", staged: "#1e88e5", missing: "#e53935"};
const fmt = n => n.toLocaleString("en-US");
let drawn = 0;
for (const canvas of document.querySelectorAll("canvas[data-index]")) {
  const l = logs[Number(canvas.dataset.index)];
  const ctx = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height, n = l.main.length;
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, W, H);
  for (let b = 0; b < n; b++) {
    const x0 = Math.floor(b * W / n), x1 = Math.max(x0 + 1, Math.floor((b + 1) * W / n));
    const total = l.main[b] + l.staged[b] + l.missing[b];
    if (total === 0) continue;
    let y = 0;
    for (const k of ["main", "staged", "missing"]) {
      const h = l[k][b] / total * H;
      if (h <= 0) continue;
      ctx.fillStyle = colors[k];
      // A missing sliver stays visible: at least one pixel.
      const hh = k === "missing" ? Math.max(1, Math.round(h)) : Math.round(h);
      ctx.fillRect(x0, Math.round(y), x1 - x0, hh);
      y += h;
    }
  }
  const tip = document.getElementById("tip");
  canvas.addEventListener("mousemove", e => {
    const r = canvas.getBoundingClientRect();
    const b = Math.min(n - 1, Math.floor((e.clientX - r.left) / r.width * n));
    const lo = b * l.w, hi = Math.min(l.c, lo + l.w) - 1;
    tip.textContent = "[" + fmt(lo) + ", " + fmt(hi) + "]: main " + fmt(l.main[b]) + ", staged " + fmt(l.staged[b]) + ", missing " + fmt(l.missing[b]);
    tip.style.left = (e.clientX + 12) + "px";
    tip.style.top = (e.clientY + 12) + "px";
    tip.style.display = "block";
  });
  canvas.addEventListener("mouseleave", () => { tip.style.display = "none"; });
  drawn++;
}
document.body.dataset.drawn = String(drawn);
</script>
</body>
</html>
`))
