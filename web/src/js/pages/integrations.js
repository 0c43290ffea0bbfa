// Integrations: MQTT, InfluxDB, Modbus and mDNS settings (forms from the models' schemas) with their
// live status, the Modbus register map, and how to connect Home Assistant.
import { api } from "../api.js";
import { confirmAction } from "../dialog.js";
import { $, facts, h, replace, table } from "../dom.js";
import { ago, dateTime, duration, humanize, number } from "../format.js";
import { showError, showOk, unavailable } from "../notices.js";
import { boot, every } from "../page.js";
import { SchemaForm } from "../schema-form.js";
import { bodySchema, openapi, operation } from "../schema.js";

boot();

const STATUS_EVERY_MS = 5000;

// What each section is; fields come from the schema of `PUT <path>/config`.
const SECTIONS = {
  mqtt: {
    title: "Custom MQTT",
    path: "/custom-mqtt",
    labels: { clientid: "Client ID", useCredentials: "Log in with user name and password" },
    visibleWhen: { username: { useCredentials: true }, password: { useCredentials: true } },
  },
  influxdb: {
    title: "InfluxDB",
    path: "/influxdb",
    labels: { useSsl: "Use HTTPS" },
    choices: { version: { 1: "1.x", 2: "2.x (and 3.x)" } },
    // The version's own fields (rest-api.md 4.2): v1 database and login, v2 organisation, bucket, token.
    visibleWhen: {
      database: { version: 1 }, username: { version: 1 }, password: { version: 1 },
      organization: { version: 2 }, bucket: { version: 2 }, token: { version: 2 },
    },
  },
  modbus: { title: "Modbus TCP", path: "/modbus", labels: { bind: "Listen address", maxClients: "Maximum clients" } },
  mdns: { title: "mDNS", path: "/mdns" },
};

const STATUS_LABELS = {
  backlogPoints: "Queued points (backlog)",
  backlogOldestAge: "Oldest queued point",
  bind: "Address",
};

function statusClass(text) {
  const t = String(text).toLowerCase();
  if (t.includes("fail") || t.includes("refused") || t.includes("unreachable")) return "bad";
  if (t.includes("error") || t.includes("not ")) return "warn";
  if (/connected|success|sent|listening|running|advertis/.test(t)) return "ok";
  return "";
}

function value(key, v) {
  if (typeof v === "boolean") return v ? "yes" : "no";
  if (typeof v === "number" && /age|seconds$/i.test(key)) return v === 0 ? "–" : duration(v);
  if (typeof v === "number" && /port$|^id$/i.test(key)) return String(v);
  if (typeof v === "number") return number(v, Number.isInteger(v) ? 0 : 2);
  if (Array.isArray(v) && v.length && v.every((x) => x && typeof x === "object")) return rowsTable(v);
  if (Array.isArray(v)) return v.length ? v.map(String).join(", ") : "–";
  if (v && typeof v === "object") return facts(Object.entries(v).map(([k, x]) => [STATUS_LABELS[k] || humanize(k), value(k, x)]));
  return v === null || v === undefined || v === "" ? "–" : String(v);
}

// A list of objects (mDNS: each advertised service with its name, port and TXT records) as a table.
function rowsTable(items) {
  const keys = [...new Set(items.flatMap((x) => Object.keys(x)))];
  const cell = (x) => (x && typeof x === "object" && !Array.isArray(x)
    ? Object.entries(x).map(([k, w]) => `${k}=${w}`).join(", ")
    : value("", x));
  return table(keys.map((k) => ({ label: STATUS_LABELS[k] || humanize(k) })), items.map((x) => keys.map((k) => cell(x[k]))));
}

// The device's GenericStatus ({status, statusTimestamp}) plus whatever else the component reports.
function renderStatus(target, doc, enabled) {
  const { status, statusTimestamp, state, ...rest } = doc;
  const text = enabled === false ? "Disabled" : status ?? state ?? "unknown";
  const pairs = [["Status", h(`span.status.${statusClass(text)}`, { dataset: { status: text } }, text)]];
  if (statusTimestamp) {
    pairs.push(["Last attempt", h("span", { title: dateTime(statusTimestamp) }, ago(statusTimestamp))]);
  }
  for (const [k, v] of Object.entries(rest)) pairs.push([STATUS_LABELS[k] || humanize(k), value(k, v)]);
  replace(target, facts(pairs));
}

// One integration: status (refreshed every 5 s while enabled) and its settings form.
async function integration(key, doc) {
  const spec = SECTIONS[key];
  const root = $(`#${key} [data-section]`);
  const schema = bodySchema(doc, `${spec.path}/config`, "put");
  const hasStatus = operation(doc, `${spec.path}/status`, "get") !== null;
  if (!schema && !hasStatus) {
    replace(root, unavailable(spec.title));
    return null;
  }
  const statusBox = h("div", { "aria-live": "polite" });
  const parts = [h("h3", {}, "Status"), hasStatus ? statusBox : unavailable(`${spec.title} status`)];
  let form = null;
  if (schema) {
    form = new SchemaForm(schema, doc, { idPrefix: key, labels: spec.labels || {}, visibleWhen: spec.visibleWhen || {}, choices: spec.choices || {} });
    const saveButton = h("button.primary", { type: "submit" }, "Save");
    const hasReset = operation(doc, `${spec.path}/config/reset`, "post") !== null;
    const element = h("form.form", { novalidate: true, "aria-label": `${spec.title} settings` },
      form.element,
      h("div.actions", {}, saveButton,
        h("button", { type: "button", onclick: () => load() }, "Undo changes"),
        hasReset ? h("button.danger", { type: "button", onclick: () => reset() }, "Restore defaults…") : null));
    element.addEventListener("submit", (e) => { e.preventDefault(); save(saveButton); });
    parts.push(h("h3", {}, "Settings"), element);
  }
  replace(root, parts);

  async function refreshStatus() {
    if (!hasStatus) return;
    const enabled = form ? form.original.enabled : undefined;
    try {
      renderStatus(statusBox, await api.get(`${spec.path}/status`), enabled);
    } catch (err) {
      replace(statusBox, h("p.error-text", {}, `Status could not be read: ${err.message}`));
    }
  }

  async function load() {
    if (!form) return;
    try {
      form.fill(await api.get(`${spec.path}/config`));
    } catch (err) {
      showError(err, `Loading the ${spec.title} settings`);
    }
  }

  async function save(button) {
    button.disabled = true;
    form.clearErrors();
    try {
      await api.put(`${spec.path}/config`, form.read());
      await load();
      showOk(`${spec.title} settings saved.`);
      await refreshStatus();
    } catch (err) {
      const rest = err.status === 400 ? form.showErrors(err.message) : [err.message];
      if (rest.length) showError(rest.join("; "), `${spec.title} settings not saved`);
    } finally {
      button.disabled = false;
    }
  }

  async function reset() {
    const ok = await confirmAction({ title: `Restore the ${spec.title} defaults?`, message: "Every setting of this section returns to its default.", confirm: "Restore defaults" });
    if (!ok) return;
    try {
      await api.post(`${spec.path}/config/reset`);
      await load();
      showOk(`${spec.title} settings restored to their defaults.`);
    } catch (err) {
      showError(err, `Restoring the ${spec.title} defaults`);
    }
  }

  await load();
  await refreshStatus();
  // Status while enabled only: a disabled integration's status does not change by itself.
  every(STATUS_EVERY_MS, async () => {
    if (!form || form.original.enabled) await refreshStatus();
  }, { now: false });
  return form;
}

// ---- Modbus register map -------------------------------------------------------------------------

const BLOCKS = [
  [0, 100, "General"], [100, 200, "Meter values"], [200, 1000, "Sums per role"], [1000, Infinity, "Per channel"],
];

async function registerMap(doc) {
  if (!operation(doc, "/modbus/register-map", "get")) return unavailable("The register map");
  const rows = await api.get("/modbus/register-map");
  const blocks = BLOCKS.map(([from, to, name]) => {
    const inBlock = rows.filter((r) => r.address >= from && r.address < to);
    if (!inBlock.length) return null;
    const last = inBlock.at(-1);
    const width = last.type.endsWith("64") ? 4 : 2;
    return [name, `${inBlock[0].address}–${last.address + width - 1}`, String(inBlock.length)];
  }).filter(Boolean);
  const columns = [{ label: "Address", num: true }, { label: "Name" }, { label: "Type" }, { label: "Unit" }, { label: "Description" }];
  return h("div", {},
    h("h3", {}, "Register map"),
    table([{ label: "Block" }, { label: "Addresses" }, { label: "Values", num: true }], blocks),
    h("p.actions", {},
      h("a.button", { href: "/api/v1/modbus/register-map.csv", download: "homemeter-modbus-registers.csv", id: "register-csv" }, "Download the register map (CSV)")),
    h("details", {},
      h("summary", {}, `All ${rows.length} values`),
      table(columns, rows.map((r) => [String(r.address), r.name, r.type, r.unit, r.description]), { className: "registers" })));
}

// ---- Home Assistant ------------------------------------------------------------------------------

function homeAssistant(doc) {
  const port = location.port || (location.protocol === "https:" ? "443" : "80");
  const mqtt = bodySchema(doc, "/custom-mqtt/config", "put");
  const discovery = mqtt && Object.keys(mqtt.properties || {}).find((k) => /discovery/i.test(k));
  return [
    h("p", {}, "Two ways to bring homemeter into Home Assistant:"),
    h("h3", {}, "1. The EnergyMe integration"),
    h("p", {}, "Install the EnergyMe custom integration (for example through HACS). Home Assistant then finds homemeter " +
      "by mDNS, or you add it by its address; log in as admin with your password. It reads the channels, the " +
      "meter values and the system facts through the REST API."),
    port === "80"
      ? h("p.muted", {}, "homemeter listens on port 80, which is where the integration connects.")
      : h("p.error-text", {}, `The integration always connects to port 80, but this page is served on port ${port}: ` +
          "run homemeter on port 80 (--http-port 80) for it to work."),
    h("h3", {}, "2. MQTT discovery"),
    h("p", {}, "Set up Custom MQTT above with the broker Home Assistant uses. " + (discovery
      ? `With “${humanize(discovery)}” on, Home Assistant creates homemeter's device and sensors by itself, ready for its Energy dashboard.`
      : "Home Assistant MQTT discovery is not available in this build: add the sensors by hand from the published JSON.")),
  ];
}

async function main() {
  let doc;
  try {
    doc = await openapi();
  } catch (err) {
    showError(err, "Loading the API description");
    return;
  }
  replace($("#home-assistant [data-section]"), homeAssistant(doc));
  const tasks = ["mqtt", "influxdb", "mdns"].map((key) => integration(key, doc).catch((err) => showError(err, SECTIONS[key].title)));
  const modbus = integration("modbus", doc).then(async () => {
    $("#modbus [data-section]").append(await registerMap(doc));
  }).catch((err) => showError(err, "Modbus TCP"));
  await Promise.all([...tasks, modbus]);
}

main();
