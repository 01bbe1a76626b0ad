// Draws every chart spec the page embeds (<script type="application/json" data-chart="id">)
// with plotly.js, in the colours of the current theme, and redraws when the theme changes.
"use strict";

(() => {
  const dark = window.matchMedia("(prefers-color-scheme: dark)");
  const PALETTE = ["#e0702b", "#3b82c4", "#2f9e5a", "#9b59b6", "#c0392b", "#16a5a5", "#d4a017", "#7f8c8d"];
  // Hover formats: dollars keep four significant digits, so $0.000123 is not shown as $0.
  const FORMATS = { usd: ",.4~g", ms: ",.0f", count: ",.0f", tokens: ",.0f", percent: ".1f" };
  const PREFIX = { usd: "$" };
  const SUFFIX = { ms: " ms", percent: "%" };
  const WHOLE = new Set(["count", "tokens"]);

  function theme() {
    const style = getComputedStyle(document.documentElement);
    return { text: style.getPropertyValue("--muted").trim(), grid: style.getPropertyValue("--border").trim() };
  }

  function traces(spec) {
    if (spec.kind === "ranking") {
      return [{
        type: "bar", orientation: "h", x: spec.values.slice().reverse(), y: spec.labels.slice().reverse(),
        marker: { color: PALETTE[0] },
        hovertemplate: `%{y}: ${PREFIX[spec.unit] || ""}%{x:${FORMATS[spec.unit]}}<extra></extra>`,
      }];
    }
    return spec.series.map((series, index) => ({
      type: spec.kind === "bar" ? "bar" : "scatter",
      mode: spec.x.length > 1 ? "lines" : "lines+markers", name: series.name, x: spec.x, y: series.y,
      marker: { color: PALETTE[index % PALETTE.length] },
      line: { color: PALETTE[index % PALETTE.length], width: 2 },
      hovertemplate: `${series.name}: ${PREFIX[spec.unit] || ""}%{y:${FORMATS[spec.unit]}}${SUFFIX[spec.unit] || ""}<extra></extra>`,
    }));
  }

  function largest(spec) {
    const values = spec.kind === "ranking" ? spec.values : spec.series.flatMap((series) => series.y);
    return Math.max(0, ...values.filter((value) => typeof value === "number"));
  }

  function valueAxis(spec, axis) {
    // Plotly picks readable ticks itself; we add the unit, and whole steps for small counts.
    const value = { ...axis, rangemode: "tozero", tickprefix: PREFIX[spec.unit] || "", ticksuffix: SUFFIX[spec.unit] || "" };
    if (WHOLE.has(spec.unit) && largest(spec) <= 5) value.dtick = 1;
    return value;
  }

  function layout(spec) {
    const colours = theme();
    const axis = { color: colours.text, gridcolor: colours.grid, zerolinecolor: colours.grid, automargin: true };
    const ranking = spec.kind === "ranking";
    return {
      height: 220, margin: { l: 8, r: 8, t: 8, b: 8 }, autosize: true,
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
      font: { color: colours.text, size: 11 }, showlegend: spec.kind !== "ranking" && spec.series.length > 1,
      legend: { orientation: "h", y: -0.2 }, barmode: spec.stacked ? "stack" : "group",
      xaxis: ranking ? valueAxis(spec, axis) : { ...axis, type: "date", tickformat: "%b %-d\n%H:%M", hoverformat: "%Y-%m-%d %H:%M" },
      yaxis: ranking ? { ...axis, type: "category" } : valueAxis(spec, axis),
      hovermode: spec.kind === "ranking" ? "closest" : "x unified",
    };
  }

  function drawAll() {
    for (const block of document.querySelectorAll("script[data-chart]")) {
      const target = document.getElementById(block.dataset.chart);
      if (!target) continue;
      const spec = JSON.parse(block.textContent);
      const empty = spec.kind === "ranking" ? !spec.values.length : !spec.x.length;
      if (empty) { target.classList.add("empty"); target.textContent = "No data in this range."; continue; }
      Plotly.react(target, traces(spec), layout(spec), { displayModeBar: false, responsive: true });
    }
  }

  document.addEventListener("DOMContentLoaded", drawAll);
  dark.addEventListener("change", drawAll);
})();
