// System: what runs where, issues, statistics, password, backup and restore, log levels, restart and
// factory reset.
import { api } from "../api.js";
import { confirmAction } from "../dialog.js";
import { $, facts, h, replace } from "../dom.js";
import { ago, bytes, dateTime, duration, humanize, number } from "../format.js";
import { showError, showOk } from "../notices.js";
import { boot, every } from "../page.js";
import { SchemaForm } from "../schema-form.js";
import { bodySchema, openapi } from "../schema.js";

boot();

const REFRESH_MS = 5000;

// ---- overview and statistics -----------------------------------------------------------------------

function overview(info, update) {
  const s = info.static, d = info.dynamic;
  const ram = d.memory.heap, disk = d.storage.littlefs, net = d.network;
  const temperature = d.performance.temperatureCelsius;
  return facts([
    ["Version", `${update?.currentVersion ?? s.firmware.buildVersion} (built ${s.firmware.buildDate})`],
    ["Device id", s.device.id],
    ["Uptime", duration(d.time.uptimeSeconds)],
    ["Host time", dateTime(d.time.currentTimestampIso)],
    ["Processor", `${s.hardware.chipModel || "unknown"}, ${s.hardware.chipCores} cores`],
    ["CPU load", `${d.cpu.core0.current} % / ${d.cpu.core1.current} % (CPU 0 / 1 now)`],
    ["Temperature", temperature === null ? "not readable" : `${number(temperature, 1)} °C`],
    ["Memory", `${bytes(ram.usedBytes)} of ${bytes(ram.totalBytes)} used (${number(ram.usedPercentage, 0)} %)`],
    ["Data disk", `${bytes(disk.usedBytes)} of ${bytes(disk.totalBytes)} used (${number(disk.usedPercentage, 0)} %)`],
    ["Network", net.wifiConnected ? `${net.wifiSsid} ${net.wifiLocalIp}` : "not connected"],
    ["Software", `${s.sdk.sdkVersion}, kernel ${s.sdk.coreVersion}`],
    ["Last stop", s.monitoring.lastResetReasonString],
  ]);
}

const AREAS = {
  ade7953: "Meter", mqtt: "Cloud MQTT", customMqtt: "Custom MQTT", modbus: "Modbus TCP", influxdb: "InfluxDB",
  wifi: "Network", webServer: "Web server", log: "Log lines",
};

// One small list per area (the device's nested statistics document).
function statistics(stats) {
  return h("div.cards.stats", {}, Object.entries(stats).map(([area, counters]) => h("div", {},
    h("h3", {}, AREAS[area] || humanize(area)),
    facts(Object.entries(counters).map(([name, value]) => [humanize(name), number(value, 0)])))));
}

async function refresh() {
  try {
    const [info, stats, update] = await Promise.all([
      api.get("/system/info"), api.get("/system/statistics"), api.get("/firmware/update-info"),
    ]);
    replace($("#overview-facts"), overview(info, update));
    replace($("#statistics-body"), statistics(stats));
  } catch (err) {
    replace($("#overview-facts"), h("p.error-text", {}, `Not available: ${err.message}`));
  }
  await refreshIssues();
}

// ---- issues --------------------------------------------------------------------------------------

async function ack(body) {
  try {
    const answer = await api.post("/system/issues/ack", body);
    showOk(answer.message);
  } catch (err) {
    showError(err, "Acknowledging");
  }
  await refreshIssues();
}

async function refreshIssues() {
  let issues;
  try {
    ({ issues } = await api.get("/system/issues"));
  } catch (err) {
    replace($("#issue-list"), h("p.error-text", {}, `Issues could not be read: ${err.message}`));
    return;
  }
  $("#ack-all").hidden = !issues.some((i) => i.state !== "active_acked");
  if (!issues.length) {
    replace($("#issue-list"), h("p.muted", {}, "No issues. Everything works as it should."));
    return;
  }
  replace($("#issue-list"), h("ul.loads", {}, issues.map((i) => h("li", {},
    h("span", {},
      h(`span.status.${i.severity === "error" ? "bad" : i.severity === "warning" ? "warn" : ""}`, {}, i.message),
      h("br"),
      h("small.muted", {}, `${i.code}${i.channel !== undefined ? ` (channel ${i.channel})` : ""} · ${i.state.replace("_", " ")} · ` +
        `${i.occurrences}× · last ${ago(i.lastChangeUnix * 1000)}`)),
    i.state === "active_acked" ? h("span.muted", {}, "acknowledged")
      : h("button", { type: "button", onclick: () => ack({ code: i.code, ...(i.channel !== undefined ? { channel: i.channel } : {}) }) }, "Acknowledge")))));
}

$("#ack-all").addEventListener("click", () => ack({ all: true }));

// ---- password ------------------------------------------------------------------------------------

async function setUpPassword(doc) {
  const schema = bodySchema(doc, "/auth/change-password", "post");
  const rule = schema?.properties?.newPassword;
  if (rule) $("#pw-new-hint").textContent = `${rule.minLength} to ${rule.maxLength} characters.`;
  $("#password-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const current = $("#pw-current"), next = $("#pw-new"), again = $("#pw-repeat"), error = $("#pw-repeat-error");
    error.hidden = next.value === again.value;
    error.textContent = "The two new passwords differ.";
    again.toggleAttribute("aria-invalid", next.value !== again.value);
    if (next.value !== again.value) return again.focus();
    try {
      await api.post("/auth/change-password", { currentPassword: current.value, newPassword: next.value });
      event.target.reset();
      showOk("Password changed. Your browser will ask for the new one.");
    } catch (err) {
      showError(err, "Password not changed");
    }
  });
}

// ---- backup and restore --------------------------------------------------------------------------

function restoreForm(id, path, what, query) {
  $(`#${id}`).addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = $(`#${id}-file`).files[0];
    if (!file) return showError("choose a file first", `Restoring ${what}`);
    const ok = await confirmAction({ title: `Restore ${what}?`, message: `What is stored now is replaced by “${file.name}”.`, confirm: "Restore" });
    if (!ok) return;
    const form = new FormData();
    form.append("file", file);
    const q = query();
    try {
      const answer = await api.upload(path, form, { query: q || {} });
      showOk(answer?.message || `${what} restored.`);
      event.target.reset();
      refresh();
    } catch (err) {
      showError(err, `Restoring ${what}`);
    }
  });
}

// ---- log levels ----------------------------------------------------------------------------------

async function setUpLogLevels(doc) {
  const schema = bodySchema(doc, "/logs/level", "put");
  const form = new SchemaForm(schema, doc, {
    idPrefix: "log",
    labels: { print: "Printed to the console (journal)", save: "Kept for the Logs page and syslog" },
  });
  form.fill(await api.get("/logs/level"));
  const element = h("form.form", { novalidate: true, "aria-label": "Log levels" }, form.element,
    h("div.actions", {}, h("button.primary", { type: "submit" }, "Save")),
    h("p.hint", {}, "Applies at once, until homemeter restarts."));
  element.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const answer = await api.put("/logs/level", form.read());
      form.fill(await api.get("/logs/level"));
      showOk(answer.message);
    } catch (err) {
      const rest = err.status === 400 ? form.showErrors(err.message) : [err.message];
      if (rest.length) showError(rest.join("; "), "Log levels not saved");
    }
  });
  replace($("#log-levels-body"), element);
}

// ---- restart and factory reset -------------------------------------------------------------------

// After a restart: wait until the service has gone and answers again, then reload the page.
async function waitForRestart(what) {
  const box = showOk(`${what}: homemeter is restarting…`);
  const started = Date.now();
  let wentAway = false;
  while (Date.now() - started < 60000) {
    await new Promise((r) => setTimeout(r, 1000));
    try {
      const r = await fetch("/api/v1/health", { cache: "no-store" });
      if (r.ok && (wentAway || Date.now() - started > 5000)) return location.reload();
    } catch {
      wentAway = true;
    }
  }
  box.remove();
  showError("homemeter did not come back within a minute; check the service on the host", what);
}

$("#restart").addEventListener("click", async () => {
  const ok = await confirmAction({ title: "Restart homemeter?", message: "Measuring stops for a few seconds; energy is saved first.", confirm: "Restart", danger: false });
  if (!ok) return;
  try {
    await api.post("/system/restart");
    waitForRestart("Restart");
  } catch (err) {
    showError(err, "Restart");
  }
});

$("#factory-reset").addEventListener("click", async () => {
  const ok = await confirmAction({
    title: "Factory reset?",
    message: "The configuration returns to its defaults, every energy counter to zero, and the stored files are deleted.",
    confirm: "Reset everything",
    typed: "RESET",
  });
  if (!ok) return;
  try {
    await api.post("/system/factory-reset", undefined, { query: { confirm: "true" } });
    waitForRestart("Factory reset");
  } catch (err) {
    showError(err, "Factory reset");
  }
});

async function main() {
  every(REFRESH_MS, refresh);
  restoreForm("restore-config", "/restore/configuration", "the configuration", () => ($("#restore-config-force").checked ? { force: "true" } : null));
  restoreForm("restore-data", "/restore/filesystem", "all data", () => null);
  try {
    const doc = await openapi();
    await setUpPassword(doc);
    await setUpLogLevels(doc);
  } catch (err) {
    showError(err, "Loading the page");
  }
}

main();
