-- wrk script for bench/run.py: at the end of a run, print the figures it
-- reads as "BENCH name value" lines. wrk's own --latency table has no p95.
-- Latencies are in microseconds.

done = function(summary, latency, requests)
   local function put(name, value)
      io.write(string.format("BENCH %s %d\n", name, value))
   end
   put("requests", summary.requests)
   put("duration_us", summary.duration)
   put("bytes", summary.bytes)
   for _, p in ipairs({ 50, 90, 95, 99, 99.9 }) do
      put("p" .. p .. "_us", latency:percentile(p))
   end
   put("max_us", latency.max)
   -- status counts responses >= 400; the others are socket errors.
   for _, kind in ipairs({ "connect", "read", "write", "status", "timeout" }) do
      put("errors_" .. kind, summary.errors[kind])
   end
end
