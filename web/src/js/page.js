// What every page does: the issues badge, and errors nobody caught shown instead of lost.
import { api } from "./api.js";
import { showError } from "./notices.js";

const ISSUES_EVERY_MS = 10000;

async function refreshIssues(badge) {
  try {
    const { issues } = await api.get("/system/issues");
    const open = issues.filter((i) => i.state !== "active_acked");
    badge.hidden = open.length === 0;
    badge.textContent = `${open.length} issue${open.length === 1 ? "" : "s"}`;
    badge.classList.toggle("error", open.some((i) => i.severity === "error"));
    badge.setAttribute("aria-label", `${badge.textContent} to look at (System page)`);
  } catch {
    badge.hidden = true; // the page's own calls report a service that is down
  }
}

export function boot() {
  window.addEventListener("unhandledrejection", (event) => showError(event.reason, "Unexpected error"));
  const badge = document.querySelector(".issues-badge");
  if (badge) {
    refreshIssues(badge);
    setInterval(() => refreshIssues(badge), ISSUES_EVERY_MS);
  }
}

// Run `task` now (or first after `ms` with {now: false}) and then `ms` after each run ends,
// skipping runs while the tab is hidden; the returned function stops it. `task` reports its errors.
export function every(ms, task, { now = true } = {}) {
  let timer = null;
  let stopped = false;
  const tick = async () => {
    timer = null;
    try {
      if (!document.hidden) await task();
    } finally {
      if (!stopped) timer = setTimeout(tick, ms);
    }
  };
  if (now) tick();
  else timer = setTimeout(tick, ms);
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
  };
}
