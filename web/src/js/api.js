// The one way pages talk to homemeter: fetch with timeouts, and every failure as an ApiError whose
// message is the API's own `error` text (so the page can show it; nothing is swallowed).
// Digest authentication is the browser's: it answers the challenge with the credentials the user
// typed into its own prompt, for pages, fetches and the event stream alike.

export const API = "/api/v1";
const TIMEOUT_MS = { GET: 5000, other: 10000, upload: 30000 };

export class ApiError extends Error {
  constructor(status, message, path) {
    super(message);
    this.name = "ApiError";
    this.status = status; // 0: no answer (network, timeout)
    this.path = path;
  }

  // 404 / 405 from a path this build does not have: a section to show as "not available".
  get missing() {
    return this.status === 404 || this.status === 405;
  }
}

async function errorText(response) {
  const type = response.headers.get("content-type") || "";
  try {
    if (type.includes("json")) {
      const doc = await response.json();
      if (doc && typeof doc.error === "string") return doc.error;
      if (doc && typeof doc.message === "string") return doc.message;
    } else {
      const text = (await response.text()).trim();
      if (text) return text.slice(0, 300);
    }
  } catch {
    // the status line below still says what happened
  }
  return `${response.status} ${response.statusText || "error"}`;
}

// request("PUT", "/custom-mqtt/config", {body}) -> parsed JSON, text, or null (204).
export async function request(method, path, { body, timeout, query } = {}) {
  const url = new URL(path.startsWith("/api/") || path.startsWith("/openapi") ? path : API + path, location.origin);
  for (const [k, v] of Object.entries(query || {})) url.searchParams.set(k, v);
  const headers = { Accept: "application/json" };
  let payload;
  if (body instanceof FormData) {
    payload = body;
  } else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const limit = timeout || (method === "GET" ? TIMEOUT_MS.GET : TIMEOUT_MS.other);
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), limit);
  let response;
  try {
    response = await fetch(url, { method, headers, body: payload, signal: abort.signal, cache: "no-cache" });
  } catch (err) {
    const why = abort.signal.aborted ? `no answer within ${limit / 1000} s` : "homemeter cannot be reached";
    throw new ApiError(0, `${method} ${url.pathname}: ${why}`, path);
  } finally {
    clearTimeout(timer);
  }
  if (!response.ok) throw new ApiError(response.status, await errorText(response), path);
  if (response.status === 204) return null;
  const type = response.headers.get("content-type") || "";
  return type.includes("json") ? response.json() : response.text();
}

export const api = {
  get: (path, options) => request("GET", path, options),
  put: (path, body, options) => request("PUT", path, { ...options, body }),
  patch: (path, body, options) => request("PATCH", path, { ...options, body }),
  post: (path, body, options) => request("POST", path, { ...options, body }),
  upload: (path, form, options) => request("POST", path, { ...options, body: form, timeout: TIMEOUT_MS.upload }),
};
