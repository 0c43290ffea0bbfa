// Channels: one form per channel, generated from the channel model's schema; saved with PUT.
import { api } from "../api.js";
import { confirmAction } from "../dialog.js";
import { $, h, replace } from "../dom.js";
import { power } from "../format.js";
import { followMeter } from "../live.js";
import { showError, showOk } from "../notices.js";
import { boot } from "../page.js";
import { SchemaForm } from "../schema-form.js";
import { bodySchema, openapi } from "../schema.js";

boot();

const LABELS = {
  label: "Name",
  groupLabel: "Group",
  reverse: "Reverse the current direction",
  "ctSpecification": "Current transformer (calibration)",
  "ctSpecification.currentRating": "Rated current (A)",
  "ctSpecification.voltageOutput": "Output at rated current (V)",
  "ctSpecification.scalingFraction": "Scaling correction",
};
const CHOICES = {
  phase: { 1: "L1", 2: "L2", 3: "L3", 4: "Split phase (240 V)" },
  role: { load: "Load (consumption)", grid: "Grid (+ import, − export)", pv: "Solar (production)",
    battery: "Battery (+ discharge, − charge)", inverter: "Hybrid inverter" },
};

const cards = new Map(); // index -> {form, summary parts}

function summaryParts(ch) {
  return {
    title: h("span.title", {}, `${ch.index} · ${ch.label}`),
    role: h("span.badge", {}, ch.role),
    active: h(`span.badge${ch.active ? ".on" : ""}`, {}, ch.active ? "active" : "off"),
    power: h("span.num.muted", { "aria-label": "power now" }, ""),
  };
}

function setSummary(parts, ch) {
  parts.title.textContent = `${ch.index} · ${ch.label}`;
  parts.role.textContent = ch.role;
  parts.active.textContent = ch.active ? "active" : "off";
  parts.active.classList.toggle("on", ch.active);
}

async function save(index, form, status, button) {
  const before = form.original;
  const after = form.read();
  if (after.role !== before.role) {
    const ok = await confirmAction({
      title: `Change the role of “${before.label}”?`,
      message: `From ${before.role} to ${after.role}: this channel's energy counters start again from zero.`,
      confirm: "Change role",
    });
    if (!ok) return;
  }
  button.disabled = true;
  status.textContent = "Saving…";
  form.clearErrors();
  try {
    await api.put("/ade7953/channel", after);
    const fresh = await api.get("/ade7953/channel", { query: { index } });
    form.fill(fresh); // shows what the service made of it (channel 0 stays active, for one)
    setSummary(cards.get(index).parts, fresh);
    status.textContent = "Saved.";
    showOk(`Channel ${index} saved.`);
  } catch (err) {
    status.textContent = "";
    const rest = err.status === 400 ? form.showErrors(err.message) : [err.message];
    if (rest.length) showError(rest.join("; "), `Channel ${index} not saved`);
  } finally {
    button.disabled = false;
  }
}

async function resetEnergy(ch) {
  const ok = await confirmAction({
    title: `Reset the energy of “${ch.label}”?`,
    message: "Its imported and exported energy counters start again from zero.",
    confirm: "Reset energy",
  });
  if (!ok) return;
  try {
    await api.post("/ade7953/energy/reset", undefined, { query: { index: ch.index } });
    showOk(`Energy of channel ${ch.index} reset.`);
  } catch (err) {
    showError(err, `Resetting channel ${ch.index}`);
  }
}

function card(ch, schema, doc) {
  const form = new SchemaForm(schema, doc, { idPrefix: `ch${ch.index}`, labels: LABELS, choices: CHOICES, omit: ["index"] });
  form.fill(ch);
  const parts = summaryParts(ch);
  const status = h("span.muted", { role: "status" });
  const button = h("button.primary", { type: "submit" }, "Save");
  const element = h("form.form", { novalidate: true, "aria-label": `Channel ${ch.index}` },
    form.element,
    h("div.actions", {}, button,
      h("button", { type: "button", onclick: () => form.fill(form.original) }, "Undo changes"),
      h("button.danger", { type: "button", onclick: () => resetEnergy(form.original) }, "Reset energy…"),
      status));
  element.addEventListener("submit", (event) => {
    event.preventDefault();
    save(ch.index, form, status, button);
  });
  cards.set(ch.index, { form, parts });
  return h("details.channel", { id: `channel-${ch.index}` },
    h("summary", {}, parts.title, parts.role, parts.active, parts.power),
    h("div.body", {}, element));
}

async function main() {
  try {
    const [doc, channels] = await Promise.all([openapi(), api.get("/ade7953/channel")]);
    const schema = bodySchema(doc, "/ade7953/channel", "put");
    replace($("#channels"), channels.map((ch) => card(ch, schema, doc)));
  } catch (err) {
    replace($("#channels"), h("p.error-text", {}, `Channels could not be loaded: ${err.message}`));
    showError(err, "Loading channels");
    return;
  }
  followMeter((values) => {
    const seen = new Set();
    for (const v of values) {
      seen.add(v.index);
      const c = cards.get(v.index);
      if (c) c.parts.power.textContent = power(v.data.activePower);
    }
    for (const [index, c] of cards) if (!seen.has(index)) c.parts.power.textContent = "";
  });
}

main();
