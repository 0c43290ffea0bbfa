// Drawing the history with Chart.js (its UMD build, pinned by web/'s package-lock.json, copied by
// build.mjs): stacked bars per series, the home's use as a line, in the page's light or dark colours.
// The library (70 kB gzip) is fetched on the first chart, not with the page: a dashboard without
// history never needs it.

const LIBRARY = "/static/vendor/chart.umd.min.js";
let library = null;

function chartLibrary() {
  library ??= new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = LIBRARY;
    script.onload = () => resolve(window.Chart);
    script.onerror = () => {
      library = null;
      reject(new Error("the chart library could not be loaded"));
    };
    document.head.append(script);
  });
  return library;
}

const PALETTE = ["#0ea5e9", "#f97316", "#22c55e", "#a855f7", "#ef4444", "#14b8a6", "#eab308", "#ec4899",
  "#6366f1", "#84cc16", "#f43f5e", "#06b6d4", "#d946ef", "#10b981", "#fb923c", "#8b5cf6", "#64748b"];

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

function colour(series, index) {
  const byRole = { grid: "--grid", export: "--ok", pv: "--pv", battery: "--battery", charge: "--battery", home: "--home", other: "--muted" };
  return byRole[series.role] ? cssVar(byRole[series.role]) : PALETTE[index % PALETTE.length];
}

// Removes the chart on `canvas`, if there is one.
export function clearChart(canvas) {
  window.Chart?.getChart(canvas)?.destroy();
}

// Replaces the chart on `canvas` (if any) by one of `data`; resolves to the Chart.
export async function drawEnergyChart(canvas, data, { title }) {
  const Chart = await chartLibrary();
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
