// Live meter values: the server-sent event stream (one event a second), or polling GET
// meter-values every second when the stream cannot be used (a proxy that buffers, an old browser).
import { api, API } from "./api.js";

const STREAM = `${API}/ade7953/meter-values/stream`;
const POLL_MS = 1000;
const RETRY_STREAM_MS = 30000; // while polling, try the stream again this often

// onValues(array) for every update; onMode("stream" | "polling" | "offline", error?) on changes.
export function followMeter(onValues, onMode = () => {}) {
  let source = null;
  let pollTimer = null;
  let retryTimer = null;
  let mode = null;

  const setMode = (next, error) => {
    if (next !== mode || error) onMode(next, error);
    mode = next;
  };

  const poll = async () => {
    try {
      onValues(await api.get("/ade7953/meter-values"));
      setMode("polling");
    } catch (err) {
      setMode("offline", err);
    }
    pollTimer = setTimeout(poll, POLL_MS);
  };

  const startPolling = () => {
    if (pollTimer) return;
    poll();
    retryTimer = setTimeout(() => {
      stopPolling();
      startStream();
    }, RETRY_STREAM_MS);
  };

  const stopPolling = () => {
    clearTimeout(pollTimer);
    clearTimeout(retryTimer);
    pollTimer = retryTimer = null;
  };

  const startStream = () => {
    if (typeof EventSource !== "function") return startPolling();
    source = new EventSource(STREAM);
    source.onmessage = (event) => {
      setMode("stream");
      onValues(JSON.parse(event.data));
    };
    source.onerror = () => {
      // The browser would retry on its own; polling meanwhile keeps the numbers moving, and says
      // at once whether the service answers at all.
      source.close();
      source = null;
      startPolling();
    };
  };

  startStream();
  return () => {
    source?.close();
    stopPolling();
  };
}
