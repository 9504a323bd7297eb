-- wrk script for the miss load: every request has a query string never used before
-- (BENCH_TAG names the proxy and round), so every request is a cache miss.
local tag = os.getenv("BENCH_TAG") or "x"
local path = os.getenv("BENCH_PATH") or "/1k"
local n = 0

request = function()
  n = n + 1
  return wrk.format("GET", path .. "?miss=" .. tag .. "-" .. n)
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d bytes=%d p50_us=%.0f p99_us=%.0f " ..
    "err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d\n",
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
