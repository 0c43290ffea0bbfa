// Drawing the history with Chart.js (the UMD build the dashboard page loads, pinned by web/'s
// package-lock.json): stacked bars per series, the home's use as a line. Colours follow the page's
// light or dark palette.

const PALETTE = ["#0ea5e9", "#f97316", "#22c55e", "#a855f7", "#ef4444", "#14b8a6", "#eab308", "#ec4899",
  "#6366f1", "#84cc16", "#f43f5e", "#06b6d4", "#d946ef", "#10b981", "#fb923c", "#8b5cf6", "#64748b"];

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

function colour(series, index) {
  const byRole = { grid: "--grid", export: "--ok", pv: "--pv", battery: "--battery", charge: "--battery", home: "--home", other: "--muted" };
  return byRole[series.role] ? cssVar(byRole[series.role]) : PALETTE[index % PALETTE.length];
}

// Replaces the chart on `canvas` (if any) by one of `data`; returns the Chart.
export function drawEnergyChart(canvas, data, { title }) {
  const Chart = window.Chart;
  if (!Chart) throw new Error("the chart library did not load");
  Chart.getChart(canvas)?.destroy();
  const text = cssVar("--text"), grid = cssVar("--line");
  return new Chart(canvas, {
    data: {
      labels: data.labels,
      datasets: data.series.map((s, i) => ({
        type: s.kind === "line" ? "line" : "bar",
        label: s.name,
        data: s.values,
        backgroundColor: colour(s, i),
        borderColor: colour(s, i),
        stack: s.kind === "line" ? undefined : "energy",
        order: s.kind === "line" ? 0 : 1,
        pointRadius: 2,
        tension: 0.25,
      })),
    },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      interaction: { mode: "index", intersect: false },
      plugins: {
        title: { display: Boolean(title), text: title, color: text },
        legend: { labels: { color: text, boxWidth: 12 } },
        tooltip: { callbacks: { label: (c) => `${c.dataset.label}: ${c.parsed.y === null ? "–" : c.parsed.y.toFixed(2)} kWh` } },
      },
      scales: {
        x: { stacked: true, ticks: { color: text }, grid: { color: grid } },
        y: { stacked: true, ticks: { color: text }, grid: { color: grid }, title: { display: true, text: "kWh", color: text } },
      },
    },
  });
}
