-- done() hook for every run: one machine-readable WRKRESULT line for bench/http.py.
-- Latencies in microseconds; status_N counts come from each thread's `statuses` table when the
-- script keeps one (handshake.lua), otherwise only wrk's own error counters are reported.
function done(summary, latency, requests)
   local by_status = {}
   for _, thread in ipairs(threads or {}) do
      local seen = thread:get("statuses")
      if type(seen) == "table" then
         for status, n in pairs(seen) do by_status[status] = (by_status[status] or 0) + n end
      end
   end
   local parts = {}
   for status, n in pairs(by_status) do parts[#parts + 1] = "status_" .. status .. "=" .. n end
   local e = summary.errors
   io.write(string.format(
      "WRKRESULT requests=%d duration_us=%d bytes=%d p50_us=%.1f p99_us=%.1f max_us=%.1f " ..
      "err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d %s\n",
      summary.requests, summary.duration, summary.bytes, latency:percentile(50),
      latency:percentile(99), latency.max, e.connect, e.read, e.write, e.status, e.timeout,
      table.concat(parts, " ")))
end
