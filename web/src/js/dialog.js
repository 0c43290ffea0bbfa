// Confirmation before anything that loses data; `typed` asks the user to type a word first.
import { h } from "./dom.js";

export function confirmAction({ title, message, confirm = "Continue", danger = true, typed }) {
  return new Promise((resolve) => {
    const input = typed
      ? h("input", { id: "confirm-typed", autocomplete: "off", spellcheck: "false", "aria-describedby": "confirm-typed-hint" })
      : null;
    const ok = h(`button.primary${danger ? ".danger" : ""}`, { type: "submit", value: "ok", disabled: Boolean(typed) }, confirm);
    const dialog = h(
      "dialog",
      { "aria-labelledby": "confirm-title" },
      h(
        "form.form",
        { method: "dialog" },
        h("h2", { id: "confirm-title" }, title),
        h("p", {}, message),
        typed
          ? h("div.field", {}, h("label", { for: "confirm-typed" }, `Type ${typed} to confirm`), input,
              h("p.hint", { id: "confirm-typed-hint" }, "This cannot be undone."))
          : null,
        h("div.actions", {}, ok, h("button", { type: "submit", value: "cancel" }, "Cancel")),
      ),
    );
    if (input) input.addEventListener("input", () => { ok.disabled = input.value.trim() !== typed; });
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(dialog.returnValue === "ok");
    });
    document.body.append(dialog);
    dialog.showModal();
    (input || ok).focus();
  });
}
