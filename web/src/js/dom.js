// Building DOM without a framework: h("tag.class", {attributes}, ...children).

export function h(spec, attrs = {}, ...children) {
  const [tag, ...classes] = spec.split(".");
  const el = document.createElement(tag || "div");
  if (classes.length) el.className = classes.join(" ");
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "className") el.className = value;
    else if (key in el && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export const $ = (selector, root = document) => root.querySelector(selector);

// A definition list of label/value pairs; values that are objects become nested lists.
export function facts(pairs) {
  return h("dl.facts", {}, pairs.map(([label, value]) => [h("dt", {}, label), h("dd", {}, value)]));
}

// A table from column headings and rows of cells (strings or nodes); `num` columns right-aligned.
export function table(columns, rows, { caption, className } = {}) {
  return h(
    "div.table-wrap",
    {},
    h(
      "table",
      { className },
      caption ? h("caption.muted", {}, caption) : null,
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", className: c.num ? "num" : "" }, c.label)))),
      h(
        "tbody",
        {},
        rows.map((cells) => h("tr", {}, cells.map((cell, i) => h("td", { className: columns[i].num ? "num" : "" }, cell)))),
      ),
    ),
  );
}
