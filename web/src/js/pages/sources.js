// Sources: the remote meters homemeter reads (EnergyMe-Home devices, Modbus meters), whether each
// answers (or why not), when it was last read, and which homemeter channel shows which meter channel.
// Everything a meter says (labels, error texts) is shown as text, never as HTML.
import { api } from "../api.js";
import { $, h, replace, table } from "../dom.js";
import { ago, dateTime, number } from "../format.js";
import { boot, every } from "../page.js";

boot();

const REFRESH_MS = 2000;
const KINDS = { energyme: "EnergyMe-Home", modbus: "Modbus TCP" };
const STATES = {
  running: ["ok", "connected"],
  unreachable: ["bad", "unreachable"],
  starting: ["", "not read yet"],
};

function meterState(meter) {
  const [cls, text] = STATES[meter.state] || ["warn", meter.state];
  return h(`span.status${cls ? `.${cls}` : ""}`, { "data-state": meter.state }, text);
}

function lastPoll(meter) {
  if (!meter.lastPoll) return "never";
  const ms = meter.lastPoll * 1000;
  return h("time", { datetime: new Date(ms).toISOString(), title: dateTime(ms) }, ago(ms));
}

function meters(list) {
  // State first: on a phone the table scrolls sideways, and the state is what one looks for.
  const columns = [
    { label: "Meter" }, { label: "State" }, { label: "Last good poll" }, { label: "Kind" },
    { label: "Address" }, { label: "Polls", num: true }, { label: "Failed", num: true },
  ];
  const rows = list.map((m) => [
    h("strong", {}, m.name),
    h("span", {}, meterState(m), m.lastError ? [h("br"), h("small.error-text", { "data-reason": m.name }, m.lastError)] : null),
    lastPoll(m), KINDS[m.kind] || m.kind, h("code", {}, m.url), number(m.polls, 0), number(m.failures, 0),
  ]);
  return table(columns, rows);
}

function channelMap(mapping, byName, channels) {
  if (!mapping.length) return h("p.muted", {}, "No channel shows a meter.");
  const columns = [
    { label: "Channel", num: true }, { label: "Meter" }, { label: "Meter channel", num: true },
    { label: "State" }, { label: "Label" },
  ];
  const rows = mapping.map((m) => {
    const meter = byName.get(m.source);
    return [
      String(m.channel), m.source, String(m.sourceChannel), meter ? meterState(meter) : "–",
      channels[m.channel]?.label ?? "",
    ];
  });
  return table(columns, rows);
}

// homemeter measures with its own source: what is stored for `--source config`, if anything.
async function notReading() {
  replace($("#sources-state"), h("span.status", {}, "not in use"));
  let stored = { meters: [], channels: [] };
  try {
    stored = await api.get("/sources/config");
  } catch {
    // shown as "no meters configured" below; the status call already answered
  }
  const intro = h("p", {}, "homemeter measures with its own source now (not other meters).");
  if (!stored.meters.length) {
    replace($("#meter-list"), intro, h("p.muted", {}, "No meters are configured."));
  } else {
    replace($("#meter-list"), intro, h("p", {}, "Configured for the next start with --source config:"),
      table([{ label: "Meter" }, { label: "Kind" }, { label: "Address" }],
        stored.meters.map((m) => [h("strong", {}, m.name), KINDS[m.kind] || m.kind, h("code", {}, m.url)])));
  }
  replace($("#channel-map-body"), channelMap(stored.channels, new Map(), []));
}

async function refresh() {
  let status, channels;
  try {
    [status, channels] = await Promise.all([api.get("/sources/status"), api.get("/ade7953/channel")]);
  } catch (err) {
    replace($("#meter-list"), h("p.error-text", {}, `Not available: ${err.message}`));
    return;
  }
  if (status.state === "disabled" || !status.details?.meters) return notReading();
  const list = status.details.meters;
  const [cls, text] = { running: ["ok", "all meters answer"], degraded: ["bad", "a meter does not answer"] }[status.state] || ["", status.state];
  replace($("#sources-state"), h(`span.status${cls ? `.${cls}` : ""}`, {}, text));
  replace($("#meter-list"), list.length ? meters(list) : h("p.muted", {}, "No meters are configured."));
  const byName = new Map(list.map((m) => [m.name, m]));
  const byIndex = Object.fromEntries(channels.map((c) => [c.index, c]));
  replace($("#channel-map-body"), channelMap(status.details.channels || [], byName, byIndex));
}

every(REFRESH_MS, refresh);
