// Messages at the top of the page: API errors (kept until dismissed) and short confirmations.
import { h } from "./dom.js";
import { ApiError } from "./api.js";

const region = () => document.getElementById("notices");

function notice(kind, text, { timeout } = {}) {
  const box = h(
    `div.notice.${kind}`,
    { role: kind === "error" ? "alert" : "status" },
    h("p", {}, text),
    h("button.icon", { type: "button", "aria-label": "Dismiss", onclick: () => box.remove() }, "×"),
  );
  region().append(box);
  if (timeout) setTimeout(() => box.remove(), timeout);
  return box;
}

// An error for the whole page; `what` says what was being done ("Saving MQTT settings").
export function showError(err, what) {
  const text = err instanceof ApiError ? err.message : String(err && err.message ? err.message : err);
  const box = notice("error", what ? `${what}: ${text}` : text);
  console.warn(what || "error", err); // a warning: the message is on the page already
  return box;
}

export function showOk(text) {
  return notice("ok", text, { timeout: 6000 });
}

// Section content for a part of the API this build does not have.
export function unavailable(what) {
  return h("p.unavailable", {}, `${what} is not available in this build.`);
}
