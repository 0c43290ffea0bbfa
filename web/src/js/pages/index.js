// Dashboard: live power flow and channel table (every second), today's energy, history charts.
import { ApiError } from "../api.js";
import { clearChart, drawEnergyChart } from "../charts.js";
import { $, h, replace, table } from "../dom.js";
import { energy, number, percent, power } from "../format.js";
import { balanceData, balanceTotals, consumptionData, period, shift, toCsv } from "../history.js";
import { followMeter } from "../live.js";
import { showError, unavailable } from "../notices.js";
import { boot } from "../page.js";
import { powerFlow } from "../power-flow.js";

boot();

// ---- live ----------------------------------------------------------------------------------------

function setNode(id, value, sub, shown = true) {
  const node = $(`#node-${id}`);
  node.hidden = !shown;
  $("[data-value]", node).textContent = value;
  $("[data-sub]", node).textContent = sub;
}

function setArrow(id, direction, active, shown = true) {
  const arrow = $(`#arrow-${id}`);
  arrow.hidden = !shown;
  arrow.textContent = direction;
  arrow.classList.toggle("active", active);
}

const IDLE_W = 5; // below this a flow is shown as idle, not as a direction

function drawFlow(flow) {
  const g = flow.grid ?? 0;
  setNode("grid", flow.grid === null ? "–" : power(Math.abs(g)),
    flow.grid === null ? "no grid channel" : g > IDLE_W ? "importing" : g < -IDLE_W ? "exporting" : "idle");
  setArrow("grid", g < -IDLE_W ? "←" : "→", Math.abs(g) > IDLE_W);
  setNode("pv", power(flow.solar ?? 0), (flow.solar ?? 0) > IDLE_W ? "producing" : "idle", flow.solar !== null);
  setArrow("pv", "↓", (flow.solar ?? 0) > IDLE_W, flow.solar !== null);
  const s = flow.storage ?? 0;
  setNode("battery", power(Math.abs(s)), s > IDLE_W ? "discharging" : s < -IDLE_W ? "charging" : "idle", flow.storage !== null);
  setArrow("battery", s < -IDLE_W ? "→" : "←", Math.abs(s) > IDLE_W, flow.storage !== null);
  setNode("home", power(flow.home), "using");

  const top = Math.max(1, ...flow.loads.map((l) => l.power), flow.other ?? 0);
  const item = (name, watts, cls) => {
    const fill = h("span");
    fill.style.width = `${Math.max(0, Math.min(100, (watts / top) * 100))}%`; // CSSOM: allowed by the CSP
    return h(`li${cls}`, {}, h("span", {}, name), h("span.num", {}, power(watts)), h("span.bar", { "aria-hidden": "true" }, fill));
  };
  const items = flow.loads.map((l) => item(l.name, l.power, ""));
  if (flow.other !== null) items.push(item("Other (not measured)", flow.other, ".other"));
  replace($("#loads"), items.length ? items : h("li.muted", {}, "No load channel is active."));
}

// Power first: on a phone the table scrolls sideways inside its box, and power is what people look for.
const COLUMNS = [
  { label: "#" }, { label: "Channel" }, { label: "Power", num: true }, { label: "Voltage", num: true },
  { label: "Current", num: true }, { label: "PF", num: true }, { label: "Imported", num: true },
  { label: "Exported", num: true }, { label: "Role" }, { label: "Phase" },
];

function drawChannels(values) {
  const rows = values.map((c) => [
    String(c.index), c.label, power(c.data.activePower), `${number(c.data.voltage, 1)} V`,
    `${number(c.data.current, 2)} A`, number(c.data.powerFactor, 2), energy(c.data.activeEnergyImported),
    energy(c.data.activeEnergyExported), c.role, c.phase === 4 ? "split" : `L${c.phase}`,
  ]);
  replace($("#channel-table"), rows.length ? table(COLUMNS, rows, { className: "channels" }) : h("p.muted", {}, "No active channel has a reading yet."));
}

let liveError = null;
followMeter(
  (values) => {
    drawFlow(powerFlow(values));
    drawChannels(values);
    if (liveError) { liveError.remove(); liveError = null; }
  },
  (mode, error) => {
    const words = { stream: "live", polling: "live (polling)", offline: "not updating" };
    $("#live-state").textContent = words[mode];
    if (mode === "offline" && error && !liveError) liveError = showError(error, "Live values");
  },
);

// ---- history ---------------------------------------------------------------------------------------

// One data source per chart (history.js): what the lead rewires to the final history API.
const SOURCES = { consumption: consumptionData, balance: balanceData };
const state = { chart: "consumption", view: "day", date: new Date(), data: null, shown: 0 };

function pressed(selector, attr, value) {
  for (const b of document.querySelectorAll(selector)) b.setAttribute("aria-pressed", String(b.dataset[attr] === value));
}

function kpis(target, pairs) {
  replace(target, pairs.map(([label, value]) => h("div.kpi", {}, h("div.label", {}, label), h("div.value", {}, value))));
}

function noHistory(err) {
  if (err instanceof ApiError && err.missing) return unavailable("Energy history");
  showError(err, "Loading history");
  return h("p.error-text", {}, `History could not be loaded: ${err.message}`);
}

async function loadToday() {
  try {
    const t = balanceTotals(await balanceData("day", new Date()));
    kpis($("#today"), [
      ["Imported", energy(t.imported * 1000)], ["Exported", energy(t.exported * 1000)],
      ["Solar", energy(t.solar * 1000)], ["Home used", energy(t.home * 1000)],
      ["Self-consumption", percent(t.selfConsumption)], ["Self-sufficiency", percent(t.selfSufficiency)],
    ]);
  } catch (err) {
    replace($("#today"), noHistory(err));
  }
}

async function loadChart() {
  const p = period(state.view, state.date);
  $("#period-label").textContent = p.label;
  $("#prev").disabled = state.view === "total";
  $("#next").disabled = state.view === "total" || p.end > new Date();
  const note = $("#history-note");
  note.hidden = true;
  $("#chart-box").hidden = false;
  state.data = null;
  $("#csv").disabled = true;
  const request = ++state.shown; // a click while loading: only the newest answer is drawn
  try {
    const data = await SOURCES[state.chart](state.view, state.date);
    if (request !== state.shown) return;
    state.data = data;
    $("#csv").disabled = false;
    await drawEnergyChart($("#history-chart"), data, { title: "" });
    if (state.chart === "balance") {
      const t = balanceTotals(data);
      kpis($("#history-kpis"), [
        ["Solar", `${number(t.solar, 1)} kWh`], ["Grid import", `${number(t.imported, 1)} kWh`],
        ["Grid export", `${number(t.exported, 1)} kWh`], ["Battery charge", `${number(t.charged, 1)} kWh`],
        ["Battery discharge", `${number(t.discharged, 1)} kWh`],
        ["Self-consumption", percent(t.selfConsumption)], ["Self-sufficiency", percent(t.selfSufficiency)],
      ]);
    } else {
      replace($("#history-kpis"));
    }
  } catch (err) {
    if (request !== state.shown) return;
    clearChart($("#history-chart"));
    replace($("#history-kpis"));
    replace(note, noHistory(err));
    note.hidden = false;
    $("#chart-box").hidden = true;
  }
}

function downloadCsv() {
  if (!state.data) return;
  const p = period(state.view, state.date);
  const blob = new Blob([toCsv(state.data)], { type: "text/csv" });
  const link = h("a", { href: URL.createObjectURL(blob), download: `energy_${state.chart}_${state.view}_${p.key}.csv` });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}

for (const b of document.querySelectorAll("[data-chart]")) {
  b.addEventListener("click", () => { state.chart = b.dataset.chart; pressed("[data-chart]", "chart", state.chart); loadChart(); });
}
for (const b of document.querySelectorAll("[data-view]")) {
  b.addEventListener("click", () => { state.view = b.dataset.view; pressed("[data-view]", "view", state.view); loadChart(); });
}
$("#prev").addEventListener("click", () => { state.date = shift(state.view, state.date, -1); loadChart(); });
$("#next").addEventListener("click", () => { state.date = shift(state.view, state.date, 1); loadChart(); });
$("#csv").addEventListener("click", downloadCsv);

loadToday();
loadChart();
