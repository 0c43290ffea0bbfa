// Logs: the service's kept log lines, newest first, with a level filter, pause and download.
import { api } from "../api.js";
import { confirmAction } from "../dialog.js";
import { $, replace, table } from "../dom.js";
import { dateTime } from "../format.js";
import { showError, showOk } from "../notices.js";
import { boot, every } from "../page.js";

boot();

const REFRESH_MS = 2000;
const SHOWN = 500; // newest lines drawn; the download has them all
const RANK = { VERBOSE: 0, DEBUG: 1, INFO: 2, WARNING: 3, ERROR: 4, FATAL: 5 };
// `[time] [elapsed ms] [LEVEL  ] [pid N] [logger:function] message` (the device's line format).
const LINE = /^\[([^\]]*)\] \[[^\]]*\] \[(\w+)\s*\] \[[^\]]*\] \[([^\]]*)\] (.*)$/;

let lines = [];
let paused = false;

export function parse(text) {
  return text.split("\n").filter(Boolean).map((line) => {
    const m = LINE.exec(line);
    return m ? { time: m[1], level: m[2], where: m[3], message: m[4] } : { time: "", level: "", where: "", message: line };
  });
}

function draw() {
  const min = RANK[$("#level").value];
  const needle = $("#search").value.trim().toLowerCase();
  const shown = lines
    .filter((l) => (RANK[l.level] ?? 2) >= min)
    .filter((l) => !needle || `${l.where} ${l.message}`.toLowerCase().includes(needle))
    .reverse()
    .slice(0, SHOWN);
  const columns = [{ label: "Time" }, { label: "Level" }, { label: "Source" }, { label: "Message" }];
  const t = table(columns, shown.map((l) => [dateTime(l.time), l.level, l.where, l.message]), { className: "log-table" });
  const rows = t.querySelectorAll("tbody tr");
  shown.forEach((l, i) => {
    rows[i].className = l.level;
    const [time, level, , message] = rows[i].children;
    time.className = "time";
    level.className = "level";
    message.className = "message";
  });
  replace($("#log-table"), t);
  $("#log-state").textContent = `${shown.length} of ${lines.length} lines shown` + (paused ? " · paused" : "");
}

async function load() {
  try {
    lines = parse(await api.get("/logs"));
    draw();
  } catch (err) {
    showError(err, "Reading the log");
  }
}

every(REFRESH_MS, async () => {
  if (!paused) await load();
});
$("#level").addEventListener("change", draw);
$("#search").addEventListener("input", draw);
$("#refresh").addEventListener("click", load);
$("#pause").addEventListener("click", (event) => {
  paused = !paused;
  event.target.textContent = paused ? "Resume" : "Pause";
  event.target.setAttribute("aria-pressed", String(paused));
  draw();
});
$("#clear").addEventListener("click", async () => {
  const ok = await confirmAction({ title: "Clear the log?", message: "The kept log lines are deleted.", confirm: "Clear" });
  if (!ok) return;
  try {
    await api.post("/logs/clear");
    showOk("Log cleared.");
    await load();
  } catch (err) {
    showError(err, "Clearing the log");
  }
});
