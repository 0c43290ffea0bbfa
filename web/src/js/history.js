// Energy history for the dashboard's charts: periods (day, month, year, total) and where each chart's
// numbers come from. Each chart has one small data-source function returning
//   {labels: [bucket label...], series: [{name, role, kind, values: [kWh per bucket]}]}
// and nothing else in the page knows how history is queried: wiring the charts to the final history
// API means changing `queryHistory` (and, if its grouping differs, the two sources below it).
import { api, ApiError } from "./api.js";
import { serves } from "./schema.js";

export const VIEWS = ["day", "month", "year", "total"];
const RESOLUTION = { day: "hour", month: "day", year: "month", total: "year" };
const TIME_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone;

// The period of `view` containing `date` (local time): start, end (exclusive), label, key.
export function period(view, date) {
  const y = date.getFullYear(), m = date.getMonth(), d = date.getDate();
  if (view === "day") {
    return { start: new Date(y, m, d), end: new Date(y, m, d + 1), key: isoDate(new Date(y, m, d)),
      label: date.toLocaleDateString(undefined, { weekday: "short", day: "numeric", month: "short", year: "numeric" }) };
  }
  if (view === "month") {
    return { start: new Date(y, m, 1), end: new Date(y, m + 1, 1), key: isoDate(new Date(y, m, 1)).slice(0, 7),
      label: date.toLocaleDateString(undefined, { month: "long", year: "numeric" }) };
  }
  if (view === "year") {
    return { start: new Date(y, 0, 1), end: new Date(y + 1, 0, 1), key: String(y), label: String(y) };
  }
  return { start: new Date(2000, 0, 1), end: new Date(y + 1, 0, 1), key: "total", label: "All years" };
}

// The same view one period earlier (-1) or later (+1).
export function shift(view, date, step) {
  const y = date.getFullYear(), m = date.getMonth(), d = date.getDate();
  if (view === "day") return new Date(y, m, d + step);
  if (view === "month") return new Date(y, m + step, 1);
  if (view === "year") return new Date(y + step, 0, 1);
  return date;
}

function isoDate(d) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

function bucketLabel(view, iso) {
  const d = new Date(iso);
  if (view === "day") return d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  if (view === "month") return String(d.getDate());
  if (view === "year") return d.toLocaleDateString(undefined, { month: "short" });
  return String(d.getFullYear());
}

// The one call to the history query API (GET /api/v1/history/energy). Its answer, as used here:
// {buckets: [ISO start...], series: [{key, label, role, imported: [Wh...], exported: [Wh...]}]}.
// `by`: "channel", "group" or "role". A build without the API answers 404: ApiError.missing.
export async function queryHistory(view, date, by) {
  if (!(await serves("/history/energy"))) throw new ApiError(404, "no history API in this build", "/history/energy");
  const p = period(view, date);
  return api.get("/history/energy", {
    query: { from: p.start.toISOString(), to: p.end.toISOString(), resolution: RESOLUTION[view], by, tz: TIME_ZONE },
  });
}

const kWh = (list) => list.map((wh) => (wh === null ? null : wh / 1000));
const minus = (a, b) => a.map((x, i) => (x ?? 0) - (b[i] ?? 0));
const roleSeries = (doc, role, field) => {
  const rows = doc.series.filter((s) => s.role === role);
  return rows.length ? doc.buckets.map((_, i) => rows.reduce((t, s) => t + (s[field][i] ?? 0), 0)) : null;
};

// Balance: grid import and export, solar, storage charge and discharge, and the home's use, in kWh.
export async function balanceData(view, date) {
  const doc = await queryHistory(view, date, "role");
  const zero = doc.buckets.map(() => 0);
  const gridIn = roleSeries(doc, "grid", "imported") || zero;
  const gridOut = roleSeries(doc, "grid", "exported") || zero;
  const solar = roleSeries(doc, "pv", "imported") || zero;
  const storageRole = doc.series.some((s) => s.role === "inverter") ? "inverter" : "battery";
  const discharge = roleSeries(doc, storageRole, "imported") || zero;
  const charge = roleSeries(doc, storageRole, "exported") || zero;
  const home = gridIn.map((x, i) => x - gridOut[i] + solar[i] + discharge[i] - charge[i]);
  return {
    labels: doc.buckets.map((b) => bucketLabel(view, b)),
    series: [
      { name: "Grid import", role: "grid", kind: "bar", values: kWh(gridIn) },
      { name: "Grid export", role: "export", kind: "bar", values: kWh(gridOut.map((x) => -x)) },
      { name: "Solar", role: "pv", kind: "bar", values: kWh(solar) },
      { name: "Battery discharge", role: "battery", kind: "bar", values: kWh(discharge) },
      { name: "Battery charge", role: "charge", kind: "bar", values: kWh(charge.map((x) => -x)) },
      { name: "Home", role: "home", kind: "line", values: kWh(home) },
    ],
  };
}

// Consumption per load group, plus "Other": what the home used that no load channel measured.
export async function consumptionData(view, date) {
  const [groups, balance] = await Promise.all([queryHistory(view, date, "group"), balanceData(view, date)]);
  const loads = groups.series
    .filter((s) => s.role === "load")
    .map((s) => ({ name: s.label, role: "load", kind: "bar", values: kWh(s.imported) }));
  const home = balance.series.find((s) => s.role === "home").values;
  const tracked = home.map((_, i) => loads.reduce((t, s) => t + (s.values[i] ?? 0), 0));
  const other = minus(home, tracked).map((x) => Math.round(x * 1000) / 1000);
  return { labels: balance.labels, series: [...loads, { name: "Other", role: "other", kind: "bar", values: other }] };
}

// Sums of a balance over its period, and the two shares the dashboard shows (null without data).
export function balanceTotals(balance) {
  const total = (role) => Math.abs(balance.series.find((s) => s.role === role).values.reduce((t, x) => t + (x ?? 0), 0));
  const t = {
    imported: total("grid"), exported: total("export"), solar: total("pv"),
    discharged: total("battery"), charged: total("charge"), home: total("home"),
  };
  // Self-consumption: share of the solar energy used at home; self-sufficiency: share of the home's
  // use not bought from the grid.
  t.selfConsumption = t.solar > 0 ? Math.max(0, t.solar - t.exported) / t.solar : null;
  t.selfSufficiency = t.home > 0 ? Math.max(0, t.home - t.imported) / t.home : null;
  return t;
}

// CSV of one chart's data: a header of series names, one row per bucket (kWh). Names are the user's
// group labels: quoted when they hold a quote, comma or line break (CR too), and one starting with
// = + - @ gets a leading ' so a spreadsheet shows it instead of running it as a formula.
export function toCsv(data) {
  const quote = (text) => {
    const s = /^[=+\-@\t\r]/.test(text) ? `'${text}` : text;
    return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  const lines = [["period", ...data.series.map((s) => `${s.name} (kWh)`)].map(quote).join(",")];
  data.labels.forEach((label, i) => {
    lines.push([quote(label), ...data.series.map((s) => (s.values[i] === null ? "" : s.values[i].toFixed(3)))].join(","));
  });
  return `${lines.join("\n")}\n`;
}
