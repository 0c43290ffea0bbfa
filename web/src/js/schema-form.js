// Forms generated from the JSON schema of a request body (the pydantic configuration models): a field
// added to a model appears in its form without a change here. The server validates; its 400 message
// ("port: Input should be ...; topic: ...") is shown next to the fields it names.
import { h } from "./dom.js";
import { humanize } from "./format.js";
import { resolve } from "./schema.js";

const SECRET = /password|token|secret|passphrase|key$/i;

// pydantic's automatic title ("useCredentials" -> "Usecredentials") says nothing a label needs.
function isAutoTitle(title, key) {
  return !title || title.toLowerCase().replace(/\s+/g, "") === key.toLowerCase().replace(/_/g, "");
}

function inputFor(schema, key, id, describedBy, names = {}) {
  const common = { id, name: id, "aria-describedby": describedBy };
  if (Array.isArray(schema.enum)) {
    return h("select", common, schema.enum.map((v) => h("option", { value: String(v) }, names[v] ?? String(v))));
  }
  switch (schema.type) {
    case "boolean":
      return h("input", { ...common, type: "checkbox" });
    case "integer":
    case "number": {
      const max = schema.maximum ?? (schema.exclusiveMaximum !== undefined ? schema.exclusiveMaximum - (schema.type === "integer" ? 1 : 0) : undefined);
      return h("input", {
        ...common,
        type: "number",
        inputmode: schema.type === "integer" ? "numeric" : "decimal",
        step: schema.type === "integer" ? "1" : "any",
        min: schema.minimum ?? schema.exclusiveMinimum,
        max,
      });
    }
    default: {
      const secret = schema.format === "password" || schema.writeOnly || SECRET.test(key);
      return h("input", {
        ...common,
        type: secret ? "password" : "text",
        autocomplete: secret ? "new-password" : "off",
        maxlength: schema.maxLength,
        spellcheck: "false",
      });
    }
  }
}

export class SchemaForm {
  // schema: resolved object schema; doc: the OpenAPI document (for nested $refs).
  // options: idPrefix, labels {path: text}, omit [paths], visibleWhen {path: {otherPath: value}},
  // choices {path: {enumValue: text}} (how a select shows each value).
  constructor(schema, doc, { idPrefix = "f", labels = {}, omit = [], visibleWhen = {}, choices = {} } = {}) {
    this.fields = new Map(); // path -> {schema, input, wrap, error}
    this.visibleWhen = visibleWhen;
    this.element = h("div.fields");
    this.original = {};
    this.#build(schema, doc, "", this.element, { idPrefix, labels, omit, choices });
    this.element.addEventListener("change", () => this.#applyVisibility());
    this.element.addEventListener("input", (e) => this.#clearField(e.target));
  }

  #build(schema, doc, prefix, container, options) {
    for (const [key, raw] of Object.entries(schema.properties || {})) {
      const path = prefix + key;
      if (options.omit.includes(path)) continue;
      let field = resolve(doc, raw);
      const names = options.choices[path];
      if (names && !field.enum) {
        // A small integer range (InfluxDB's version 1..2) reads better as a choice of named values.
        const numeric = field.type === "integer" || field.type === "number";
        field = { ...field, enum: Object.keys(names).map((k) => (numeric ? Number(k) : k)) };
      }
      if (field.type === "object" && field.properties) {
        const set = h("fieldset", {}, h("legend", {}, this.#label(options, path, key, field)));
        const inner = h("div.fields");
        set.append(inner);
        if (field.description) inner.before(h("p.hint", {}, field.description));
        container.append(set);
        this.#build(field, doc, `${path}.`, inner, options);
        continue;
      }
      const id = `${options.idPrefix}-${path.replace(/\./g, "-")}`;
      const hintId = `${id}-hint`;
      const errorId = `${id}-error`;
      const describedBy = [field.description ? hintId : "", errorId].filter(Boolean).join(" ");
      const input = inputFor(field, key, id, describedBy, names);
      const label = h("label", { for: id }, this.#label(options, path, key, field));
      const hint = field.description ? h("p.hint", { id: hintId }, field.description) : null;
      const error = h("p.error-text", { id: errorId, hidden: true });
      const wrap = field.type === "boolean"
        ? h("div.field.check", { dataset: { path } }, input, label, hint, error)
        : h("div.field", { dataset: { path } }, label, input, hint, error);
      this.fields.set(path, { schema: field, input, wrap, error });
      container.append(wrap);
    }
  }

  #label(options, path, key, schema) {
    return options.labels[path] || (isAutoTitle(schema.title, key) ? humanize(key) : schema.title);
  }

  input(path) {
    return this.fields.get(path)?.input;
  }

  fill(values) {
    this.original = structuredClone(values || {});
    for (const [path, { schema, input }] of this.fields) {
      const value = path.split(".").reduce((o, k) => (o == null ? undefined : o[k]), values);
      if (schema.type === "boolean") input.checked = Boolean(value);
      else input.value = value === undefined || value === null ? "" : String(value);
    }
    this.clearErrors();
    this.#applyVisibility();
  }

  // The values in the form, over the values it was filled with (fields not shown are kept).
  read() {
    const out = structuredClone(this.original);
    for (const [path, { schema, input }] of this.fields) {
      const keys = path.split(".");
      let target = out;
      for (const k of keys.slice(0, -1)) target = target[k] ??= {};
      target[keys.at(-1)] = this.#value(schema, input);
    }
    return out;
  }

  #value(schema, input) {
    if (schema.type === "boolean") return input.checked;
    if (Array.isArray(schema.enum)) {
      return schema.enum.find((v) => String(v) === input.value) ?? input.value;
    }
    if (schema.type === "integer" || schema.type === "number") {
      // An empty or unparseable number is sent as null: the server names the field in its answer.
      return input.value.trim() === "" || Number.isNaN(input.valueAsNumber) ? null : input.valueAsNumber;
    }
    return input.value;
  }

  #applyVisibility() {
    const values = this.read();
    const get = (path) => path.split(".").reduce((o, k) => (o == null ? undefined : o[k]), values);
    for (const [path, rule] of Object.entries(this.visibleWhen)) {
      const field = this.fields.get(path);
      if (!field) continue;
      field.wrap.hidden = !Object.entries(rule).every(([other, want]) => get(other) === want);
    }
  }

  clearErrors() {
    for (const { input } of this.fields.values()) this.#clearField(input);
  }

  #clearField(input) {
    const field = [...this.fields.values()].find((f) => f.input === input);
    if (!field) return;
    input.removeAttribute("aria-invalid");
    field.error.hidden = true;
    field.error.textContent = "";
  }

  // Puts each "path: message" part of an API error next to its field (shown if it was hidden);
  // returns the parts that name no field of this form.
  showErrors(message) {
    const rest = [];
    let first = null;
    for (const part of String(message).split("; ")) {
      const hit = [...this.fields.keys()]
        .sort((a, b) => b.length - a.length)
        .find((path) => part.startsWith(`${path}: `) || part.includes(`: ${path}: `));
      if (!hit) {
        rest.push(part);
        continue;
      }
      const field = this.fields.get(hit);
      field.input.setAttribute("aria-invalid", "true");
      field.error.textContent = part.slice(part.indexOf(`${hit}: `) + hit.length + 2);
      field.error.hidden = false;
      field.wrap.hidden = false;
      first ??= field.input;
    }
    first?.focus();
    return rest;
  }
}
